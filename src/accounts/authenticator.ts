import { setTimeout as sleep } from 'node:timers/promises';
import type { AccountConfig } from '../config/schema.js';
import { hashPassword, verifyPassword } from './passwords.js';

export type LoginResult = { ok: true; account: AccountConfig } | { ok: false };

/**
 * Checks credentials against the configured accounts. An unknown user costs the same hash
 * verification as a known one, and every failure answers at the same fixed delay after the
 * attempt started, so neither timing nor reply tells whether a username exists.
 */
export class Authenticator {
  private readonly byName: Map<string, AccountConfig>;
  private readonly dummyHash: Promise<string>;

  constructor(
    accounts: AccountConfig[],
    private readonly failureDelayMs: number,
  ) {
    this.byName = new Map(accounts.map((a) => [a.username, a]));
    this.dummyHash = hashPassword('not-a-real-password-' + Math.random());
  }

  async login(username: string, password: string): Promise<LoginResult> {
    const started = Date.now();
    const account = this.byName.get(username);
    const ok = await verifyPassword(password, account?.passwordHash ?? (await this.dummyHash));
    if (account && ok) return { ok: true, account };
    const wait = started + this.failureDelayMs - Date.now();
    if (wait > 0) await sleep(wait);
    return { ok: false };
  }
}
