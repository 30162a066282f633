/* eslint-disable no-control-regex -- names must be checked for control characters */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { ssh2 } from './ssh2-module.js';
import { z } from 'zod';

/** Per-account operations; each FTP command needs one of them (see ftp/permissions). */
export const PERMISSIONS = ['list', 'read', 'write', 'delete', 'rename', 'mkdir'] as const;
export type Permission = (typeof PERMISSIONS)[number];

/**
 * What docs/configuration.md says about a key (src/config/docs.ts renders the reference table from
 * it): `description` is its meaning (Markdown), `defaultText` replaces the rendered schema default
 * where that is not self-explanatory (a key without a schema default, or one computed from others).
 */
export type KeyDoc = {
  description: string;
  defaultText?: string;
};
/** Metadata of a documented key: `.meta(doc('meaning'))` or `.meta(doc('meaning', 'default in words'))`. */
export const doc = (description: string, defaultText?: string): KeyDoc => (defaultText === undefined ? { description } : { description, defaultText });

const port = z.number().int().min(0).max(65535);

/**
 * SSH algorithms offered by default: those ssh2 supports minus SHA-1 (MACs, `ssh-rsa` signatures,
 * `diffie-hellman-*-sha1`), MD5, RIPEMD, truncated MACs, CBC and 3DES ciphers, DH group 1, and
 * group exchange (whose server side picks from a fixed set of groups anyway).
 */
export const SAFE_SSH_ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'ecdh-sha2-nistp256', 'ecdh-sha2-nistp384', 'ecdh-sha2-nistp521', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512', 'diffie-hellman-group14-sha256'],
  cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256', 'hmac-sha2-512'],
  serverHostKey: ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'],
} as const;

/**
 * What ssh2 (1.x) can negotiate: a configured name outside it is a typo, refused at load. The unsafe
 * ones stay configurable for a device that knows nothing better, never by default.
 */
const SUPPORTED_SSH_ALGORITHMS: Record<keyof typeof SAFE_SSH_ALGORITHMS, readonly string[]> = {
  kex: [...SAFE_SSH_ALGORITHMS.kex, 'diffie-hellman-group15-sha512', 'diffie-hellman-group17-sha512', 'diffie-hellman-group-exchange-sha256', 'diffie-hellman-group14-sha1', 'diffie-hellman-group-exchange-sha1', 'diffie-hellman-group1-sha1'],
  cipher: [...SAFE_SSH_ALGORITHMS.cipher, 'aes128-gcm', 'aes256-gcm', 'aes256-cbc', 'aes192-cbc', 'aes128-cbc', '3des-cbc'],
  hmac: [...SAFE_SSH_ALGORITHMS.hmac, 'hmac-sha1-etm@openssh.com', 'hmac-sha1', 'hmac-md5', 'hmac-sha2-256-96', 'hmac-sha2-512-96', 'hmac-ripemd160', 'hmac-sha1-96', 'hmac-md5-96'],
  serverHostKey: [...SAFE_SSH_ALGORITHMS.serverHostKey, 'ssh-rsa', 'ssh-dss'],
};

const sshAlgorithms = (kind: keyof typeof SAFE_SSH_ALGORITHMS, defaults: readonly string[]) =>
  z
    .array(z.string())
    .min(1)
    .default([...defaults])
    .superRefine((names, ctx) => {
      for (const name of names) {
        if (!SUPPORTED_SSH_ALGORITHMS[kind].includes(name)) ctx.addIssue({ code: 'custom', message: `unknown or unsupported ${kind} algorithm "${name}" (supported: ${SUPPORTED_SSH_ALGORITHMS[kind].join(', ')})` });
      }
    });

/** Why one `accounts[].publicKeys` line is not an OpenSSH public key; undefined when it is one. */
function publicKeyProblem(line: string): string | undefined {
  if (!/^(ssh-|ecdsa-sha2-|sk-)\S+ [A-Za-z0-9+/=]+( [^\r\n]*)?$/.test(line.trim())) {
    return 'not an OpenSSH public key line ("<type> <base64> [comment]"; authorized_keys options are not supported)';
  }
  const parsed = ssh2().utils.parseKey(line.trim());
  if (parsed instanceof Error) return `not a valid public key: ${parsed.message}`;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key.isPrivateKey()) return 'not a public key';
  return undefined;
}

const bandwidthLimits = (scope: string) =>
  z.strictObject({
    uploadKiBps: z.number().positive().optional().meta(doc(`upload data-stream cap, KiB/s, ${scope}`, 'unlimited')),
    downloadKiBps: z.number().positive().optional().meta(doc(`download data-stream cap, KiB/s, ${scope}`, 'unlimited')),
  });
const s3Credentials = z.strictObject({
  accessKeyId: z.string().min(1).meta(doc('access key id')),
  secretAccessKey: z.string().min(1).meta(doc('secret access key')),
  sessionToken: z.string().optional().meta(doc('session token of temporary credentials')),
});

/** "10.0.0.0/8", "2001:db8::/32" or a single address. */
const cidr = z.string().refine((s) => {
  const [address = '', prefix, extra] = s.split('/');
  const family = isIP(address);
  if (!family || extra !== undefined) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
}, 'must be an IP address or a CIDR network such as 10.0.0.0/8');

