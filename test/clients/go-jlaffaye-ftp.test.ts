import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect } from 'vitest';
import { runProgram } from '../support/clients.js';
import { describeUnreadDataClient } from './helpers.js';

/**
 * Go's github.com/jlaffaye/ftp: plain, AUTH TLS and implicit FTPS. Built offline from Debian's
 * packaged sources (golang-go, golang-github-jlaffaye-ftp-dev) in GOPATH mode.
 */
const source = fileURLToPath(new URL('programs/jlaffaye-ftp.go', import.meta.url));
const build = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-go-'));
const binary = join(build, 'jlaffaye-ftp');

beforeAll(async () => {
  const env = ['GO111MODULE=off', 'GOPATH=/usr/share/gocode', `GOCACHE=${join(build, 'cache')}`, 'GOFLAGS=', 'GOTOOLCHAIN=local'];
  const r = await runProgram('env', [...env, 'go', 'build', '-o', binary, source], { timeoutMs: 240_000 });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
}, 250_000);

describeUnreadDataClient(
  'Go jlaffaye/ftp',
  [
    ['plain', '-'],
    ['explicit', '1.3'],
    ['explicit', '1.2'],
    ['implicit', '1.3'],
    ['implicit', '1.2'],
  ],
  (args) => runProgram(binary, args, { timeoutMs: 110_000 }),
);
