import ssh2, { type ParsedKey } from 'ssh2';
import type { AccountConfig } from '../config/schema.js';
import { AccountStore } from './account-store.js';
import type { AuthHook } from './auth-hook.js';
import { hashPassword, verifyPassword } from './passwords.js';

export type LoginResult =
  | { ok: true; account: AccountConfig; source: 'local' | 'hook' }
  /** `reason` is for the log only; the client sees the same 530 whatever it is. */
  | { ok: false; reason?: string };

/** A hook time-out is reported this long after it fires, at most (timers, abort, promise chain). */
const HOOK_TIMEOUT_MARGIN_MS = 100;

/**
 * Checks credentials against the accounts in force (read from the live store at each login, so a
 * reloaded accounts file applies to the next login), then, for names that are not local accounts,
 * against the external auth hook. An unknown user costs the same hash verification as a known one.
 * It answers as soon as it knows: the caller holds every refusal to `refusalDelayMs` after the
 * attempt started, so neither timing nor reply tells whether a username exists.
 */
export class Authenticator {
  private readonly store: AccountStore;
  private readonly dummyHash: Promise<string>;
  /**
   * How long after its start every refused login is answered: the configured failure delay, and
   * with a hook no less than its time-out, so a hook that never answers looks like any refusal.
   */
  readonly refusalDelayMs: number;

  constructor(
    accounts: readonly AccountConfig[] | AccountStore,
    failureDelayMs: number,
    private readonly hook?: AuthHook,
  ) {
    this.store = accounts instanceof AccountStore ? accounts : new AccountStore(accounts);
    this.dummyHash = hashPassword('not-a-real-password-' + Math.random());
    this.refusalDelayMs = hook ? Math.max(failureDelayMs, hook.timeoutMs + HOOK_TIMEOUT_MARGIN_MS) : failureDelayMs;
  }

  /**
   * The local account `username` when `publicKey` (an SSH public key blob) is one of its
   * `publicKeys`; the auth hook is never asked (it knows passwords only). The caller verifies
   * the client's signature with the key.
   */
  publicKeyLogin(username: string, publicKey: Buffer): { account: AccountConfig; key: ParsedKey } | undefined {
    const account = this.store.get(username);
    for (const line of account?.publicKeys ?? []) {
      const parsed = ssh2.utils.parseKey(line);
      const key = Array.isArray(parsed) ? parsed[0] : parsed;
      if (account && key && !(key instanceof Error) && key.getPublicSSH().equals(publicKey)) return { account, key };
    }
    return undefined;
  }

  async login(username: string, password: string, clientIp = '', protocol: 'ftp' | 'sftp' = 'ftp'): Promise<LoginResult> {
    const account = this.store.get(username);
    if (!account && this.hook) {
      const answer = await this.hook.login(username, password, clientIp, protocol);
      return answer.ok ? { ok: true, account: answer.account, source: 'hook' } : { ok: false, reason: `auth hook: ${answer.reason}` };
    }
    // A local account is decided locally: the hook is never asked about it.
    const ok = await verifyPassword(password, account?.passwordHash ?? (await this.dummyHash));
    if (account && ok) return { ok: true, account, source: 'local' };
    // No reason: not even the log tells an unknown user from a wrong password.
    return { ok: false };
  }
}
