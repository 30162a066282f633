#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { hashPassword, type HashAlgorithm } from '../accounts/passwords.js';
import { ConfigError, loadConfig, parseConfig } from '../config/load.js';
import type { BridgeConfig } from '../config/schema.js';
import { startBridge, type RunningBridge } from '../server/bridge.js';
import { startEmbeddedS3 } from '../server/embedded-s3.js';
import { createLogger } from '../server/logger.js';

const USAGE = `Usage:
  ftp-s3-bridge [serve] --config FILE     run the bridge (or set FTP_S3_BRIDGE_CONFIG)
  ftp-s3-bridge check-config --config FILE
  ftp-s3-bridge hash-password [--algorithm bcrypt|argon2id]   reads the password on stdin
  ftp-s3-bridge dev [--data DIR] [--port N]   embedded local S3 under ./data and a dev account
`;

const EXIT_CONFIG = 2;

async function main(argv: string[]): Promise<number> {
  const commands = ['serve', 'check-config', 'hash-password', 'dev', 'help'];
  const command = argv[0] && commands.includes(argv[0]) ? argv[0] : 'serve';
  const args = command === argv[0] ? argv.slice(1) : argv;
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      algorithm: { type: 'string', default: 'bcrypt' },
      data: { type: 'string', default: './data' },
      port: { type: 'string', default: '2121' },
      help: { type: 'boolean', short: 'h' },
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
      loadConfig({ file: values.config });
      process.stdout.write('configuration OK\n');
      return 0;
    case 'dev':
      return devCommand(values.data as string, Number(values.port));
    default:
      return serve(loadConfig({ file: values.config }));
  }
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

async function serve(config: BridgeConfig, onStop?: () => Promise<void>): Promise<number> {
  const logger = createLogger(config.log);
  let bridge: RunningBridge;
  try {
    bridge = await startBridge(config, logger);
  } catch (err) {
    logger.fatal({ err }, 'could not start');
    return 1;
  }
  await new Promise<void>((done) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      done();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await bridge.close();
  await onStop?.();
  logger.info('stopped');
  logger.flush();
  return 0;
}

/** `npm start`: the bridge on 127.0.0.1 with s3rver storing under ./data and a dev account. */
async function devCommand(dataDir: string, port: number): Promise<number> {
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
  const config = parseConfig({
    ftp: { host: '127.0.0.1', port, passive: { address: '127.0.0.1' } },
    s3: {
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    },
    accounts: [{ username, passwordHash: await hashPassword(password), bucket, prefix: '' }],
    log: { level: 'info', pretty: true },
  });
  process.stdout.write(
    `\nftp-s3-bridge dev mode: embedded S3 at ${s3.endpoint}, data under ${resolve(dataDir)}\n` +
      `  FTP: ftp://${username}:${password}@127.0.0.1:${port}/   (user "${username}", password "${password}")\n` +
      `  try: curl -T README.md ftp://${username}:${password}@127.0.0.1:${port}/\n\n`,
  );
  return serve(config, () => s3.close());
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
