import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../src/ftp/commands/index.js';

const require = createRequire(import.meta.url);
const root = resolve(import.meta.dirname, '../../..');

/** Every directive (aliases included) the command registry of stock ftp-srv 4.6.3 answers. */
const STOCK_FTP_SRV_DIRECTIVES = [
  'ABOR', 'ALLO', 'APPE', 'AUTH', 'CDUP', 'XCUP', 'CWD', 'XCWD', 'DELE', 'FEAT', 'HELP', 'LIST', 'MDTM', 'MKD', 'XMKD',
  'MODE', 'NLST', 'NOOP', 'OPTS', 'PASS', 'PASV', 'PORT', 'PWD', 'XPWD', 'QUIT', 'REST', 'RETR', 'RMD', 'XRMD', 'RNFR',
  'RNTO', 'SITE', 'SIZE', 'STAT', 'STOR', 'STOU', 'STRU', 'SYST', 'TYPE', 'USER', 'PBSZ', 'PROT', 'EPRT', 'EPSV',
];

/**
 * patches/ftp-srv+4.6.3.patch and package.json's overrides: ftp-srv loads only what the bridge runs,
 * and ip, bunyan, moment and yargs are replaced by the stand-in of stubs/ (docs/supply-chain.md).
 */
describe('ftp-srv: what the bridge loads of it', () => {
  it('loads only the HELP, PASS and QUIT registrations and the active connector, and none of the replaced packages', () => {
    // A fresh process: this one may have loaded other ftp-srv files for another test.
    const internals = pathToFileURL(resolve(root, 'src/ftp/ftp-srv-adapter.ts')).href;
    const script = `
      import { registerHooks } from 'node:module';
      const loaded = [];
      registerHooks({
        // The sources import each other as .js, as the build has them.
        resolve(specifier, context, next) {
          try { return next(specifier, context); } catch (err) {
            if (!specifier.endsWith('.js') || !context.parentURL?.includes('/src/')) throw err;
            return next(specifier.slice(0, -3) + '.ts', context);
          }
        },
        load(url, context, next) { loaded.push(url); return next(url, context); },
      });
      await import(${JSON.stringify(internals)});
      const { FtpSrv } = await import('ftp-srv');
      const noop = () => undefined;
      const log = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop, child: () => log };
      new FtpSrv({ url: 'ftp://127.0.0.1:0', log });
      console.log(JSON.stringify(loaded));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    const loaded = (JSON.parse(out) as string[]).map((url) => decodeURIComponent(url));
    const ftpSrvFiles = loaded.filter((url) => url.includes('/node_modules/ftp-srv/')).map((url) => url.split('/node_modules/ftp-srv/')[1] ?? url);
    expect(ftpSrvFiles.filter((f) => f.startsWith('src/commands/registration/')).sort()).toEqual([
      'src/commands/registration/help.js',
      'src/commands/registration/pass.js',
      'src/commands/registration/quit.js',
    ]);
    expect(ftpSrvFiles).toContain('src/connector/active.js');
    expect(ftpSrvFiles).not.toContain('src/connector/passive.js');
    expect(ftpSrvFiles).not.toContain('src/helpers/file-stat.js');
    expect(loaded.filter((url) => /\/stubs\/|\/node_modules\/(ip|bunyan|moment|yargs|dtrace-provider)\//.test(url))).toEqual([]);
  });

  it('every command stock ftp-srv answered is answered still, by the command table', () => {
    const ours = new Set(Object.keys(COMMANDS));
    expect(STOCK_FTP_SRV_DIRECTIVES.filter((d) => !ours.has(d))).toEqual([]);
  });

  it("the active connector's address check (isSameAddress) matches what ip.isEqual matched, and refuses non-addresses", () => {
    const { isSameAddress } = require('ftp-srv/src/helpers/same-address') as { isSameAddress(a: unknown, b: unknown): boolean };
    const same: [string, string][] = [
      ['127.0.0.1', '127.0.0.1'],
      ['::ffff:127.0.0.1', '127.0.0.1'],
      ['127.0.0.1', '::ffff:127.0.0.1'],
      ['::FFFF:7f00:1', '127.0.0.1'],
      ['::1', '0:0:0:0:0:0:0:1'],
      ['fe80::1', 'FE80:0::1'],
    ];
    const different: [unknown, unknown][] = [
      ['127.0.0.1', '127.0.0.2'],
      ['::1', '127.0.0.1'],
      ['::ffff:127.0.0.2', '127.0.0.1'],
      ['localhost', '127.0.0.1'],
      ['127.0.0.1', '127.0.0.1 '],
      ['', ''],
      [undefined, '127.0.0.1'],
    ];
    expect(same.filter(([a, b]) => !isSameAddress(a, b))).toEqual([]);
    expect(different.filter(([a, b]) => isSameAddress(a, b))).toEqual([]);
  });

  it('a replaced package, if anything loads it, fails loudly instead of half-working', () => {
    const fromFtpSrv = createRequire(require.resolve('ftp-srv/package.json'));
    for (const name of ['ip', 'bunyan', 'moment', 'yargs']) {
      expect(() => fromFtpSrv(name), name).toThrow(/empty stand-in/);
    }
  });
});
