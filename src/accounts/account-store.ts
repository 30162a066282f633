import { EventEmitter } from 'node:events';
import type { AccountConfig } from '../config/schema.js';

/** What one reload changed, by account name (never more than names: no hashes in logs). */
export interface AccountsDiff {
  added: string[];
  changed: string[];
  removed: string[];
}

/**
 * The accounts in force: the inline ones from the config plus those of the accounts file, which
 * can be replaced at any time. Logins read from here, so a replacement applies to the next login;
 * listeners of 'change' get the diff (to close the sessions of removed accounts).
 */
export class AccountStore extends EventEmitter<{ change: [AccountsDiff] }> {
  private readonly inline: ReadonlyMap<string, AccountConfig>;
  private fromFile = new Map<string, AccountConfig>();

  constructor(inline: readonly AccountConfig[] = []) {
    super();
    this.inline = new Map(inline.map((a) => [a.username, a]));
  }

  get(username: string): AccountConfig | undefined {
    return this.inline.get(username) ?? this.fromFile.get(username);
  }

  all(): AccountConfig[] {
    return [...this.inline.values(), ...[...this.fromFile.values()].filter((a) => !this.inline.has(a.username))];
  }

  get size(): number {
    return this.all().length;
  }

  /** Names that appear both inline and in `accounts`: a file may not redefine an inline account. */
  conflicts(accounts: readonly AccountConfig[]): string[] {
    return accounts.filter((a) => this.inline.has(a.username)).map((a) => a.username);
  }

  /** Puts the accounts of the file in force, all at once, and reports what changed. */
  replaceFileAccounts(accounts: readonly AccountConfig[]): AccountsDiff {
    const next = new Map(accounts.map((a) => [a.username, a]));
    const diff: AccountsDiff = { added: [], changed: [], removed: [] };
    for (const [name, account] of next) {
      const before = this.fromFile.get(name);
      if (!before) diff.added.push(name);
      else if (JSON.stringify(before) !== JSON.stringify(account)) diff.changed.push(name);
    }
    for (const name of this.fromFile.keys()) if (!next.has(name)) diff.removed.push(name);
    this.fromFile = next;
    if (diff.added.length || diff.changed.length || diff.removed.length) this.emit('change', diff);
    return diff;
  }
}