/** PROXY protocol on a listener (see [PROXY protocol](networking.md#proxy-protocol)); the same shape for FTP and SFTP. */
const proxyProtocolSection = (listeners: string) =>
  z
    .strictObject({
      enabled: z
        .boolean()
        .default(false)
        .meta(doc(`connections from \`trustedProxies\` must start with a PROXY v1 or v2 header on ${listeners}; its client address is the one bans, limits, \`allowFrom\`, logs, metrics and metadata see`)),
      trustedProxies: z
        .array(cidr)
        .default([])
        .meta(doc('load balancers (CIDRs or addresses) whose connections must carry a header; a connection from anywhere else that sends one is closed')),
      headerTimeoutSeconds: z.number().positive().max(60).default(5).meta(doc('a trusted connection whose header is not complete within this is closed')),
    })
    .prefault({})
    .refine((p) => !p.enabled || p.trustedProxies.length > 0, { path: ['trustedProxies'], message: 'needs at least one address when enabled' });

export const accountSchema = z.strictObject({
  username: z
    .string()
    .min(1)
    .regex(/^[^\s\x00-\x1f\x7f]+$/, 'must not contain spaces or control characters')
    .meta(doc('login name (no spaces or control characters; unique)', 'required')),
  passwordHash: z
    .string()
    .regex(/^\$(2[aby]\$\d\d\$.{53}|argon2id\$.+)$/, 'must be a bcrypt ($2b$...) or argon2id ($argon2id$...) hash')
    .meta(doc('bcrypt (`$2a$`/`$2b$`/`$2y$`) or argon2id: `ftp-s3-bridge hash-password` (password on stdin)', 'required')),
  bucket: z.string().min(3).max(63).meta(doc("the account's bucket", 'required')),
  prefix: z
    .string()
    .default('')
    .refine((p) => p === '' || (p.endsWith('/') && !p.startsWith('/')), 'must be "" or end with "/" and not start with "/"')
    .refine((p) => !/[\x00-\x1f\x7f]/.test(p), 'must not contain control characters')
    .meta(doc('the account\'s "/" within the bucket (`site-a/cam01/`, ending in `/`); `""` for the whole bucket')),
  permissions: z
    .array(z.enum(PERMISSIONS))
    .default([...PERMISSIONS])
    .meta(doc('any of `list`, `read`, `write`, `delete`, `rename`, `mkdir` (see [Permissions](#permissions))', 'all')),
  allowFrom: z
    .array(cidr)
    .min(1)
    .optional()
    .meta(doc('client networks allowed to log in (`["10.0.0.0/8", "2001:db8::/32", "203.0.113.7"]`); others get the same `530` as a wrong password', 'anywhere')),
  quota: z
    .strictObject({
      maxBytes: z.number().int().positive().optional().meta(doc("bytes stored under the account's bucket/prefix at most (see [Quotas](accounts.md#quotas))", 'unlimited')),
      maxObjects: z.number().int().positive().optional().meta(doc("objects under the account's bucket/prefix at most (see [Quotas](accounts.md#quotas))", 'unlimited')),
    })
    .optional()
    .meta(doc("usage limits under the account's bucket/prefix", 'unlimited')),
  bandwidth: bandwidthLimits('per session of this account').optional().meta(doc('per-session data-stream limits', 'unlimited')),
  storageClass: z
    .string()
    .regex(/^[A-Z][A-Z_]*$/, 'must be an S3 storage class such as STANDARD_IA')
    .optional()
    .meta(doc('storage class of uploaded objects (`STANDARD_IA`, `GLACIER_IR`, ...)', 'bucket default')),
  serverSideEncryption: z.enum(['AES256', 'aws:kms']).optional().meta(doc('`AES256` or `aws:kms`', 'bucket default')),
  sseKmsKeyId: z.string().min(1).optional().meta(doc('KMS key (ID or ARN) for `aws:kms`', 'AWS managed key')),
  retention: z
    .strictObject({
      mode: z.enum(['GOVERNANCE', 'COMPLIANCE']).meta(doc('`GOVERNANCE` (lifted by whoever has `s3:BypassGovernanceRetention`) or `COMPLIANCE` (by no one)')),
      days: z.number().int().min(1).max(36_500).meta(doc('days each object is retained, counted from the start of its upload')),
    })
    .optional()
    .meta(
      doc(
        'Object Lock retention of every object the account uploads (and of the copies its renames make); the bucket must have Object Lock enabled (checked at start and by `/readyz`) and `s3.checksumAlgorithm` must not be `none` (see [Integrity](integrity.md))',
        'none',
      ),
    ),
  legalHold: z
    .boolean()
    .optional()
    .meta(doc('every object the account uploads is under legal hold (same requirements as `retention`; see [Integrity](integrity.md))', 'none')),
  tags: z
    .record(z.string().min(1).max(128), z.string().max(256))
    .refine((t) => Object.keys(t).length <= 10, 'at most 10 tags')
    .optional()
    .meta(doc('object tags added on upload (at most 10, as S3 allows), sent with the request that creates the object')),
  metadata: z
    .record(z.string(), z.string())
    .superRefine((m, ctx) => {
      for (const [key, value] of Object.entries(m)) {
        const problem = !/^[a-z0-9][a-z0-9-]*$/.test(key)
          ? 'key must be lower-case letters, digits and "-"'
          : key === 'ftp-user' || key === 'ftp-client-ip' || key === 'uploader-protocol'
            ? 'is set by the bridge'
            : !/^[\x20-\x7e]*$/.test(value)
              ? 'must be printable ASCII'
              : undefined;
        if (problem) ctx.addIssue({ code: 'custom', path: [key], message: problem });
      }
    })
    .optional()
    .meta(doc('user metadata (`x-amz-meta-*`) added on upload; keys lower-case letters, digits, `-`; values printable ASCII')),
  endpoint: z
    .url()
    .optional()
    .meta(doc("another S3 target for this account (a partner's bucket in another AWS account, another store; one client per distinct target): its endpoint URL", "`s3.endpoint`")),
  region: z.string().min(1).optional().meta(doc("the region of this account's S3 target", '`s3.region`')),
  credentials: s3Credentials.optional().meta(doc("the credentials for this account's S3 target", '`s3.credentials`')),
  requireTls: z
    .boolean()
    .optional()
    .meta(doc('this account only over TLS, as `ftp.requireTls`, but checked at `PASS` (see [FTPS](networking.md#ftps))', '`false`')),
  maxConnections: z
    .number()
    .int()
    .min(1)
    .optional()
    .meta(
      doc(
        "sessions of this account open at once (FTP and SFTP, over all replicas with `cluster.redis`); one more login is refused after its password was checked: FTP `530 Too many sessions for this account`, SFTP a disconnect; it does not count toward `ftp.bruteForce`",
        'no limit',
      ),
    ),
  scan: z
    .enum(['off', 'reject', 'quarantine'])
    .optional()
    .meta(doc('malware scan of uploads before their commit (needs the `scan` section; see [Scanning](scanning.md)): `reject` refuses infected files (`550`, nothing stored), `quarantine` commits them under `quarantine.prefix`', '`off`')),
  quarantine: z
    .strictObject({
      prefix: z
        .string()
        .min(1)
        .refine((p) => p.endsWith('/') && !p.startsWith('/'), 'must end with "/" and not start with "/"')
        .refine((p) => !/[\x00-\x1f\x7f]/.test(p), 'must not contain control characters')
        .meta(doc('with `scan: quarantine`, where infected files are committed (same relative path, tagged `scan=infected`)')),
      bucket: z.string().min(3).max(63).optional().meta(doc('the quarantine bucket (same S3 target)', "the account's bucket")),
    })
    .optional(),
  publicKeys: z
    .array(z.string())
    .optional()
    .meta(doc('OpenSSH public keys (`authorized_keys` lines without options: `ssh-ed25519 AAAA... comment`) that may log in to this account over SFTP, besides its password (see [SFTP](sftp.md))', 'none')),
});
export type AccountConfig = z.infer<typeof accountSchema>;

