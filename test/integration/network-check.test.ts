import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { writeCliConfig } from '../support/cli-config.js';
import { BIN } from '../support/cli-process.js';
import { runProgram } from '../support/clients.js';

/** `ftp-s3-bridge check` (the built CLI, dist/) against a running bridge. */
const cli = (args: string[]) => runProgram(process.execPath, [BIN, ...args], { timeoutMs: 60_000 });

const dir = mkdtempSync(join(tmpdir(), 'ftp-check-'));

/** Only ftp.host/port are read by `check`; the rest must merely be a valid config. */
const configFile = (port: number): string =>
  writeCliConfig(
    inject('s3'),
    { ftp: { port }, accounts: [{ username: 'someone', passwordHash: `$2b$10$${'a'.repeat(53)}`, bucket: 'some-bucket' }] },
    join(dir, `config-${port}.yaml`),
  );

describe('ftp-s3-bridge check', () => {
  let good: TestBridge;
  let nat: TestBridge;
  beforeAll(async () => {
    good = await TestBridge.start();
    // Announces an address nothing listens on: the classic "227 then Connection refused".
    const portMin = 30000 + Math.floor(Math.random() * 100) * 10;
    nat = await TestBridge.start({ ftp: { passive: { address: '127.0.0.3', portMin, portMax: portMin + 9 } } });
  });
  afterAll(async () => {
    await good?.close();
    await nat?.close();
  });

  it('passes every step against a working bridge and leaves no file behind', async () => {
    const r = await cli(['check', '--config', configFile(good.port), '--user', USER, '--password', PASSWORD]);
    const out = r.stdout.toString();
    expect(out).toContain('OK    log in as alice');
    expect(out).toContain('OK    store');
    expect(out).toContain('OK    list over a passive data connection');
    expect(out).toContain('OK    retrieve over an active (PORT) data connection');
    expect(out).toContain('all checks passed');
    expect(r.code).toBe(0);
    expect(await good.keys()).toEqual([]);
  });

  it('names the advertised address and port that were unreachable', async () => {
    const r = await cli(['check', '--host', '127.0.0.1', '--port', String(nat.port), '--user', USER, '--password', PASSWORD]);
    const out = r.stdout.toString();
    expect(r.code).toBe(1);
    expect(out).toMatch(/FAIL {2}store .* over a passive data connection/);
    expect(out).toMatch(/the server advertised 127\.0\.0\.3:\d+ for the passive data connection \("227 Entering Passive Mode \(127,0,0,3,\d+,\d+\)"\), but connecting to it failed: connection refused/);
    expect(out).toContain('ftp.passive.address');
  });

  it('says that the login failed, and that the control port is unreachable', async () => {
    const bad = await cli(['check', '--config', configFile(good.port), '--user', USER, '--password', 'Sekr3t-not-it']);
    expect(bad.code).toBe(1);
    expect(bad.stdout.toString()).toMatch(/FAIL {2}log in as alice\n.*login failed/);
    expect(bad.stdout.toString()).not.toContain('Sekr3t-not-it');
    const down = await cli(['check', '--host', '127.0.0.1', '--port', '1', '--user', USER, '--password', PASSWORD]);
    expect(down.code).toBe(1);
    expect(down.stdout.toString()).toMatch(/could not connect to the FTP control port 127\.0\.0\.1:1: connection refused/);
  });
});
