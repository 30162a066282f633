const SECRET_KEYS = new Set(['secretAccessKey', 'sessionToken', 'passwordHash', 'password', 'secret']);
const REDACTED = '[redacted]';

/** A deep copy of `value` with every secret-bearing field replaced, for logging. */
export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEYS.has(k) && v !== undefined ? REDACTED : redactSecrets(v);
    }
    return out as T;
  }
  if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return redactUrl(value) as T;
  return value;
}

/**
 * A URL without the credentials it may carry (an auth hook's `https://user:pw@host/...?token=...`):
 * user info, query values and fragment are replaced; scheme, host, path and query names stay, so
 * operators can still tell which endpoint is meant.
 */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not parseable, so where a secret would sit is unknown: keep only the scheme.
    return /[@?#]/.test(text) ? `${text.slice(0, text.indexOf('://') + 3)}${REDACTED}` : text;
  }
  if (!url.username && !url.password && !url.search && !url.hash) return text;
  const userinfo = url.username || url.password ? `${REDACTED}@` : '';
  const names = [...new Set(url.searchParams.keys())];
  const query = url.search ? `?${names.map((n) => `${encodeURIComponent(n)}=${REDACTED}`).join('&') || REDACTED}` : '';
  const fragment = url.hash ? `#${REDACTED}` : '';
  return `${url.protocol}//${userinfo}${url.host}${url.pathname}${query}${fragment}`;
}

/**
 * `fetch` refuses URLs with user info, so `https://user:pw@host/...` is split into the URL without
 * it and the HTTP Basic `Authorization` header it stands for (what curl does with such a URL).
 */
export function splitUrlCredentials(text: string): { url: string; authorization?: string } {
  const url = new URL(text);
  if (!url.username && !url.password) return { url: text };
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  return { url: url.href, authorization: `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}` };
}