/** Checks across an account's fields (kept off accountSchema so it can still be picked from). */
function checkAccountPolicy(a: Partial<AccountConfig>, ctx: z.RefinementCtx): void {
  a.publicKeys?.forEach((line, i) => {
    const problem = publicKeyProblem(line);
    if (problem) ctx.addIssue({ code: 'custom', path: ['publicKeys', i], message: `account "${a.username ?? '(hook)'}", line ${i + 1}: ${problem}` });
  });
  if (a.sseKmsKeyId !== undefined && a.serverSideEncryption !== 'aws:kms') {
    ctx.addIssue({ code: 'custom', path: ['sseKmsKeyId'], message: 'only with serverSideEncryption: aws:kms' });
  }
  if (a.scan === 'quarantine' && !a.quarantine) {
    ctx.addIssue({ code: 'custom', path: ['quarantine'], message: 'scan: quarantine needs quarantine.prefix' });
  }
}

/** What an external auth hook answers for a login: one account without username and passwordHash. */
export const hookAccountSchema = accountSchema.omit({ username: true, passwordHash: true }).superRefine(checkAccountPolicy);
export type HookAccount = z.infer<typeof hookAccountSchema>;

/** A list of accounts (inline `accounts`, or the content of `auth.accountsFile`); names must be unique. */
export const accountListSchema = z.array(accountSchema.superRefine(checkAccountPolicy)).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((a, i) => {
    if (seen.has(a.username)) ctx.addIssue({ code: 'custom', path: [i, 'username'], message: `duplicate account "${a.username}"` });
    seen.add(a.username);
  });
});

