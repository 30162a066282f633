import { afterEach, describe, expect, it, vi } from 'vitest';
import { TransferControl } from '../../../src/ftp/transfer-control.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('TransferControl: the data idle clock', () => {
  it('runs only while the transfer waits on the client, and aborts with TRANSFER_ABORTED', () => {
    vi.useFakeTimers();
    const transfer = new TransferControl(2000);
    let waiting = false;
    transfer.watchIdle(() => waiting);
    vi.advanceTimersByTime(60_000); // the bridge's side is slow (S3, memory budget): no abort
    expect(transfer.signal.aborted).toBe(false);
    waiting = true;
    vi.advanceTimersByTime(1500);
    transfer.moved(10); // a byte moved: the clock starts again
    vi.advanceTimersByTime(1500);
    expect(transfer.signal.aborted).toBe(false);
    expect(transfer.bytes).toBe(10);
    vi.advanceTimersByTime(1000);
    expect(transfer.signal.aborted).toBe(true);
    expect(transfer.signal.reason).toMatchObject({ code: 'TRANSFER_ABORTED' });
    transfer.end();
  });

  it('0 never aborts; end() stops the clock', () => {
    vi.useFakeTimers();
    const never = new TransferControl(0);
    never.watchIdle(() => true);
    vi.advanceTimersByTime(3_600_000);
    expect(never.signal.aborted).toBe(false);
    const ended = new TransferControl(1000);
    ended.watchIdle(() => true);
    ended.end();
    vi.advanceTimersByTime(10_000);
    expect(ended.signal.aborted).toBe(false);
  });
});
