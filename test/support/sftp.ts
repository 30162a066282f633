import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type SFTPWrapper } from 'ssh2';

/** A directory of keys made with ssh-keygen: a host key for the bridge and a client key pair. */
export class SshKeys {
  readonly dir = mkdtempSync(join(tmpdir(), 'sftp-test-keys-'));
  readonly hostKey = join(this.dir, 'host_ed25519');
  readonly clientKey = join(this.dir, 'client_ed25519');

  static async create(): Promise<SshKeys> {
    const keys = new SshKeys();
    await keys.keygen(keys.hostKey, 'ed25519');
    await keys.keygen(keys.clientKey, 'ed25519');
    return keys;
  }

  /** The client key's public line (for `accounts[].publicKeys`). */
  get clientPublicKey(): string {
    return readFileSync(`${this.clientKey}.pub`, 'utf8').trim();
  }

  keygen(file: string, type: 'ed25519' | 'rsa' | 'ecdsa'): Promise<void> {
    return run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'test', '-f', file]).then((r) => {
      if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
    });
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The `sftp` config section of a test bridge: loopback, any free port, the given host key. */
export const sftpConfig = (hostKey: string, extra: Record<string, unknown> = {}) => ({
  sftp: { enabled: true, host: '127.0.0.1', port: 0, hostKeys: [hostKey], ...extra },
});

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end (at most `timeoutMs`), with its output. */
export function run(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { timeout: options.timeoutMs ?? 120_000, env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** OpenSSH client options for a throwaway server: no known_hosts, no agent, no config file. */
export const SSH_OPTIONS = [
  '-F', '/dev/null',
  '-o', 'StrictHostKeyChecking=no',
  '-o', 'UserKnownHostsFile=/dev/null',
  '-o', `LogLevel=${process.env.SFTP_TEST_SSH_LOGLEVEL ?? 'ERROR'}`,
  '-o', 'IdentityAgent=none',
  '-o', 'ConnectTimeout=30',
];

export interface SftpLogin {
  port: number;
  user: string;
  /** Password login (OpenSSH asks the askpass program below); otherwise `key`. */
  password?: string;
  key?: string;
  /** The local address the client connects from (OpenSSH BindAddress). */
  bindAddress?: string;
}

/**
 * The program OpenSSH runs for a password (SSH_ASKPASS): it prints $SFTP_TEST_PASSWORD. One per test
 * process, removed when it exits. OpenSSH 8.4 and later use it without a terminal or $DISPLAY when
 * SSH_ASKPASS_REQUIRE=force, so no other program (sshpass) is needed.
 */
let askpassProgram: string | undefined;
function askpass(): string {
  if (askpassProgram) return askpassProgram;
  const dir = mkdtempSync(join(tmpdir(), 'sftp-askpass-'));
  const file = join(dir, 'askpass');
  writeFileSync(file, '#!/bin/sh\nprintf \'%s\\n\' "$SFTP_TEST_PASSWORD"\n', { mode: 0o700 });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  askpassProgram = file;
  return file;
}

/**
 * The client program and its arguments for a login: with a password, BatchMode is turned off before
 * `-b` turns it on (ssh takes an option's first value), so that ssh asks the askpass program.
 */
function client(program: 'sftp' | 'scp', login: SftpLogin): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  const common = [...SSH_OPTIONS, '-P', String(login.port), ...(login.bindAddress ? ['-o', `BindAddress=${login.bindAddress}`] : [])];
  if (login.password !== undefined) {
    const auth = ['-o', 'BatchMode=no', '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1'];
    return { command: program, args: [...common, ...auth], env: { SSH_ASKPASS: askpass(), SSH_ASKPASS_REQUIRE: 'force', SFTP_TEST_PASSWORD: login.password } };
  }
  const auth = ['-o', 'PreferredAuthentications=publickey', '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-i', login.key as string];
  return { command: program, args: [...common, ...auth], env: {} };
}

/**
 * OpenSSH `sftp -b`: runs the batch commands (one per line) as `login.user` on 127.0.0.1; the
 * batch stops at the first command that fails (exit code 1) unless it starts with `-`.
 */
export async function sftpBatch(login: SftpLogin, commands: string[], options: { timeoutMs?: number; /** more `sftp` options, e.g. `-vv` */ args?: string[] } = {}): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sftp-batch-'));
  const batch = join(dir, 'batch');
  writeFileSync(batch, commands.join('\n') + '\n');
  const { command, args, env } = client('sftp', login);
  try {
    return await run(command, [...args, ...(options.args ?? []), '-b', batch, `${login.user}@127.0.0.1`], { env, timeoutMs: options.timeoutMs });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `scp` (OpenSSH 9: over SFTP) between a local path and one on the bridge (`:path`). */
export function scp(login: SftpLogin, from: string, to: string): Promise<RunResult> {
  const { command, args, env } = client('scp', login);
  const remote = (p: string) => (p.startsWith(':') ? `${login.user}@127.0.0.1${p}` : p);
  return run(command, [...args, remote(from), remote(to)], { env });
}

/** Starts `sftp -b batchFile` and returns the process, for tests that kill it midway. */
export function spawnSftp(login: SftpLogin, batchFile: string): ChildProcess {
  const { command, args, env } = client('sftp', login);
  return spawn(command, [...args, '-b', batchFile, `${login.user}@127.0.0.1`], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * An ssh2 SFTP client session on 127.0.0.1:`port`, logged in with a password, for requests no CLI
 * client sends on demand; `close` ends the SSH connection.
 */
export async function sftpSession(port: number, username: string, password: string): Promise<{ sftp: SFTPWrapper; close: () => void }> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port, username, password, hostVerifier: () => true, readyTimeout: 30_000 });
  });
  try {
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s))));
    return { sftp, close: () => client.end() };
  } catch (err) {
    client.end();
    throw err;
  }
}