/** The FTP listener and its sessions. */
const ftpSection = z.strictObject({
  host: z.string().default('0.0.0.0').meta(doc('control listener address (`::` for IPv6)')),
  port: port.default(2121).meta(doc('control port')),
  passive: z
    .strictObject({
      address: z
        .string()
        .min(1)
        .optional()
        .meta(doc('address announced in `PASV` replies: an IP, or a hostname resolved (IPv4) each time `PASV` is answered', 'the address the client connected to')),
      byHostname: z
        .record(z.string().min(1), z.strictObject({ address: z.string().min(1).optional(), portMin: port.optional(), portMax: port.optional() }))
        .optional()
        .meta(doc('`{ hostname: { address, portMin, portMax } }`: on a host (pod) whose hostname is listed, these keys replace the ones here, so that one config (one StatefulSet pod template) gives every pod its own announced address or port range (the Helm chart\'s `passive.mode: perPod`)')),
      portMin: port.default(30000).meta(doc('lowest passive data port (`PASV`/`EPSV`); one port per waiting data connection, `425` when all are taken')),
      portMax: port.default(30049).meta(doc('highest passive data port')),
      overrides: z
        .array(
          z.strictObject({
            cidr: cidr.meta(doc('client network (CIDR or single address)')),
            address: z.string().min(1).meta(doc('the address those clients are told instead')),
          }),
        )
        .default([])
        .meta(doc('`[{ cidr, address }]`: clients inside `cidr` are told `address` instead, e.g. the internal address for in-cluster clients (first match wins)')),
      maxPerClient: z
        .number()
        .int()
        .min(1)
        .optional()
        .meta(
          doc(
            'passive ports one client address may hold at once (waiting for its data connection); beyond it `PASV`/`EPSV` answer `425` to that address only. A fleet of devices behind one NAT address or proxy that opens its data connections at the same instant may need more',
            'a quarter of the range, at least `4`',
          ),
        ),
    })
    .prefault({})
    // This host's own entry first, so that the range check and maxPerClient see its values.
    .transform((p) => ({ ...p, ...p.byHostname?.[hostname()] }))
    .refine((p) => p.portMin <= p.portMax, 'portMin must be <= portMax')
    .transform((p) => ({ ...p, maxPerClient: p.maxPerClient ?? Math.max(4, Math.floor((p.portMax - p.portMin + 1) / 4)) })),
  greeting: z.string().default('ftp-s3-bridge ready').meta(doc('first line of the `220` greeting')),
  loginFailureDelayMs: z
    .number()
    .int()
    .min(0)
    .max(60_000)
    .default(1000)
    .meta(
      doc(
        'every refused login answers `530 Login incorrect` this long after its `PASS` arrived, whatever the reason (a check that takes longer, on an overloaded machine, at the next multiple of it); with `auth.hook`, at least `auth.hook.timeoutSeconds` + 0.1 s (a silent hook looks like any refusal)',
      ),
    ),
  dataConnectionTimeoutSeconds: z
    .number()
    .positive()
    .default(30)
    .meta(doc('how long a transfer command waits for the data connection, and how long an unused passive port stays open')),
  dataIdleTimeoutSeconds: z
    .number()
    .min(0)
    .default(120)
    .meta(
      doc(
        'a transfer whose data connection moves no byte this long while waiting on the client ends with `426` (an upload is aborted: nothing committed); a slow S3 does not count; `0`: never',
      ),
    ),
  mkdExistingDirectory: z
    .enum(['ok', 'error'])
    .default('ok')
    .meta(
      doc(
        '`MKD` of an existing directory: `ok` answers `257 "<path>" directory already exists` (devices that `MKD` every path component before each upload, and libraries that stop after a `550`, carry on), `error` answers `550` like vsftpd/ProFTPD (see [Clients and devices](clients.md)); a file of that name is always `550`',
      ),
    ),
  loginTimeoutSeconds: z.number().positive().default(60).meta(doc('a connection not logged in after this is closed (`421`)')),
  idleTimeoutSeconds: z
    .number()
    .min(0)
    .default(900)
    .meta(doc('a logged-in connection without commands is closed (`421`); `NOOP` resets it; never during a transfer; `0`: never')),
  maxConnections: z.number().int().min(0).default(1000).meta(doc('open control connections in total (`421` beyond); `0`: unlimited')),
  maxConnectionsPerIp: z
    .number()
    .int()
    .min(0)
    .default(100)
    .meta(
      doc(
        'open control connections per client address (IPv6: per prefix, see `ftp.bruteForce.ipv6PrefixLength`; `421` beyond); `0`: unlimited. Both limits, and bans, apply at TCP accept on every listener: an implicit FTPS connection counts from accept, and one refused is closed at once, before any handshake',
      ),
    ),
  bandwidth: bandwidthLimits('shared by all sessions together')
    .optional()
    .meta(doc('data-stream caps shared by all sessions together, of all replicas with `cluster.redis` (token bucket, back-pressure; per-account limits: `accounts[].bandwidth`)', 'unlimited')),
  bruteForce: z
    .strictObject({
      maxFailures: z
        .number()
        .int()
        .min(0)
        .default(10)
        .meta(
          doc(
            'refused logins from one address within `windowSeconds` that ban it; `0`: guard off. An attempt counts from its `PASS` on: parallel attempts beyond it wait, so no more than this many passwords are checked before the ban',
          ),
        ),
      windowSeconds: z.number().positive().default(300).meta(doc('the window in which `maxFailures` refused logins are counted')),
      banSeconds: z
        .number()
        .positive()
        .default(900)
        .meta(doc('a banned address gets `421 Too many failed logins; try again later` on connect and at `PASS` (its password unchecked), and is disconnected, for this long')),
      ipv6PrefixLength: z
        .number()
        .int()
        .min(1)
        .max(128)
        .default(64)
        .meta(doc('IPv6 clients are one client per prefix of this length, for bans, `maxConnectionsPerIp`, passive port and memory shares (one host commonly holds a whole /64)')),
    })
    .prefault({}),
  tls: z
    .strictObject({
      cert: z
        .string()
        .min(1)
        .optional()
        .meta(doc('PEM certificate (chain) file; with `key`, enables `AUTH TLS`; both are reloaded when they change (see [FTPS](networking.md#ftps))', 'none (no FTPS)')),
      key: z.string().min(1).optional().meta(doc('PEM private key file of `cert`', 'none (no FTPS)')),
      implicitPort: port.optional().meta(doc('port of the implicit FTPS listener (conventionally `990`), on `ftp.host`; needs `cert` and `key`', 'none')),
      minVersion: z
        .enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'])
        .default('TLSv1.2')
        .meta(doc('oldest TLS version accepted (`TLSv1`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`); below 1.2 only for devices that cannot do better, and logged as a warning at start')),
      reloadCheckSeconds: z.number().positive().max(3600).default(60).meta(doc('the certificate files are watched, and also re-read this often (watches miss some volume updates)')),
      handshakeTimeoutSeconds: z
        .number()
        .positive()
        .max(300)
        .default(10)
        .meta(doc('a TLS handshake not done within this is dropped: implicit port, `AUTH TLS`, `PROT P` data connections')),
    })
    .prefault({})
    .refine((t) => (t.cert === undefined) === (t.key === undefined), 'cert and key must be given together')
    .refine((t) => t.implicitPort === undefined || t.cert !== undefined, 'implicitPort needs cert and key'),
  requireTls: z
    .boolean()
    .default(false)
    .meta(doc('every account only over TLS: `USER` in the clear gets `530`, data connections need `PROT P` (`521` otherwise); needs `ftp.tls.cert` and `ftp.tls.key`')),
  proxyProtocol: proxyProtocolSection('the control port, the implicit FTPS port and the passive data ports'),
});

