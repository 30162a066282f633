/**
 * Frees a Buffer's memory at once, instead of at V8's next garbage collection, when its owner is
 * done with it. A Buffer outside the JS heap is otherwise freed only by a collection, which V8
 * starts for such memory once it grew by 64 MiB: a GiB relayed in 64 KiB socket reads costs ~16
 * full collections and the page faults of glibc handing the memory back and mapping it again, and
 * dropped part buffers stay in RSS until then.
 *
 * Only a Buffer that spans its whole ArrayBuffer is freed: a slice may share it with bytes that
 * are still on their way (bandwidth pacing, the quota cut), and is left to the collector. The
 * caller must hold the only reference that will still be read: every view of the memory reads as
 * empty afterwards. (An empty or already freed one has no bytes to free.)
 */
export function freeBuffer(buffer: Buffer): void {
  const memory = buffer.buffer;
  if (memory instanceof ArrayBuffer && buffer.byteOffset === 0 && buffer.byteLength === memory.byteLength && memory.byteLength > 0) {
    memory.transfer(0);
  }
}

/**
 * Frees all the memory `buffer` is a view of, whatever part of it the view covers: for a caller
 * that owns that memory entirely (told so by whoever allocated it). Every view of it reads as
 * empty afterwards.
 */
export function freeMemoryOf(buffer: Buffer): void {
  const memory = buffer.buffer;
  if (memory instanceof ArrayBuffer && memory.byteLength > 0) memory.transfer(0);
}
