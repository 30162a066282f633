import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

/**
 * The ssh2 patch (patches/ssh2+1.17.0.patch) frees socket reads and decrypted pieces as soon as
 * they are spent. A buffer freed too early reads as empty, which shows up as wrong bytes or a MAC
 * error only when a packet is cut across socket reads at the wrong place: here every cipher class
 * the server offers decrypts packets cut at many places, each read in memory of its own and freed
 * after decrypt() as ssh2's server does (when the decipher says it keeps no view of it).
 */

interface CipherInfo {
  keyLen: number;
  ivLen: number;
}
interface MacInfo {
  len: number;
}
interface Decipher {
  decrypt(data: Buffer, p: number, len: number): void;
  retainsNoInput?: boolean;
}
interface SshCrypto {
  init: Promise<void>;
  CIPHER_INFO: Record<string, CipherInfo>;
  MAC_INFO: Record<string, MacInfo>;
  freeWhole(buffer: Buffer): void;
  createCipher(config: unknown): { allocPacket(payloadLen: number): Buffer; encrypt(packet: Buffer): void };
  createDecipher(config: unknown): Decipher;
}

const sshCrypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as SshCrypto;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Read sizes: whole 64 KiB reads, and cuts inside length fields, MACs and payloads. */
function* readSizes(): Generator<number> {
  const fixed = [65536, 1, 3, 4, 5, 16, 17, 65536, 32768, 32790, 32800, 100, 15, 12345, 40000, 2, 65536];
  let seed = 7;
  for (let i = 0; ; i++) {
    yield fixed[i % fixed.length] as number;
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    yield 1 + (seed % 70000);
  }
}

describe('ssh2 patch: decipher input and output freed early', () => {
  it.each([
    ['chacha20-poly1305@openssh.com', ''],
    ['aes128-gcm@openssh.com', ''],
    ['aes256-gcm@openssh.com', ''],
    ['aes128-ctr', 'hmac-sha2-256'],
    ['aes256-ctr', 'hmac-sha2-512-etm@openssh.com'],
  ])('%s %s: packets cut across reads decrypt whole, and payloads handed on stay intact', async (cipherName, macName) => {
    await sshCrypto.init;
    const cipherInfo = sshCrypto.CIPHER_INFO[cipherName] as CipherInfo;
    const macInfo = macName ? sshCrypto.MAC_INFO[macName] : undefined;
    const key = randomBytes(cipherInfo.keyLen);
    const iv = randomBytes(cipherInfo.ivLen);
    const macKey = macInfo ? randomBytes(macInfo.len) : undefined;

    const wire: Buffer[] = [];
    const cipher = sshCrypto.createCipher({
      outbound: { onWrite: (b: Buffer) => wire.push(Buffer.from(b)), cipherInfo, cipherKey: Buffer.from(key), cipherIV: Buffer.from(iv), seqno: 0, macInfo, macKey },
    });
    // Channel data as OpenSSH sends a 32 KiB WRITE (two packets), and small requests between.
    const sizes = Array.from({ length: 300 }, (_, i) => [32768 + 9, 40, 5000, 33, 32768 - 2000][i % 5] as number);
    const payloads = sizes.map((n) => randomBytes(n));
    for (const payload of payloads) {
      const packet = cipher.allocPacket(payload.length);
      payload.copy(packet, 5);
      cipher.encrypt(packet);
    }
    const stream = Buffer.concat(wire);

    const handedOn: Buffer[] = [];
    const copied: string[] = [];
    const decipher = sshCrypto.createDecipher({
      inbound: {
        onPayload: (payload: Buffer) => {
          handedOn.push(payload);
          copied.push(sha(payload));
        },
        decipherInfo: cipherInfo,
        decipherKey: Buffer.from(key),
        decipherIV: Buffer.from(iv),
        seqno: 0,
        macInfo,
        macKey,
      },
    });
    const sizesOfReads = readSizes();
    for (let at = 0; at < stream.length; ) {
      const n = Math.min(sizesOfReads.next().value as number, stream.length - at);
      const read = Buffer.allocUnsafeSlow(n);
      stream.copy(read, 0, at, at + n);
      decipher.decrypt(read, 0, n);
      if (decipher.retainsNoInput === true) sshCrypto.freeWhole(read);
      at += n;
    }

    const expected = payloads.map(sha);
    expect(copied).toEqual(expected);
    // The decipher frees nothing it handed on: that is for whoever holds it (SFTP, see freeChannelData).
    expect(handedOn.map(sha)).toEqual(expected);
    // The patch's promise holds for the two ciphers OpenSSH prefers.
    if (!macName) expect(decipher.retainsNoInput).toBe(true);
  });
});

describe('ssh2 patch: chacha20-poly1305@openssh.com is the wire format OpenSSH expects', () => {
  it('the length and payload of every packet are what a plain ChaCha20 per PROTOCOL.chacha20poly1305 gives, at any sequence number', async () => {
    await sshCrypto.init;
    const cipherInfo = sshCrypto.CIPHER_INFO['chacha20-poly1305@openssh.com'] as CipherInfo;
    // ssh2's key layout: the payload key first, the length key second (OpenSSH's K_2, K_1).
    const key = randomBytes(64);
    const [mainKey, lengthKey] = [key.subarray(0, 32), key.subarray(32)];
    /** The 16-byte IV OpenSSL's chacha20 takes: block counter (LE 32) then nonce; the seqno big-endian last. */
    const iv = (counter: number, seqno: number) => {
      const b = Buffer.alloc(16);
      b.writeUInt32LE(counter, 0);
      b.writeUInt32BE(seqno, 12);
      return b;
    };
    // Sequence numbers whose bytes differ (byte order) and that wrap past 2^32.
    for (const firstSeqno of [0, 0x01020304, 0xfffffffe]) {
      const wire: Buffer[] = [];
      const cipher = sshCrypto.createCipher({
        outbound: { onWrite: (b: Buffer) => wire.push(Buffer.from(b)), cipherInfo, cipherKey: Buffer.from(key), cipherIV: Buffer.alloc(0), seqno: firstSeqno },
      });
      for (let i = 0; i < 4; i++) {
        const seqno = (firstSeqno + i) >>> 0;
        const payload = randomBytes(1 + i * 5000);
        const packet = cipher.allocPacket(payload.length);
        payload.copy(packet, 5);
        const plain = Buffer.from(packet);
        wire.length = 0;
        cipher.encrypt(packet);
        const [lengthEnc, payloadEnc, mac] = wire as [Buffer, Buffer, Buffer];
        expect(lengthEnc).toEqual(createCipheriv('chacha20', lengthKey, iv(0, seqno)).update(plain.subarray(0, 4)));
        expect(payloadEnc).toEqual(createCipheriv('chacha20', mainKey, iv(1, seqno)).update(plain.subarray(4)));
        expect(mac).toHaveLength(16);
      }
    }
  });
});