/** The S3 client, uploads, and how the file tree maps onto S3. */
const s3Section = z.strictObject({
  endpoint: z.url().optional().meta(doc('S3 endpoint URL for S3-compatible stores', 'AWS')),
  region: z.string().default('us-east-1').meta(doc('the region (signing region of S3-compatible stores)')),
  forcePathStyle: z.boolean().default(false).meta(doc('path-style addressing (MinIO, Swift, Ceph usually need `true`)')),
  credentials: s3Credentials.optional().meta(doc('static credentials', 'default provider chain (environment, IRSA, instance role)')),
  partSizeMiB: z.number().int().min(5).max(5120).default(8).meta(doc('multipart part size (5 to 5120)')),
  queueSize: z.number().int().min(1).max(64).default(4).meta(doc('parts uploaded in parallel per upload, and part buffers an upload holds at most')),
  maxAttempts: z
    .number()
    .int()
    .min(1)
    .max(20)
    .default(5)
    .meta(
      doc(
        'SDK attempts per request (retry strategy of `s3.retryMode`, backoff with jitter: 503/500/throttling, resets, time-outs); also the attempts of a download that S3 breaks mid-body, resumed from the byte reached (see [Reliability](reliability.md))',
      ),
    ),
  retryMode: z
    .enum(['standard', 'adaptive'])
    .default('standard')
    .meta(
      doc(
        "the SDK's retry strategy for `s3.maxAttempts`: `standard` (exponential backoff with jitter), or `adaptive` (also rate-limits this bridge's requests on the client side after throttling answers such as `503 SlowDown`)",
      ),
    ),
  requestTimeoutSeconds: z
    .number()
    .positive()
    .max(3600)
    .default(30)
    .meta(doc('a request, or a response body, that makes no progress for this long fails (and is retried): an idle-socket time-out, so large parts on a slow link are fine')),
  sweepUploadsOlderThanHours: z
    .number()
    .positive()
    .optional()
    .meta(
      doc(
        "abort, every `s3.sweepUploadsIntervalSeconds`, incomplete multipart uploads under every account's bucket and prefix older than this (age-based: safe on several replicas); see `sweep-uploads`",
        'off',
      ),
    ),
  sweepUploadsIntervalSeconds: z
    .number()
    .positive()
    .min(1)
    .max(604_800)
    .default(3600)
    .meta(doc('how often that sweep runs (the first run is a minute after start, or one interval after it if that is shorter)')),
  memoryLimitMiB: z
    .number()
    .int()
    .min(16)
    .default(256)
    .meta(
      doc(
        "one budget for the upload part buffers of all sessions together (`STOR`, `STOU`, and `APPE`/`REST`+`STOR`: their appended parts and a small object read to be sent again); at the cap new parts wait (the client's data socket is back-pressured), nothing fails",
      ),
    ),
  memoryShare: z
    .strictObject({
      perClientPercent: z
        .number()
        .int()
        .min(1)
        .max(100)
        .default(25)
        .meta(doc('the most of `s3.memoryLimitMiB` the uploads of one client address hold at once (never less than one part); beyond it its uploads wait while those of others go on (see [Reliability](reliability.md))')),
      perAccountPercent: z
        .number()
        .int()
        .min(1)
        .max(100)
        .default(50)
        .meta(doc('the same for the uploads of one account')),
    })
    .prefault({}),
  uploaderMetadata: z.boolean().default(true).meta(doc('every stored object carries `x-amz-meta-ftp-user`, `x-amz-meta-ftp-client-ip` and `x-amz-meta-uploader-protocol` (`ftp`, `sftp`)')),
  multipartCopyThresholdMiB: z
    .number()
    .int()
    .min(5)
    .max(5120)
    .default(5120)
    .meta(
      doc(
        "a rename copies objects above this size part by part (`UploadPartCopy`, in parts of up to 512 MiB), smaller ones with one `CopyObject` (S3's limit is 5 GiB; lower it for stores with a lower copy limit). The part-by-part copy is given the source's metadata, content headers and tags (`GetObjectTagging`, skipped where the store has no tagging) and the account's storage class and encryption, as `CopyObject` keeps them",
      ),
    ),
  uploadDigests: z
    .array(z.enum(['SHA-256', 'MD5']))
    .default(['SHA-256', 'MD5'])
    .meta(
      doc(
        "digests computed while each upload streams in and stored with it, which `HASH`, `XSHA256` and `XMD5` answer from without reading the object (a digest not stored is computed by reading the object, up to `s3.hashMaxStreamMiB`). MD5 is the costliest step of an upload on the bridge's CPU (~1.4 CPU-s per GiB here, twice SHA-256): `[SHA-256]` where no client asks for `XMD5` or `HASH MD5` (the transfer bench's upload ratio went from ~0.85 to ~0.95)",
      ),
    ),
  checksumAlgorithm: z
    .enum(['SHA256', 'CRC64NVME', 'CRC32C', 'CRC32', 'none'])
    .optional()
    .meta(
      doc(
        'checksum S3 verifies on every upload request and keeps with the object (`x-amz-checksum-*`), computed in the same pass as `uploadDigests`; a multipart upload\'s is composite for `SHA256`, full-object for `CRC32`/`CRC32C`/`CRC64NVME`; `none`: no checksum (see [Integrity](integrity.md))',
        '`SHA256` on AWS; with a custom `endpoint`, `SHA256` where the start-up probe finds that the store verifies it, else `none` (a configured algorithm the store rejects becomes `none` with a warning)',
      ),
    ),
  requestChecksumCalculation: z
    .enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED'])
    .optional()
    .meta(
      doc(
        'checksum behaviour of the AWS SDK for requests: `WHEN_SUPPORTED` (the SDK default) sends CRC32 trailers that many S3-compatible stores reject or store inside the object; `WHEN_REQUIRED` is the safe choice for them',
        '`WHEN_SUPPORTED` on AWS, `WHEN_REQUIRED` with a custom `endpoint`',
      ),
    ),
  responseChecksumValidation: z
    .enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED'])
    .optional()
    .meta(doc('the same for validating the checksums of responses', '`WHEN_SUPPORTED` on AWS, `WHEN_REQUIRED` with a custom `endpoint`')),
  // How FTP's file tree maps onto S3 (moved here from `ftp`, see migrate.ts).
  storeOntoDirectory: z
    .enum(['refuse', 'allow'])
    .default('allow')
    .meta(
      doc(
        '`STOR`/`APPE` of a name that is a directory (objects under `name/`): `allow` stores it, as S3 allows: a file and a directory of the same name then coexist and are both listed (`RETR`/`DELE` address the file, `CWD` the directory); `refuse` answers `550` instead, which costs one `ListObjectsV2` per upload (sent alongside the data, so no added latency, but a second billed request per small upload: twice the request bill of a camera fleet, and the load bench\'s bottleneck on s3rver)',
      ),
    ),
  renameDirectoryMaxObjects: z
    .number()
    .int()
    .min(1)
    .default(1000)
    .meta(doc('`RNFR`/`RNTO` of a directory copies every object under it; refused (`550`) above this many objects')),
  hashMaxStreamMiB: z
    .number()
    .min(0)
    .default(1024)
    .meta(doc('`HASH`/`XSHA256`/`XMD5` of an object without stored digests (written by someone else) reads it up to this size; larger: `550`; `0`: never read')),
});

