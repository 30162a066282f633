#!/usr/bin/env node
// First: on a too old Node.js this exits 2 with one line before any other module is evaluated.
import './node-version.js';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ssh2 } from '../config/ssh2-module.js';
import { hashPassword, type HashAlgorithm } from '../accounts/passwords.js';
import { ConfigError, loadConfig, parseConfig, readConfig, type Deprecation } from '../config/load.js';
import type { BridgeConfig } from '../config/schema.js';
import { startBridge, type RunningBridge } from '../server/bridge.js';
import { startEmbeddedS3 } from '../server/embedded-s3.js';
import { accountsCommand, ACCOUNTS_USAGE } from './accounts.js';
import { runCheck } from './check.js';
import { probeCommand } from './probe.js';
import { sweepUploadsCommand } from './sweep-uploads.js';
import { createLogger } from '../server/logger.js';
import { fingerprintOf, HostKeyError } from '../sftp/host-keys.js';

const USAGE = `Usage:
  ftp-s3-bridge [serve] --config FILE     run the bridge (or set FTP_S3_BRIDGE_CONFIG)
  ftp-s3-bridge check-config --config FILE [--probe]
                                          validate the config; when it uses deprecated key paths, print
                                          it with them moved (YAML) on stdout, warnings on stderr
                                          --probe: what each bucket accepts (checksums, Object Lock); writes and deletes a probe object
  ftp-s3-bridge check --config FILE --user U --password P [--host H] [--port N]
                                          log in to the running bridge; store, list, retrieve, delete a file
  ftp-s3-bridge sweep-uploads --config FILE --older-than DURATION
                                          abort incomplete multipart uploads older than DURATION (30s, 15m, 24h)
  ftp-s3-bridge hash-password [--algorithm bcrypt|argon2id]   reads the password on stdin
  ftp-s3-bridge dev [--data DIR] [--port N] [--http-port N] [--sftp-port N]
                                          embedded local S3 under ./data and a dev account, all on 127.0.0.1;
                                          SFTP on port 2222 with a host key generated under DIR
${ACCOUNTS_USAGE}`;

const EXIT_CONFIG = 2;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'accounts') return accountsCommand(argv.slice(1));
  const commands = ['serve', 'check', 'check-config', 'hash-password', 'dev', 'help', 'sweep-uploads'];
  const command = argv[0] && commands.includes(argv[0]) ? argv[0] : 'serve';
  const args = command === argv[0] ? argv.slice(1) : argv;
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      algorithm: { type: 'string', default: 'bcrypt' },
      data: { type: 'string', default: './data' },
      port: { type: 'string' },
      'http-port': { type: 'string' },
      'sftp-port': { type: 'string' },
      host: { type: 'string' },
      user: { type: 'string' },
      password: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      'older-than': { type: 'string' },
      probe: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  switch (command) {
    case 'hash-password':
      return hashPasswordCommand(values.algorithm as string);
    case 'check-config':
      return checkConfigCommand(values.config, values.probe === true);
    case 'dev':
      return devCommand(values.data as string, Number(values.port ?? '2121'), Number(values['http-port'] ?? '9464'), Number(values['sftp-port'] ?? '2222'));
    case 'check':
      return checkCommand(values);
    case 'sweep-uploads':
      return sweepUploadsCommand(loadConfig({ file: values.config }), values['older-than']);
    default: {
      const { config, deprecations } = readConfig({ file: values.config });
      return serve(config, undefined, undefined, deprecations);
    }
  }
}

/**
 * `check-config`: exits 2 with one line per bad field, or 0. Stdout is `configuration OK`, or,
 * when the file uses deprecated key paths, the file with them moved (ready to replace it; its
 * comments kept where they can be), with the warnings and `configuration OK` on stderr. With
 * `probe`, then what each bucket accepts (probe.ts), exit 1 when it refuses what the config needs.
 */
