import { createHash } from 'node:crypto';
import { formatIssues } from '../config/load.js';
import { splitUrlCredentials } from '../config/redact.js';
import { hookAccountSchema, type AccountConfig, type BridgeConfig } from '../config/schema.js';

export type HookConfig = NonNullable<BridgeConfig['auth']['hook']>;

export type HookResult = { ok: true; account: AccountConfig } | { ok: false; reason: string };

/**
 * External authentication: POST {username, password, clientIp, protocol} as JSON; a 200 whose body is a
 * valid account (without username and passwordHash) logs the user in, anything else refuses.
 * fetch verifies HTTPS certificates against Node's CA store; that is never turned off here.
 * Successful answers may be cached; the key holds a hash of the password, never the password. For
 * SFTP public-key logins the body carries `publicKey: {fingerprint, key}` instead of `password`.
 */
export class AuthHook {
  private readonly cache = new Map<string, { account: AccountConfig; until: number }>();

  private readonly target: { url: string; authorization?: string };

  constructor(private readonly config: HookConfig) {
    this.target = splitUrlCredentials(config.url);
  }

  /** The longest a login waits for the hook (request and answer) before it is refused. */
  get timeoutMs(): number {
    return this.config.timeoutSeconds * 1000;
  }

  /** @param protocol the front end asking (`ftp`, `sftp`): the hook may answer differently per protocol */
  login(username: string, password: string, clientIp: string, protocol: 'ftp' | 'sftp' = 'ftp'): Promise<HookResult> {
    const secret = createHash('sha256').update(password, 'utf8').digest('hex');
    return this.ask({ username, password, clientIp, protocol }, [username, clientIp, protocol, secret]);
  }

  /**
   * Whether `publicKey` may log in as `username` (SFTP): POSTs `{username, publicKey: {fingerprint,
   * key}, clientIp, protocol}`, `key` being the OpenSSH public key line (`ssh-ed25519 AAAA...`). The
   * caller has verified (or will verify) that the client holds the private key.
   */
  publicKeyLogin(username: string, publicKey: { fingerprint: string; key: string }, clientIp: string, protocol: 'sftp' = 'sftp'): Promise<HookResult> {
    return this.ask({ username, publicKey, clientIp, protocol }, [username, clientIp, protocol, 'publickey', publicKey.key]);
  }

  private async ask(request: Record<string, unknown>, cacheParts: string[]): Promise<HookResult> {
    const username = request.username as string;
    const key = this.config.cacheSeconds > 0 ? JSON.stringify(cacheParts) : undefined;
    const cached = key === undefined ? undefined : this.cache.get(key);
    if (cached && cached.until > Date.now()) return { ok: true, account: cached.account };
    if (cached) this.cache.delete(key as string);

    let response: Response;
    try {
      response = await fetch(this.target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(this.target.authorization ? { authorization: this.target.authorization } : {}),
        },
        body: JSON.stringify(request),
        signal: AbortSignal.timeout(this.config.timeoutSeconds * 1000),
        redirect: 'error',
      });
    } catch (err) {
      const name = (err as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') return { ok: false, reason: `no answer within ${this.config.timeoutSeconds}s` };
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      return { ok: false, reason: `request failed: ${cause?.code ?? cause?.message ?? (err as Error).message}` };
    }
    let text: string;
    try {
      text = await response.text();
    } catch {
      return { ok: false, reason: `answer not received in full (status ${response.status})` };
    }
    if (response.status !== 200) return { ok: false, reason: `status ${response.status}` };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { ok: false, reason: 'answer is not valid JSON' };
    }
    const parsed = hookAccountSchema.safeParse(body);
    if (!parsed.success) return { ok: false, reason: `answer is not a valid account: ${formatIssues(parsed.error).join('; ')}` };
    const account: AccountConfig = { ...parsed.data, username, passwordHash: '' };
    if (key !== undefined) {
      this.cache.set(key, { account, until: Date.now() + this.config.cacheSeconds * 1000 });
      this.prune();
    }
    return { ok: true, account };
  }

  private prune(): void {
    if (this.cache.size < 10_000) return;
    const now = Date.now();
    for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
  }
}
