import { execFileSync } from 'node:child_process';
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

  it('a server given a logger never loads bunyan (stock: bunyan and moment.js loaded and a bunyan logger made anyway)', () => {
    // A fresh process: this one may have loaded bunyan for another test.
    const script = `
      import { registerHooks } from 'node:module';
      const loaded = [];
      registerHooks({ load(url, context, next) { loaded.push(url); return next(url, context); } });
      const { FtpSrv } = await import('ftp-srv');
      const noop = () => undefined;
      const log = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop, child: () => log };
      const withLogger = new FtpSrv({ url: 'ftp://127.0.0.1:0', log });
      const bunyanWithLogger = loaded.some((url) => url.includes('/node_modules/bunyan/'));
      // Without a logger ftp-srv asks for bunyan, which package.json's overrides replace with a stand-in that throws.
      let defaultLogger;
      try { defaultLogger = new FtpSrv({ url: 'ftp://127.0.0.1:0' }).log.constructor.name; } catch (err) { defaultLogger = err.message; }
      console.log(JSON.stringify({ bunyanWithLogger, ownLogger: withLogger.log === log, defaultLogger }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(JSON.parse(out)).toEqual({ bunyanWithLogger: false, ownLogger: true, defaultLogger: expect.stringContaining('empty stand-in') });
  });
});

function silentLog(): Record<string, unknown> {
  const noop = () => undefined;
  const log: Record<string, unknown> = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop };
  log.child = () => log;
  return log;
}
