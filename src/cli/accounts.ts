import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseAccountsFile, readAccountsFile } from '../accounts/accounts-file.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { redactUrl } from '../config/redact.js';
import type { AccountConfig, BridgeConfig } from '../config/schema.js';
import { S3ClientCache } from '../storage/s3-client-cache.js';
import { measurePrefix } from '../storage/s3-usage.js';

export const ACCOUNTS_USAGE = `  ftp-s3-bridge accounts validate FILE              check an accounts file (exit 2 and one line per bad field)
  ftp-s3-bridge accounts list --config FILE         accounts in force: name, bucket/prefix, permissions
  ftp-s3-bridge accounts usage --config FILE [USER] bytes and objects under each prefix, against quota
`;

const EXIT_INVALID = 2;

/** `ftp-s3-bridge accounts ...`: operator commands on the accounts (never prints a secret). */
export async function accountsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    process.stdout.write(`Usage:\n${ACCOUNTS_USAGE}`);
    return values.help ? 0 : EXIT_INVALID;
  }
  switch (sub) {
    case 'validate':
      if (rest.length !== 1) return usageError('validate takes one FILE');
      return validate(rest[0] as string);
    case 'list':
      return list(await accountsInForce(values.config));
    case 'usage':
      if (rest.length > 1) return usageError('usage takes at most one USER');
      return usage(values.config, rest[0]);
    default:
      return usageError(`unknown accounts command "${sub}"`);
  }
}

function usageError(message: string): number {
  process.stderr.write(`${message}\nUsage:\n${ACCOUNTS_USAGE}`);
  return EXIT_INVALID;
}

function validate(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    process.stderr.write(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}\n`);
    return EXIT_INVALID;
  }
  const result = parseAccountsFile(text);
  if (!result.ok) {
    for (const problem of result.problems) process.stderr.write(`${file}: ${problem}\n`);
    return EXIT_INVALID;
  }
  process.stdout.write(`${file}: ${result.accounts.length} account(s) OK\n`);
  return 0;
}

interface Listed {
  account: AccountConfig;
  source: 'inline' | 'file';
}

/** The config and its accounts: inline plus those of `auth.accountsFile` (whose problems are config errors). */
async function accountsInForce(configFile: string | undefined): Promise<{ config: BridgeConfig; accounts: Listed[] }> {
  const config = loadConfig({ file: configFile });
  const accounts: Listed[] = config.accounts.map((account) => ({ account, source: 'inline' }));
  const accountsFile = config.auth.accountsFile;
  if (accountsFile) {
    const result = await readAccountsFile(accountsFile);
    if (!result.ok) throw new ConfigError(result.problems.map((p) => `${accountsFile}: ${p}`));
    for (const account of result.accounts) {
      if (config.accounts.some((a) => a.username === account.username)) {
        throw new ConfigError([`${accountsFile}: account "${account.username}" is also defined inline`]);
      }
      accounts.push({ account, source: 'file' });
    }
  }
  return { config, accounts };
}

const where = (a: AccountConfig) => `${a.endpoint ? redactUrl(a.endpoint) + ' ' : ''}${a.bucket}/${a.prefix}`;

function list({ accounts }: { accounts: Listed[] }): number {
  const rows = accounts.map(({ account: a, source }) => [a.username, where(a), a.permissions.join(','), source]);
  printTable(['USER', 'BUCKET/PREFIX', 'PERMISSIONS', 'SOURCE'], rows);
  return 0;
}

async function usage(configFile: string | undefined, user: string | undefined): Promise<number> {
  const { config, accounts } = await accountsInForce(configFile);
  const selected = accounts.filter((l) => user === undefined || l.account.username === user);
  if (user !== undefined && !selected.length) {
    process.stderr.write(`no account "${user}"\n`);
    return 1;
  }
  const clients = new S3ClientCache(config.s3);
  const rows: string[][] = [];
  let failed = false;
  try {
    for (const { account: a } of selected) {
      try {
        const u = await measurePrefix(clients.get({ endpoint: a.endpoint, region: a.region, credentials: a.credentials }), a.bucket, a.prefix);
        const pct = (used: number, max: number | undefined) => (max === undefined ? '-' : `${max} (${((100 * used) / max).toFixed(1)}%)`);
        rows.push([a.username, where(a), String(u.bytes), pct(u.bytes, a.quota?.maxBytes), String(u.objects), pct(u.objects, a.quota?.maxObjects)]);
      } catch (err) {
        failed = true;
        rows.push([a.username, where(a), `error: ${(err as Error).message}`, '', '', '']);
      }
    }
  } finally {
    clients.destroy();
  }
  printTable(['USER', 'BUCKET/PREFIX', 'BYTES', 'MAX_BYTES', 'OBJECTS', 'MAX_OBJECTS'], rows);
  return failed ? 1 : 0;
}

function printTable(header: string[], rows: string[][]): void {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  for (const r of all) process.stdout.write(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ') + '\n');
}
