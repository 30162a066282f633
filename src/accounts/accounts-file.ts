import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { formatIssues } from '../config/load.js';
import { accountListSchema, type AccountConfig } from '../config/schema.js';
import type { AccountStore, AccountsDiff } from './account-store.js';

export type AccountsFileResult = { ok: true; accounts: AccountConfig[] } | { ok: false; problems: string[] };

/**
 * Parses the text of an accounts file: YAML (JSON is YAML) holding a list of accounts, or a
 * mapping whose `accounts` key holds it. Problems name the field: `accounts.3.passwordHash: ...`.
 */
export function parseAccountsFile(text: string): AccountsFileResult {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    return { ok: false, problems: [`not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`] };
  }
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    const keys = Object.keys(raw);
    if (keys.length !== 1 || keys[0] !== 'accounts') {
      return { ok: false, problems: ['(root): must be a list of accounts or a mapping with only "accounts"'] };
    }
    raw = (raw as { accounts: unknown }).accounts;
  }
  if (raw === null || raw === undefined) raw = [];
  const result = accountListSchema.safeParse(raw);
  if (!result.success) return { ok: false, problems: formatIssues(result.error).map((p) => `accounts.${p.replace(/^\(root\)/, '')}`.replace(/\.:/, ':')) };
  return { ok: true, accounts: result.data };
}

/** Reads and parses an accounts file; a file that cannot be read is one problem. */
export async function readAccountsFile(path: string): Promise<AccountsFileResult & { text?: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return { ok: false, problems: [`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`] };
  }
  return { ...parseAccountsFile(text), text };
}

export type ReloadOutcome = 'applied' | 'unchanged' | 'rejected';

export interface AccountsFileOptions {
  path: string;
  store: AccountStore;
  logger: Logger;
  pollMs: number;
  /** Told of every reload attempt (metrics). */
  onReload?: (outcome: ReloadOutcome, diff?: AccountsDiff) => void;
}

/**
 * Keeps the store's file accounts equal to the accounts file. The file's directory is watched
 * (a Kubernetes Secret update swaps a symlink in the directory; the file itself never changes)
 * and the file is polled as well, since watches miss events on some volumes. A file that does not
 * parse or validate is rejected as a whole and the accounts in force stay in force.
 */
export class AccountsFile {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private lastText: string | undefined;
  private running: Promise<ReloadOutcome> | undefined;
  private again = false;

  constructor(private readonly options: AccountsFileOptions) {}

  /** Loads the file once; throws with every problem when it is invalid (at start-up there is nothing to fall back to). */
  async start(): Promise<AccountsDiff> {
    const { path, store } = this.options;
    const result = await readAccountsFile(path);
    if (!result.ok) throw Object.assign(new Error(`invalid accounts file ${path}`), { problems: result.problems.map((p) => `${path}: ${p}`) });
    const conflicts = store.conflicts(result.accounts);
    if (conflicts.length) throw Object.assign(new Error(`invalid accounts file ${path}`), { problems: conflicts.map((n) => `${path}: account "${n}" is also defined inline`) });
    this.lastText = result.text;
    const diff = store.replaceFileAccounts(result.accounts);
    this.options.logger.info({ event: 'accounts-reload', file: path, accounts: result.accounts.length }, 'accounts file loaded');
    try {
      this.watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(path) || name.startsWith('..')) this.schedule();
      });
      this.watcher.on('error', (err) => this.options.logger.warn({ err, file: path }, 'accounts file watch failed; polling only'));
    } catch (err) {
      this.options.logger.warn({ err, file: path }, 'cannot watch the accounts file directory; polling only');
    }
    this.timer = setInterval(() => void this.reload('poll'), this.options.pollMs);
    this.timer.unref();
    return diff;
  }

  private schedule(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload('watch'), 100);
    this.debounce.unref();
  }

  /** Re-reads the file now (`force`: even when its text did not change, as SIGHUP asks). */
  reload(trigger: 'watch' | 'poll' | 'SIGHUP', force = trigger === 'SIGHUP'): Promise<ReloadOutcome> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.load(trigger, force).finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        void this.reload(trigger);
      }
    });
    return this.running;
  }

  private async load(trigger: string, force: boolean): Promise<ReloadOutcome> {
    const { path, store, logger, onReload } = this.options;
    const result = await readAccountsFile(path);
    if (!force && result.text !== undefined && result.text === this.lastText) return 'unchanged';
    const log = logger.child({ event: 'accounts-reload', file: path, trigger });
    if (result.text !== undefined) this.lastText = result.text;
    let problems = result.ok ? store.conflicts(result.accounts).map((n) => `account "${n}" is also defined inline`) : result.problems;
    if (!result.ok && result.text === undefined && !force) {
      // A missing file mid-swap is not a verdict on its content: try again on the next event or poll.
      this.lastText = undefined;
    }
    if (result.ok && !problems.length) {
      const diff = store.replaceFileAccounts(result.accounts);
      log.info({ added: diff.added, changed: diff.changed, removed: diff.removed, accounts: store.size }, 'accounts reloaded');
      onReload?.('applied', diff);
      return 'applied';
    }
    problems = problems.length ? problems : ['invalid'];
    for (const problem of problems) log.error({ problem }, `accounts file rejected: ${problem}`);
    log.error({ accounts: store.size }, 'accounts file rejected as a whole; the accounts in force stay in force');
    onReload?.('rejected');
    return 'rejected';
  }

  close(): void {
    this.watcher?.close();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
  }
}
