import { createHash } from 'node:crypto';
import type { ParsedKey } from 'ssh2';
import { ssh2 } from '../config/ssh2-module.js';
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
   * `publicKeys` (the hook is never asked about a local account; see hookPublicKeyLogin). The
   * caller verifies the client's signature with the key.
   */
  publicKeyLogin(username: string, publicKey: Buffer): { account: AccountConfig; key: ParsedKey } | undefined {
    const account = this.store.get(username);
    for (const line of account?.publicKeys ?? []) {
      const parsed = ssh2().utils.parseKey(line);
      const key = Array.isArray(parsed) ? parsed[0] : parsed;
      if (account && key && !(key instanceof Error) && key.getPublicSSH().equals(publicKey)) return { account, key };
    }
    return undefined;
  }

  /** Whether a login as `username` is the auth hook's to decide: not a local account, and a hook configured. */
  isHookUser(username: string): boolean {
    return this.hook !== undefined && !this.store.get(username);
  }

  /**
   * Asks the auth hook whether `publicKey` (an SSH public key blob) may log in as `username`, a
   * name that is not a local account: the hook gets the key as an OpenSSH line and its SHA256
   * fingerprint. Refused without asking when `username` is local or there is no hook. The caller
   * verifies the client's signature (`key`).
   */
  async hookPublicKeyLogin(username: string, publicKey: Buffer, clientIp: string): Promise<{ ok: true; account: AccountConfig; key: ParsedKey } | { ok: false; reason: string }> {
    if (!this.hook || this.store.get(username)) return { ok: false, reason: 'not a hook account' };
    const line = publicKeyLine(publicKey);
    const parsed = line ? ssh2().utils.parseKey(line) : undefined;
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!line || !key || key instanceof Error) return { ok: false, reason: 'unreadable public key' };
    const fingerprint = `SHA256:${createHash('sha256').update(publicKey).digest('base64').replace(/=+$/, '')}`;
    const answer = await this.hook.publicKeyLogin(username, { fingerprint, key: line }, clientIp);
    return answer.ok ? { ok: true, account: answer.account, key } : { ok: false, reason: `auth hook: ${answer.reason}` };
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

/** An SSH public key blob as an OpenSSH public key line (`<type> <base64>`), its type read from the blob. */
function publicKeyLine(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const typeLength = blob.readUInt32BE(0);
  if (typeLength === 0 || typeLength > 64 || 4 + typeLength > blob.length) return undefined;
  const type = blob.toString('latin1', 4, 4 + typeLength);
  if (!/^[a-z0-9@.-]+$/.test(type)) return undefined;
  return `${type} ${blob.toString('base64')}`;
}
