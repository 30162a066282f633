import { FtpSrv } from 'ftp-srv';
import { describe, expect, it } from 'vitest';

/** patches/ftp-srv+4.6.3.patch: the parts a unit test can see. Each fails on stock ftp-srv. */
describe('ftp-srv patches', () => {
  it('constructing a server installs no process signal handlers (stock: SIGTERM → process.exit(0))', () => {
    const signals = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;
    const before = signals.map((s) => process.listenerCount(s));
    const server = new FtpSrv({ url: 'ftp://127.0.0.1:0', log: silentLog() as never });
    expect(signals.map((s) => process.listenerCount(s))).toEqual(before);
    void server;
  });
});

function silentLog(): Record<string, unknown> {
  const noop = () => undefined;
  const log: Record<string, unknown> = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop };
  log.child = () => log;
  return log;
}