/** Where accounts come from and how logins are checked (see docs/accounts.md). */
const authSection = z.strictObject({
  accountsFile: z
    .string()
    .min(1)
    .optional()
    .meta(doc('YAML or JSON file with more accounts (a list with the same fields as `accounts`, or a mapping with `accounts:`), re-read on change and on `SIGHUP`', 'none')),
  accountsReload: z
    .strictObject({
      closeRemovedSessions: z.boolean().default(true).meta(doc('open sessions of accounts removed from `auth.accountsFile` get `421` and are closed')),
      pollSeconds: z.number().positive().max(3600).default(10).meta(doc('`auth.accountsFile` is also polled this often (watches miss some volume updates)')),
    })
    .prefault({}),
  hook: z
    .strictObject({
      url: z
        .url()
        .meta(
          doc(
            'external authentication for users that are not local accounts (see [Auth hook](accounts.md#auth-hook)); user info in it (`https://user:pw@host/`) is sent as HTTP Basic auth',
            'none',
          ),
        ),
      timeoutSeconds: z.number().positive().max(120).default(5).meta(doc('no answer within this time: login refused')),
      cacheSeconds: z.number().min(0).max(86_400).default(0).meta(doc('a successful answer is reused this long for the same user, password and client address; `0`: never')),
    })
    .optional(),
  quotaRefreshSeconds: z
    .number()
    .positive()
    .max(86_400)
    .default(300)
    .meta(doc('cached quota usage is measured again from S3 (`ListObjectsV2` of the prefix) when older than this (see [Quotas](accounts.md#quotas))')),
});

