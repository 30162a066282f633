const SECRET_KEYS = new Set(['secretAccessKey', 'sessionToken', 'passwordHash', 'password', 'secret']);

/** A deep copy of `value` with every secret-bearing field replaced, for logging. */
export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEYS.has(k) && v !== undefined ? '[redacted]' : redactSecrets(v);
    }
    return out as T;
  }
  return value;
}
