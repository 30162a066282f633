import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

/** The built CLI, as `node <BIN>` runs it (npm test builds first). */
export const BIN = resolve('dist/cli/main.js');

/** How {@link spawnCli} starts the process. */
export interface SpawnCliOptions {
  /** Variables on top of the test process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Node options before the script, e.g. `--openssl-legacy-provider`. */
  nodeArgs?: string[];
  /** An executable to run instead of `node [nodeArgs] BIN` (e.g. `bin/ftp-s3-bridge`); it gets the arguments only. */
  command?: string;
}

/** The bridge CLI as a child process; collects everything it writes to stdout and stderr. */
export class CliProcess {
  private text = '';
  private stdout = '';
  readonly process: ChildProcess;
  /** Resolves with the exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;

  constructor(child: ChildProcess) {
    this.process = child;
    child.stdout?.on('data', (c: Buffer) => {
      this.text += c.toString();
      this.stdout += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => (this.text += c.toString()));
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  /** Everything the process wrote so far, stdout and stderr interleaved as they arrived. */
  get output(): string {
    return this.text;
  }

  /** The complete JSON log lines written so far (on stdout), parsed. */
  logLines(): Record<string, unknown>[] {
    return this.stdout
      .slice(0, this.stdout.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /**
   * Waits until `find` returns a value (not undefined), checking after every chunk of output.
   * Rejects, with the output so far, after `timeoutMs` or when the process ends first.
   *
   * @param what what is awaited, for the error message
   */
  waitFor<T>(find: (cli: CliProcess) => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
    return new Promise<T>((done, fail) => {
      const check = (): boolean => {
        let found: T | undefined;
        try {
          found = find(this);
        } catch (err) {
          finish();
          fail(err as Error);
          return true;
        }
        if (found === undefined) return false;
        finish();
        done(found);
        return true;
      };
      const onClose = () => {
        if (check()) return;
        finish();
        fail(new Error(`CLI exited (code ${this.process.exitCode}, signal ${this.process.signalCode}) before ${what}; output:\n${this.text}`));
      };
      const onError = (err: Error) => {
        finish();
        fail(new Error(`CLI failed before ${what}: ${err.message}; output:\n${this.text}`));
      };
      const timer = setTimeout(() => {
        finish();
        fail(new Error(`no ${what} within ${timeoutMs} ms; output:\n${this.text}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.process.stdout?.off('data', check);
        this.process.stderr?.off('data', check);
        this.process.off('close', onClose);
        this.process.off('error', onError);
      };
      if (check()) return;
      // Registered after the constructor's listeners, so `text` already holds the chunk.
      this.process.stdout?.on('data', check);
      this.process.stderr?.on('data', check);
      this.process.once('close', onClose);
      this.process.once('error', onError);
      if (this.process.exitCode !== null || this.process.signalCode !== null) onClose();
    });
  }

  /** Waits until the output contains `text` (see {@link waitFor}). */
  waitForOutput(text: string, timeoutMs?: number): Promise<void> {
    return this.waitFor((c) => (c.output.includes(text) ? null : undefined), JSON.stringify(text), timeoutMs).then(() => undefined);
  }

  /** Waits for the JSON log line with this `msg` (see {@link waitFor}) and returns it. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>> {
    return this.waitFor((c) => c.logLines().find((l) => l.msg === msg), `log line "${msg}"`, timeoutMs);
  }

  /** SIGKILLs the process if it is still running (test cleanup). */
  kill(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
  }
}

/** Spawns the built CLI with `args`, stdout and stderr piped (see {@link CliProcess}). */
export function spawnCli(args: string[], options: SpawnCliOptions = {}): CliProcess {
  const [command, argv] = options.command ? [options.command, args] : [process.execPath, [...(options.nodeArgs ?? []), BIN, ...args]];
  const env = options.env ? { ...process.env, ...options.env } : process.env;
  return new CliProcess(spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], env }));
}

/** How {@link startCli} starts the process. */
export interface StartCliOptions extends SpawnCliOptions {
  /** Arguments before `--config <file>` (e.g. a subcommand); default none, i.e. `serve`. */
  args?: string[];
  /** How long to wait for the "FTP listening" log line; default 20 s. */
  timeoutMs?: number;
}

/** A CLI that logged "FTP listening". */
export interface ListeningCli {
  cli: CliProcess;
  process: ChildProcess;
  /** The FTP port from the "FTP listening" line. */
  port: number;
}

/**
 * Starts the built CLI with `--config <configFile>` (see `writeCliConfig`) and resolves once its
 * JSON log says "FTP listening" (the config must log at level info or lower). On a timeout or an
 * early exit it kills the process and rejects with everything the process wrote.
 */
export async function startCli(configFile: string, options: StartCliOptions = {}): Promise<ListeningCli> {
  const cli = spawnCli([...(options.args ?? []), '--config', configFile], options);
  try {
    const line = await cli.waitForLog('FTP listening', options.timeoutMs);
    return { cli, process: cli.process, port: line.port as number };
  } catch (err) {
    cli.kill();
    throw err;
  }
}