/** The operations HTTP listener. */
const httpSection = z.strictObject({
  enabled: z.boolean().default(true).meta(doc('the operations HTTP listener (`/metrics`, `/healthz`, `/readyz`; see [Operations](operations.md))')),
  host: z.string().default('0.0.0.0').meta(doc('its address')),
  port: port.default(9464).meta(doc('its port')),
  readinessCacheSeconds: z
    .number()
    .min(0)
    .max(300)
    .default(5)
    .meta(doc('how long a `/readyz` bucket check (`HeadBucket` of the bucket of every account in force, on its own S3 target) is reused')),
  readyzDetails: z
    .boolean()
    .default(false)
    .meta(doc('`/readyz` names each bucket, its endpoint and access key id; off, it answers only `ok`/`failed` per check, so whoever reaches the ops port learns nothing about the targets')),
});

const eventsSection = z.strictObject({
  webhook: z
    .strictObject({
      url: z.url().meta(doc('POST a JSON event after every committed upload, delete and rename (see [Upload events](operations.md#upload-events))', 'none')),
      secret: z.string().min(1).optional().meta(doc('HMAC-SHA256 key; each request then carries `X-FTP-S3-Bridge-Signature: sha256=<hex>`', 'none')),
      timeoutSeconds: z.number().positive().max(300).default(10).meta(doc('per attempt')),
      maxAttempts: z
        .number()
        .int()
        .min(1)
        .max(20)
        .default(5)
        .meta(doc('attempts per event (network errors, timeouts, `408`, `429`, `5xx` are retried with backoff 0.5 s, 1 s, 2 s, … ≤ 30 s)')),
      queueSize: z.number().int().min(1).max(1_000_000).default(1000).meta(doc('events waiting for delivery; beyond it the oldest is dropped (counted and logged)')),
    })
    .optional(),
});

/** The SFTP listener (see [SFTP](sftp.md)): the same accounts, policies and storage as FTP. */
const sftpSection = z.strictObject({
  enabled: z.boolean().default(false).meta(doc('serve SFTP (SSH file transfer; only the `sftp` subsystem: shell, exec and forwarding are refused)')),
  host: z.string().default('0.0.0.0').meta(doc('SFTP listener address (`::` for IPv6)')),
  port: port.default(2222).meta(doc('SFTP port')),
  hostKeys: z
    .array(z.string().min(1))
    .default([])
    .meta(doc('private host key files (OpenSSH or PEM; ed25519, ECDSA or RSA); one per key type; needed when `enabled` (`dev` generates one); a missing or unreadable file stops the start')),
  algorithms: z
    .strictObject({
      kex: sshAlgorithms('kex', SAFE_SSH_ALGORITHMS.kex).meta(doc('key exchange methods offered, in order of preference')),
      cipher: sshAlgorithms('cipher', SAFE_SSH_ALGORITHMS.cipher).meta(doc('ciphers offered (no CBC by default)')),
      hmac: sshAlgorithms('hmac', SAFE_SSH_ALGORITHMS.hmac).meta(doc('MACs offered (no SHA-1 or MD5 by default); unused with the GCM and ChaCha20 ciphers')),
      serverHostKey: sshAlgorithms('serverHostKey', SAFE_SSH_ALGORITHMS.serverHostKey).meta(doc('host key signature algorithms offered (no `ssh-rsa`, which signs with SHA-1, by default)')),
    })
    .prefault({})
    .meta(doc('SSH algorithms; names as OpenSSH spells them, each list limited to what the server supports')),
  idleTimeoutSeconds: z
    .number()
    .min(0)
    .default(900)
    .meta(doc('an SFTP connection without requests is closed; never while a file is open for a transfer in flight; `0`: never')),
  maxSessionsPerConnection: z
    .number()
    .int()
    .min(1)
    .max(64)
    .default(4)
    .meta(doc('SSH channels (`sftp` subsystems) one connection may have open at once; more are refused')),
  maxOpenHandlesPerSession: z
    .number()
    .int()
    .min(1)
    .max(1024)
    .default(64)
    .meta(doc('open files and directories of one SFTP session at once (`SSH_FX_FAILURE` beyond)')),
  writeReorderWindowKiB: z
    .number()
    .int()
    .min(64)
    .max(65_536)
    .default(4096)
    .meta(doc('how far ahead of the next expected offset an out-of-order `WRITE` may land and wait (pipelining clients send several at once); a write beyond, or one that goes backwards, fails the upload with `SSH_FX_OP_UNSUPPORTED`')),
  proxyProtocol: proxyProtocolSection('the SFTP port'),
});