async function checkConfigCommand(file: string | undefined, probe: boolean): Promise<number> {
  const { config, deprecations, migratedFile } = readConfig({ file });
  for (const d of deprecations) process.stderr.write(`config warning: ${d.message}\n`);
  if (migratedFile === undefined) {
    process.stdout.write('configuration OK\n');
  } else {
    process.stdout.write(migratedFile);
    process.stderr.write('configuration OK; stdout holds the file with the deprecated keys moved to their new paths\n');
  }
  if (!probe) return 0;
  // Stdout already holds the migrated file, if any: the probe's lines must not end up in it.
  const out = migratedFile === undefined ? process.stdout : process.stderr;
  return probeCommand(config, (line) => out.write(line + '\n'));
}

async function checkCommand(values: { config?: string; host?: string; port?: string; user?: string; password?: string }): Promise<number> {
  // The environment keeps the password out of the process list.
  const password = values.password ?? process.env.FTP_S3_BRIDGE_CHECK_PASSWORD;
  if (!values.user || password === undefined) {
    process.stderr.write('check needs --user and --password (or FTP_S3_BRIDGE_CHECK_PASSWORD)\n');
    return EXIT_CONFIG;
  }
  let host = values.host;
  let port = values.port ? Number(values.port) : undefined;
  if (!host || port === undefined) {
    const ftp = loadConfig({ file: values.config }).ftp;
    // A wildcard listener is reached on loopback from the machine itself.
    host ??= ftp.host === '0.0.0.0' ? '127.0.0.1' : ftp.host === '::' ? '::1' : ftp.host;
    port ??= ftp.port;
  }
  const passed = await runCheck({ host, port, user: values.user, password, out: (l) => process.stdout.write(l + '\n') });
  return passed ? 0 : 1;
}

async function hashPasswordCommand(algorithm: string): Promise<number> {
  if (algorithm !== 'bcrypt' && algorithm !== 'argon2id') {
    process.stderr.write('--algorithm must be bcrypt or argon2id\n');
    return EXIT_CONFIG;
  }
  const input = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (!input) {
    process.stderr.write('no password on stdin\n');
    return 1;
  }
  process.stdout.write((await hashPassword(input, algorithm as HashAlgorithm)) + '\n');
  return 0;
}

/**
 * @param onStop runs after the bridge stopped, or failed to start
 * @param startFailure one line for a start error the user can fix (the fatal log line otherwise)
 */
