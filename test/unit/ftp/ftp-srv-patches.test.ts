import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { FtpSrv } from 'ftp-srv';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { commandTable } from '../../../src/ftp/commands/index.js';
import { Connection } from '../../../src/ftp/connection.js';
import { ControlListener } from '../../../src/ftp/ftp-srv-adapter.js';
import { fakeContext, ReadyDataConnector } from '../../support/fake-connection.js';

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

/**
 * The control connection is read by src/ftp/control-channel.ts, put in place by the adapter: the
 * patch no longer touches ftp-srv's reader (stock: a command split across TCP segments is two
 * 502s, pipelined commands run concurrently, quotes are stripped from arguments).
 */
describe('ftp-srv with the adapter: our reader reads the control connection', () => {
  it('joins a command split across segments, runs pipelined commands in order, keeps the argument verbatim, 501s control characters', async () => {
    let accepted: Connection | undefined;
    let closed!: () => void;
    const gone = new Promise<void>((resolve) => (closed = resolve));
    const listener = new ControlListener(
      { host: '127.0.0.1', port: 0, passive: { portMin: 47620, portMax: 47629 }, log: pino({ level: 'silent' }) },
      {
        incoming: (socket) => listener.serve(socket),
        accept: (peer) => (accepted = new Connection(peer, fakeContext(), commandTable)),
        closed: () => closed(),
      },
    );
    const { port } = await listener.listen();
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    const lines = () => received.split('\r\n').filter(Boolean);
    const waitForLines = async (n: number) => {
      for (const deadline = Date.now() + 20_000; lines().length < n; await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > deadline) throw new Error(`waiting for ${n} lines, got: ${JSON.stringify(received)}`);
      }
    };
    try {
      await waitForLines(1);
      socket.write('NO');
      await new Promise((r) => setTimeout(r, 50));
      socket.write('OP\r\nUSER "quoted"  name\r\nSYST\r\nNOOP\x01\r\n');
      await waitForLines(5);
      expect(lines()).toEqual(['220 Ready', '200 NOOP ok', '331 Password required', '215 UNIX Type: L8', '501 Control characters are not allowed in commands']);
      expect(accepted?.username).toBe('"quoted"  name');
      // The client goes: the data connection set up goes with it.
      const setUp = new ReadyDataConnector({} as Socket);
      (accepted as Connection).dataConnector = setUp;
      socket.destroy();
      await gone;
      expect(setUp.ended).toBe(true);
    } finally {
      socket.destroy();
      await listener.close();
    }
  });
});

function silentLog(): Record<string, unknown> {
  const noop = () => undefined;
  const log: Record<string, unknown> = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop };
  log.child = () => log;
  return log;
}