const clusterSection = z.strictObject({
  redis: z
    .strictObject({
      url: z
        .string()
        .regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL')
        .meta(doc('the shared Redis (`redis://[:password@]host:port[/db]`; `rediss://` for TLS); give it through `FTP_S3_BRIDGE__CLUSTER__REDIS__URL` from a Secret, as it may hold a password')),
      keyPrefix: z
        .string()
        .min(1)
        .max(64)
        .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
        .default('{ftp-s3-bridge}:')
        .meta(doc('prefix of every key the bridge writes; the `{...}` hash tag keeps them in one slot so the scripts that touch several keys run on a clustered Redis too; replicas that must share state use the same prefix')),
      tls: z
        .strictObject({
          ca: z.string().optional().meta(doc('PEM file of the CA that signed the Redis server certificate (default: the system CAs)')),
          rejectUnauthorized: z.boolean().default(true).meta(doc('verify the server certificate; `false` only for tests')),
        })
        .optional()
        .meta(doc('TLS options for a `rediss://` URL')),
      commandTimeoutMs: z
        .number()
        .int()
        .min(50)
        .max(10_000)
        .default(500)
        .meta(doc('a Redis command not answered in time counts as Redis being down for that decision: the replica decides on its own state')),
    })
    .optional()
    .meta(doc('shared state of all replicas (bans, connection limits, quota reservations, bandwidth); without it each replica keeps its own (see [Kubernetes](kubernetes.md))')),
  replicaId: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
    .optional()
    .meta(doc("this replica's name in the shared state", 'the host name and process id')),
});

export const configSchema = z
  .strictObject({
    ftp: ftpSection.prefault({}),
    s3: s3Section.prefault({}),
    accounts: accountListSchema.default([]).meta(doc('inline accounts (see [Accounts](accounts.md)); more come from `auth.accountsFile` and `auth.hook`')),
    auth: authSection.prefault({}),
    http: httpSection.prefault({}),
    shutdown: z
      .strictObject({
        drainTimeoutSeconds: z
          .number()
          .min(0)
          .max(86_400)
          .default(300)
          .meta(doc('after `SIGTERM`/`SIGINT`, how long transfers in flight may run on before they are aborted')),
      })
      .prefault({}),
    events: eventsSection.prefault({}),
    scan: z
      .strictObject({
        clamd: z
          .union([z.strictObject({ host: z.string().min(1), port }), z.strictObject({ socket: z.string().min(1) })])
          .meta(doc("clamd's TCP address (`{ host, port }`) or Unix socket (`{ socket }`); its `StreamMaxLength` must be at least `maxMiB` (see [Scanning](scanning.md))")),
        timeoutSeconds: z.number().positive().max(3600).default(30).meta(doc('bound on each wait for clamd (taking a chunk, the verdict after the last byte, plus `verdictSecondsPerGiB`)')),
        verdictSecondsPerGiB: z
          .number()
          .min(0)
          .max(3600)
          .default(60)
          .meta(doc('added to the wait for the verdict for every GiB scanned: clamd scans a stream after its last byte (~27 CPU-s per GiB measured; see [Scanning](scanning.md))')),
        maxMiB: z.number().positive().max(5120).default(1024).meta(doc('larger uploads are not scanned (clamd spools each stream to its disk); see `oversize`')),
        oversize: z
          .enum(['reject', 'accept-unscanned'])
          .default('reject')
          .meta(doc('uploads above `maxMiB`: refused (`550` as soon as they pass it) or committed tagged `scan=unscanned`')),
        onError: z
          .enum(['reject', 'accept-unscanned'])
          .default('reject')
          .meta(doc('clamd down, timed out or failing: `451` and nothing committed, or committed tagged `scan=unscanned`')),
      })
      .optional(),
    sftp: sftpSection.prefault({}),
    cluster: clusterSection.prefault({}),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').meta(doc('pino level')),
        pretty: z.boolean().default(false).meta(doc('human-readable logs (development; needs the dev dependency pino-pretty)')),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.sftp.enabled && !c.sftp.hostKeys.length) ctx.addIssue({ code: 'custom', path: ['sftp', 'hostKeys'], message: 'at least one host key file is needed when sftp.enabled' });
    if (!c.accounts.length && !c.auth.accountsFile && !c.auth.hook) {
      ctx.addIssue({ code: 'custom', path: ['accounts'], message: 'at least one account is required (accounts, auth.accountsFile or auth.hook)' });
    }
    if (!c.ftp.tls.cert) {
      if (c.ftp.requireTls) ctx.addIssue({ code: 'custom', path: ['ftp', 'requireTls'], message: 'needs ftp.tls.cert and ftp.tls.key' });
      c.accounts.forEach((a, i) => {
        if (a.requireTls) ctx.addIssue({ code: 'custom', path: ['accounts', i, 'requireTls'], message: 'needs ftp.tls.cert and ftp.tls.key' });
      });
    }
    if (!c.scan) {
      c.accounts.forEach((a, i) => {
        if (a.scan && a.scan !== 'off') ctx.addIssue({ code: 'custom', path: ['accounts', i, 'scan'], message: 'needs the scan section (scan.clamd)' });
      });
    }
  });

export type BridgeConfig = z.infer<typeof configSchema>;
export type BridgeConfigInput = z.input<typeof configSchema>;