async function serve(
  config: BridgeConfig,
  onStop?: () => Promise<void>,
  startFailure?: (err: unknown) => string | undefined,
  deprecations: Deprecation[] = [],
): Promise<number> {
  const logger = createLogger(config.log);
  for (const d of deprecations) logger.warn({ deprecated: d.from, use: d.to, in: d.sources }, d.message);
  let bridge: RunningBridge;
  try {
    bridge = await startBridge(config, logger);
  } catch (err) {
    await onStop?.();
    // An invalid accounts file is a configuration error: exit 2 with one line per bad field.
    if (err instanceof ConfigError) throw err;
    // So is a host key that cannot be read or used: one line naming the file.
    if (err instanceof HostKeyError) throw new ConfigError([err.message]);
    const line = startFailure?.(err);
    if (line) process.stderr.write(line + '\n');
    else logger.fatal({ err }, 'could not start');
    return 1;
  }
  await new Promise<void>((done) => {
    let signals = 0;
    const stop = (signal: string) => {
      if (++signals === 1) {
        logger.info({ signal, drainTimeoutSeconds: config.shutdown.drainTimeoutSeconds }, 'shutting down: draining');
        bridge.drain().then(done, done);
      } else {
        logger.warn({ signal }, 'second signal: aborting transfers in flight');
        void bridge.close();
      }
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await onStop?.();
  logger.info('stopped');
  logger.flush();
  return 0;
}

/**
 * `npm start`: the bridge on 127.0.0.1 with s3rver storing under ./data and a dev account. Every
 * port, the ops port included, listens on 127.0.0.1 only: the dev account's password is "dev".
 */
async function devCommand(dataDir: string, port: number, httpPort: number, sftpPort: number): Promise<number> {
  // s3rver's ListObjectsV2 continuation tokens need OpenSSL's legacy provider.
  if (!process.execArgv.includes('--openssl-legacy-provider') && !process.env.NODE_OPTIONS?.includes('--openssl-legacy-provider')) {
    const child = spawn(process.execPath, ['--openssl-legacy-provider', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    return new Promise((done) => child.on('exit', (code) => done(code ?? 1)));
  }
  const bucket = 'ftp-s3-bridge';
  const s3 = await startEmbeddedS3({ directory: resolve(dataDir), buckets: [bucket] });
  const username = 'dev';
  const password = 'dev';
  const hostKey = devHostKey(resolve(dataDir));
  const config = parseConfig({
    ftp: { host: '127.0.0.1', port, passive: { address: '127.0.0.1' } },
    http: { host: '127.0.0.1', port: httpPort },
    s3: {
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    },
    accounts: [{ username, passwordHash: await hashPassword(password), bucket, prefix: '' }],
    sftp: { enabled: true, host: '127.0.0.1', port: sftpPort, hostKeys: [hostKey.file] },
    log: { level: 'info', pretty: true },
  });
  process.stdout.write(
    `\nftp-s3-bridge dev mode: embedded S3 at ${s3.endpoint}, data under ${resolve(dataDir)}\n` +
      `  FTP: ftp://${username}:${password}@127.0.0.1:${port}/   (user "${username}", password "${password}")\n` +
      `  try: curl -T README.md ftp://${username}:${password}@127.0.0.1:${port}/\n` +
      `  SFTP: sftp -P ${sftpPort} ${username}@127.0.0.1   (password "${password}"; host key ${hostKey.fingerprint}${hostKey.created ? ', new' : ''}, ${hostKey.file})\n\n`,
  );
  const portInUse = (err: unknown) => {
    const { code, port: taken } = err as { code?: string; port?: number };
    if (code !== 'EADDRINUSE') return undefined;
    if (taken === httpPort) return `ftp-s3-bridge dev: the ops port 127.0.0.1:${httpPort} (metrics, health) is in use; pick another with --http-port N (0: any free port)`;
    if (taken === sftpPort && taken !== port) return `ftp-s3-bridge dev: the SFTP port 127.0.0.1:${sftpPort} is in use; pick another with --sftp-port N (0: any free port)`;
    return `ftp-s3-bridge dev: the FTP port 127.0.0.1:${taken ?? port} is in use; pick another with --port N`;
  };
  return serve(config, () => s3.close(), portInUse);
}

/**
 * The dev mode's SFTP host key: `<data>/ssh_host_ed25519_key`, made (ed25519, OpenSSH format,
 * mode 0600) on the first run and kept, so clients see the same host key on every run.
 */
function devHostKey(dataDir: string): { file: string; fingerprint: string; created: boolean } {
  const file = join(dataDir, 'ssh_host_ed25519_key');
  let created = false;
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    const pair = ssh2().utils.generateKeyPairSync('ed25519', { comment: 'ftp-s3-bridge dev' });
    writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
    writeFileSync(`${file}.pub`, pair.public + '\n');
    created = true;
  }
  const parsed = ssh2().utils.parseKey(readFileSync(file));
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new ConfigError([`sftp.hostKeys: ${file} is not a usable private key`]);
  return { file, fingerprint: fingerprintOf(key.getPublicSSH()), created };
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      for (const line of err.problems) process.stderr.write(`config error: ${line}\n`);
      process.exitCode = EXIT_CONFIG;
      return;
    }
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n${USAGE}`);
      process.exitCode = EXIT_CONFIG;
      return;
    }
    process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
