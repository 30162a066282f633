import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, sha256, TestBridge, USER } from '../support/bridge.js';
import { runProgram } from '../support/clients.js';
import { run, sftpConfig, SshKeys } from '../support/sftp.js';
import { expectSameTree, expectTreeInS3, makeTree, readTree, scratch } from './helpers.js';

/** curl (libssh2), lftp (over OpenSSH's ssh) and rclone's sftp backend against the SFTP front end. */
let keys: SshKeys;
let bridge: TestBridge;

beforeAll(async () => {
  keys = await SshKeys.create();
  bridge = await TestBridge.start({ config: sftpConfig(keys.hostKey) });
}, 60_000);
afterAll(async () => {
  await bridge?.close();
  keys?.remove();
});

const url = (path: string) => `sftp://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${bridge.sftpPort}${path}`;

describe('curl sftp://', () => {
  it('uploads and downloads byte-exact, creating the missing directory', async () => {
    const dir = scratch('curl-sftp');
    const tree = makeTree(dir, { 'up.bin': 700_000 });
    // -k: no known_hosts check; --ftp-create-dirs also applies to SFTP.
    const up = await run('curl', ['-sS', '-k', '--ftp-create-dirs', '-T', join(dir, 'up.bin'), url('/curl/up.bin')]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    await expectTreeInS3(bridge, 'curl/', tree);
    const down = await runProgram('curl', ['-sS', '-k', url('/curl/up.bin')]);
    expect(down.code).toBe(0);
    expect(sha256(down.stdout)).toBe(sha256(tree.get('up.bin') as Buffer));
  });
});

describe('lftp sftp://', () => {
  it('mirrors a tree up and back', async () => {
    const src = scratch('lftp-sftp');
    const tree = makeTree(src, { 'a.txt': 10, 'photos/b.jpg': 300_000, 'photos/c.jpg': 1_200_000 });
    const back = scratch('lftp-sftp-back');
    const connectProgram = `ssh -a -x -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no -o LogLevel=ERROR`;
    const script = [
      `set sftp:connect-program "${connectProgram}"`,
      'set net:max-retries 1',
      `open -u ${USER},"${PASSWORD}" -p ${bridge.sftpPort} sftp://127.0.0.1`,
      `mirror -R ${src} /lftp`,
      `mirror /lftp ${back}`,
      'bye',
    ].join('; ');
    const r = await run('lftp', ['-c', script], { timeoutMs: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await expectTreeInS3(bridge, 'lftp/', tree);
    expectSameTree(readTree(back), tree);
  }, 120_000);
});

describe('rclone sftp backend', () => {
  it('copies a tree, checks it by content and reads it back', async () => {
    const obscured = (await runProgram('rclone', ['obscure', PASSWORD])).stdout.toString().trim();
    // The host key is checked for real: the configured key, as known_hosts names it.
    const knownHosts = join(keys.dir, 'known_hosts');
    const [type, key] = readFileSync(`${keys.hostKey}.pub`, 'utf8').split(' ');
    writeFileSync(knownHosts, `[127.0.0.1]:${bridge.sftpPort} ${type} ${key}\n`);
    const remote = `:sftp,host=127.0.0.1,port=${bridge.sftpPort},user=${USER},pass=${obscured},known_hosts_file=${knownHosts}:`;
    const rclone = (...args: string[]) => run('rclone', ['--config', '/dev/null', '--low-level-retries', '1', '--retries', '1', ...args], { timeoutMs: 120_000 });
    const src = scratch('rclone-sftp');
    const tree = makeTree(src, { 'a.txt': 5, 'photos/b.jpg': 400_000, 'photos/été/c.jpg': 6_000_000 });
    const copy = await rclone('copy', src, `${remote}rc`);
    expect(copy.code, copy.stderr).toBe(0);
    await expectTreeInS3(bridge, 'rc/', tree);
    const check = await rclone('check', '--download', src, `${remote}rc`);
    expect(check.code, check.stderr).toBe(0);
    const back = scratch('rclone-sftp-back');
    const down = await rclone('copy', `${remote}rc`, back);
    expect(down.code, down.stderr).toBe(0);
    expectSameTree(readTree(back), tree);
    expect(readFileSync(join(back, 'a.txt'))).toEqual(tree.get('a.txt'));
  }, 120_000);
});
