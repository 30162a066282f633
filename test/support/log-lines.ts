import { PassThrough } from 'node:stream';

/**
 * The bridge's JSON log lines as they come (pass `stream` as TestBridgeOptions.logStream, at log
 * level info). A test waits for the line that reports an event (e.g. the audit line of a failed
 * upload) instead of sleeping, then looks at S3.
 */
export class LogLines {
  readonly stream = new PassThrough();
  readonly lines: Record<string, unknown>[] = [];

  constructor() {
    let pending = '';
    this.stream.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        this.lines.push(JSON.parse(pending.slice(0, nl)) as Record<string, unknown>);
        pending = pending.slice(nl + 1);
      }
    });
  }

  /** The first audit line of a file operation (`event: 'operation'`) on this virtual path (with this result). */
  operation(op: string, path: string, result?: 'ok' | 'error'): Record<string, unknown> | undefined {
    return this.lines.find((l) => l.event === 'operation' && l.operation === op && l.path === path && (result === undefined || l.result === result));
  }

  /** Waits (up to `timeoutMs`, generous for a loaded machine) for the audit line of `op` on `path`. */
  async waitForOperation(op: string, path: string, result?: 'ok' | 'error', timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.operation(op, path, result);
      if (line) return line;
      if (Date.now() > deadline) throw new Error(`no audit line for ${op} ${path} ${result ?? ''} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
