/* eslint-disable no-control-regex -- names must be checked for control characters */
import { isIP } from 'node:net';
import { z } from 'zod';

/** Per-account operations; each FTP command needs one of them (see ftp/permissions). */
export const PERMISSIONS = ['list', 'read', 'write', 'delete', 'rename', 'mkdir'] as const;
export type Permission = (typeof PERMISSIONS)[number];

const port = z.number().int().min(0).max(65535);

const bandwidthLimits = z.strictObject({
  uploadKiBps: z.number().positive().optional(),
  downloadKiBps: z.number().positive().optional(),
});
const s3Credentials = z.strictObject({
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  sessionToken: z.string().optional(),
});

/** "10.0.0.0/8", "2001:db8::/32" or a single address. */
const cidr = z.string().refine((s) => {
  const [address = '', prefix, extra] = s.split('/');
  const family = isIP(address);
  if (!family || extra !== undefined) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
}, 'must be an IP address or a CIDR network such as 10.0.0.0/8');

export const accountSchema = z.strictObject({
  username: z.string().min(1).regex(/^[^\s\x00-\x1f\x7f]+$/, 'must not contain spaces or control characters'),
  passwordHash: z
    .string()
    .regex(/^\$(2[aby]\$\d\d\$.{53}|argon2id\$.+)$/, 'must be a bcrypt ($2b$...) or argon2id ($argon2id$...) hash'),
  bucket: z.string().min(3).max(63),
  prefix: z
    .string()
    .default('')
    .refine((p) => p === '' || (p.endsWith('/') && !p.startsWith('/')), 'must be "" or end with "/" and not start with "/"')
    .refine((p) => !/[\x00-\x1f\x7f]/.test(p), 'must not contain control characters'),
  permissions: z.array(z.enum(PERMISSIONS)).default([...PERMISSIONS]),
  /** Client networks this account may log in from (CIDR or single address); omitted: anywhere. */
  allowFrom: z.array(cidr).min(1).optional(),
  /** Usage limits under bucket/prefix (see accounts/quota.ts). */
  quota: z
    .strictObject({ maxBytes: z.number().int().positive().optional(), maxObjects: z.number().int().positive().optional() })
    .optional(),
  /** Per-session data-stream limits. */
  bandwidth: bandwidthLimits.optional(),
  storageClass: z.string().regex(/^[A-Z][A-Z_]*$/, 'must be an S3 storage class such as STANDARD_IA').optional(),
  serverSideEncryption: z.enum(['AES256', 'aws:kms']).optional(),
  sseKmsKeyId: z.string().min(1).optional(),
  /**
   * Object Lock retention of every object the account uploads (and of the copies its renames make),
   * counted from the start of the upload. The bucket must have Object Lock enabled (checked at start
   * and by /readyz) and s3.checksumAlgorithm must not be none.
   */
  retention: z.strictObject({ mode: z.enum(['GOVERNANCE', 'COMPLIANCE']), days: z.number().int().min(1).max(36_500) }).optional(),
  /** Every object the account uploads is under legal hold (same requirements as retention). */
  legalHold: z.boolean().optional(),
  /** Object tags added on upload (S3 allows 10). */
  tags: z
    .record(z.string().min(1).max(128), z.string().max(256))
    .refine((t) => Object.keys(t).length <= 10, 'at most 10 tags')
    .optional(),
  /** User metadata (x-amz-meta-*) added on upload. */
  metadata: z
    .record(z.string(), z.string())
    .superRefine((m, ctx) => {
      for (const [key, value] of Object.entries(m)) {
        const problem = !/^[a-z0-9][a-z0-9-]*$/.test(key)
          ? 'key must be lower-case letters, digits and "-"'
          : key === 'ftp-user' || key === 'ftp-client-ip'
            ? 'is set by the bridge'
            : !/^[\x20-\x7e]*$/.test(value)
              ? 'must be printable ASCII'
              : undefined;
        if (problem) ctx.addIssue({ code: 'custom', path: [key], message: problem });
      }
    })
    .optional(),
  /** Another S3 target for this account (another account's bucket, another store); omitted keys come from `s3`. */
  endpoint: z.url().optional(),
  region: z.string().min(1).optional(),
  credentials: s3Credentials.optional(),
  /** Only over TLS: USER before AUTH TLS gets 530, data connections need PROT P (needs ftp.tls). */
  requireTls: z.boolean().optional(),
});
export type AccountConfig = z.infer<typeof accountSchema>;

/** Checks across an account's fields (kept off accountSchema so it can still be picked from). */
function checkAccountPolicy(a: Partial<AccountConfig>, ctx: z.RefinementCtx): void {
  if (a.sseKmsKeyId !== undefined && a.serverSideEncryption !== 'aws:kms') {
    ctx.addIssue({ code: 'custom', path: ['sseKmsKeyId'], message: 'only with serverSideEncryption: aws:kms' });
  }
}

/** What an external auth hook answers for a login: one account without username and passwordHash. */
export const hookAccountSchema = accountSchema.omit({ username: true, passwordHash: true }).superRefine(checkAccountPolicy);
export type HookAccount = z.infer<typeof hookAccountSchema>;

/** A list of accounts (inline `accounts`, or the content of `accountsFile`); names must be unique. */
export const accountListSchema = z.array(accountSchema.superRefine(checkAccountPolicy)).superRefine((list, ctx) => {
  const seen = new Set<string>();
  list.forEach((a, i) => {
    if (seen.has(a.username)) ctx.addIssue({ code: 'custom', path: [i, 'username'], message: `duplicate account "${a.username}"` });
    seen.add(a.username);
  });
});

export const configSchema = z.strictObject({
  ftp: z
    .strictObject({
      host: z.string().default('0.0.0.0'),
      port: port.default(2121),
      passive: z
        .strictObject({
          /** Address announced in PASV replies; omitted: the address the client connected to. */
          address: z.string().min(1).optional(),
          portMin: port.default(30000),
          portMax: port.default(30049),
          /** Clients in `cidr` are told `address` instead (e.g. the internal address for in-cluster clients). */
          overrides: z.array(z.strictObject({ cidr, address: z.string().min(1) })).default([]),
          /**
           * Passive ports one client address may hold at once (waiting for their data connection);
           * PASV/EPSV beyond it answer 425 to that address only. Omitted: a quarter of the range, at least 4.
           */
          maxPerClient: z.number().int().min(1).optional(),
        })
        .prefault({})
        .refine((p) => p.portMin <= p.portMax, 'portMin must be <= portMax')
        .transform((p) => ({ ...p, maxPerClient: p.maxPerClient ?? Math.max(4, Math.floor((p.portMax - p.portMin + 1) / 4)) })),
      greeting: z.string().default('ftp-s3-bridge ready'),
      /**
       * Every refused login answers this long (or a multiple of it) after its PASS arrived, whatever the
       * reason; with auth.hook at least the hook's time-out (+100 ms), so a silent hook is not told apart.
       */
      loginFailureDelayMs: z.number().int().min(0).max(60_000).default(1000),
      /** RNFR/RNTO of a directory copies every object under it; refused above this count. */
      renameDirectoryMaxObjects: z.number().int().min(1).default(1000),
      dataConnectionTimeoutSeconds: z.number().positive().default(30),
      /** A transfer whose data connection moves no byte this long while waiting on the client is aborted (426); 0: never. */
      dataIdleTimeoutSeconds: z.number().min(0).default(120),
      /** HASH/XSHA256/XMD5 of a file without stored digests (written by others) reads it up to this size; 0: never. */
      hashMaxStreamMiB: z.number().min(0).default(1024),
      /**
       * MKD of a directory that already exists: 'ok' answers 257 with its path (devices that MKD every
       * path component before each upload, and libraries that stop after a 550, carry on); 'error'
       * answers 550 like vsftpd and ProFTPD. A file of that name is always 550.
       */
      mkdExistingDirectory: z.enum(['ok', 'error']).default('ok'),
      /**
       * STOR/APPE of a name that is a directory (objects under "name/"): 'refuse' answers 550, at the
       * cost of one ListObjectsV2 per upload (sent alongside the data); 'allow' skips that request,
       * which halves the S3 requests of small uploads, and a file and a directory of the same name
       * can then coexist (S3 allows it; both are listed).
       */
      storeOntoDirectory: z.enum(['refuse', 'allow']).default('allow'),
      /** A connection without a successful login is closed after this time. */
      loginTimeoutSeconds: z.number().positive().default(60),
      /** A logged-in connection without commands is closed after this time (never during a transfer); 0: never. */
      idleTimeoutSeconds: z.number().min(0).default(900),
      /** Open control connections, in total and per client address (421 beyond); 0: unlimited. */
      maxConnections: z.number().int().min(0).default(1000),
      maxConnectionsPerIp: z.number().int().min(0).default(100),
      /** Data-stream caps shared by all sessions together (per-account limits: accounts[].bandwidth). */
      bandwidth: bandwidthLimits.optional(),
      /** After maxFailures failed logins from one address within windowSeconds, it is refused for banSeconds. */
      bruteForce: z
        .strictObject({
          maxFailures: z.number().int().min(0).default(10),
          windowSeconds: z.number().positive().default(300),
          banSeconds: z.number().positive().default(900),
          /** IPv6 clients are counted per prefix of this length, for bans and maxConnectionsPerIp. */
          ipv6PrefixLength: z.number().int().min(1).max(128).default(64),
        })
        .prefault({}),
      /** FTPS: explicit (AUTH TLS on the control port) and, with implicitPort, implicit. */
      tls: z
        .strictObject({
          /** PEM certificate (chain) file; re-read when it changes. */
          cert: z.string().min(1).optional(),
          /** PEM private key file; re-read when it changes. */
          key: z.string().min(1).optional(),
          /** Port of the implicit FTPS listener (conventionally 990); omitted: none. */
          implicitPort: port.optional(),
          /** Oldest TLS version accepted; below TLSv1.2 only for devices that cannot do better (logged as a warning). */
          minVersion: z.enum(['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
          /** The files are watched, and also re-read this often (watches miss some volume updates). */
          reloadCheckSeconds: z.number().positive().max(3600).default(60),
          /** A TLS handshake (implicit port, AUTH TLS, PROT P data connection) not done within this is dropped. */
          handshakeTimeoutSeconds: z.number().positive().max(300).default(10),
        })
        .prefault({})
        .refine((t) => (t.cert === undefined) === (t.key === undefined), 'cert and key must be given together')
        .refine((t) => t.implicitPort === undefined || t.cert !== undefined, 'implicitPort needs cert and key'),
      /** Every account only over TLS (USER before AUTH TLS gets 530; data connections need PROT P). */
      requireTls: z.boolean().default(false),
    })
    .prefault({}),
  s3: z
    .strictObject({
      endpoint: z.url().optional(),
      region: z.string().default('us-east-1'),
      forcePathStyle: z.boolean().default(false),
      credentials: z
        .strictObject({
          accessKeyId: z.string().min(1),
          secretAccessKey: z.string().min(1),
          sessionToken: z.string().optional(),
        })
        .optional(),
      partSizeMiB: z.number().int().min(5).max(5120).default(8),
      queueSize: z.number().int().min(1).max(64).default(4),
      /** Attempts per S3 request (the SDK's retry strategy of `retryMode`, with backoff), and per download resume. */
      maxAttempts: z.number().int().min(1).max(20).default(5),
      /** The SDK's retry strategy: `standard` (exponential backoff), or `adaptive` (also rate-limits the client after throttling). */
      retryMode: z.enum(['standard', 'adaptive']).default('standard'),
      /** A request, or a response body, that makes no progress for this long fails (and is retried). */
      requestTimeoutSeconds: z.number().positive().max(3600).default(30),
      /** Incomplete multipart uploads older than this are aborted every `sweepUploadsIntervalSeconds` (omitted: never). */
      sweepUploadsOlderThanHours: z.number().positive().optional(),
      /** How often the periodic sweep runs (the first run is after a minute, or this if shorter). */
      sweepUploadsIntervalSeconds: z.number().positive().min(1).max(604_800).default(3600),
      /** Upload part buffers of all sessions together; at the cap, new parts wait. */
      memoryLimitMiB: z.number().int().min(16).default(256),
      /**
       * The most of memoryLimitMiB that the uploads of one client address, and of one account, hold
       * at once (never less than one part); beyond it their uploads wait while those of others go on.
       */
      memoryShare: z
        .strictObject({
          perClientPercent: z.number().int().min(1).max(100).default(25),
          perAccountPercent: z.number().int().min(1).max(100).default(50),
        })
        .prefault({}),
      /** Stores x-amz-meta-ftp-user and x-amz-meta-ftp-client-ip on every uploaded object. */
      uploaderMetadata: z.boolean().default(true),
      /** Renames copy objects above this size part by part (UploadPartCopy), below it with one CopyObject (S3's limit: 5 GiB). */
      multipartCopyThresholdMiB: z.number().int().min(5).max(5120).default(5120),
      /**
       * Digests computed while each upload streams in and stored with it (HASH, XSHA256, XMD5 answer
       * from them; others are computed by reading the object, up to ftp.hashMaxStreamMiB). MD5 is
       * the costliest step of an upload (~1.4 CPU-s per GiB, twice SHA-256): drop it where no
       * client asks for XMD5 or HASH MD5.
       */
      uploadDigests: z.array(z.enum(['SHA-256', 'MD5'])).default(['SHA-256', 'MD5']),
      /**
       * Checksum S3 verifies on every upload request and keeps with the object (x-amz-checksum-*),
       * computed in the same pass as uploadDigests. Multipart: composite for SHA256/CRC32/CRC32C,
       * full-object for CRC64NVME. Omitted: SHA256 on AWS, none when `endpoint` is set.
       */
      checksumAlgorithm: z.enum(['SHA256', 'CRC64NVME', 'CRC32C', 'CRC32', 'none']).optional(),
      /**
       * Checksum behaviour of the AWS SDK. `WHEN_SUPPORTED` (the SDK default) sends CRC32 trailers
       * that many S3-compatible stores reject or store inside the object; `WHEN_REQUIRED` is the safe
       * choice for them. Omitted: WHEN_SUPPORTED for AWS, WHEN_REQUIRED when `endpoint` is set.
       */
      requestChecksumCalculation: z.enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED']).optional(),
      responseChecksumValidation: z.enum(['WHEN_SUPPORTED', 'WHEN_REQUIRED']).optional(),
    })
    .prefault({}),
  accounts: accountListSchema.default([]),
  /** A YAML or JSON file with more accounts (a list, or a mapping with `accounts:`), re-read when it changes and on SIGHUP. */
  accountsFile: z.string().min(1).optional(),
  accountsReload: z
    .strictObject({
      /** Close (421) the open sessions of accounts removed from accountsFile. */
      closeRemovedSessions: z.boolean().default(true),
      /** accountsFile is also checked this often (file watches miss some Secret updates). */
      pollSeconds: z.number().positive().max(3600).default(10),
    })
    .prefault({}),
  auth: z
    .strictObject({
      /** External identity provider for users that are not local accounts (see accounts/auth-hook.ts). */
      hook: z
        .strictObject({
          url: z.url(),
          timeoutSeconds: z.number().positive().max(120).default(5),
          /** A successful answer is reused this long for the same user, password and client address; 0: never. */
          cacheSeconds: z.number().min(0).max(86_400).default(0),
        })
        .optional(),
    })
    .prefault({}),
  /** Cached quota usage is re-read from S3 (ListObjectsV2 of the prefix) when older than this. */
  quotaRefreshSeconds: z.number().positive().max(86_400).default(300),
  /** Metrics (/metrics) and health (/healthz, /readyz). */
  http: z
    .strictObject({
      enabled: z.boolean().default(true),
      host: z.string().default('0.0.0.0'),
      port: port.default(9464),
      /** How long a /readyz bucket check (HeadBucket) result is reused. */
      readinessCacheSeconds: z.number().min(0).max(300).default(5),
      /** /readyz names each bucket, its endpoint and key id; off, it answers only ok/failed per check. */
      readyzDetails: z.boolean().default(false),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** After SIGTERM/SIGINT, how long commands in flight may run on before they are aborted. */
      drainTimeoutSeconds: z.number().min(0).max(86_400).default(300),
    })
    .prefault({}),
  events: z
    .strictObject({
      /** POSTs a signed JSON event after each committed upload, delete and rename. */
      webhook: z
        .strictObject({
          url: z.url(),
          /** HMAC-SHA256 key for the X-FTP-S3-Bridge-Signature header. */
          secret: z.string().min(1).optional(),
          timeoutSeconds: z.number().positive().max(300).default(10),
          maxAttempts: z.number().int().min(1).max(20).default(5),
          /** Events waiting beyond this count drop the oldest. */
          queueSize: z.number().int().min(1).max(1_000_000).default(1000),
        })
        .optional(),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      pretty: z.boolean().default(false),
    })
    .prefault({}),
}).superRefine((c, ctx) => {
  if (!c.accounts.length && !c.accountsFile && !c.auth.hook) {
    ctx.addIssue({ code: 'custom', path: ['accounts'], message: 'at least one account is required (accounts, accountsFile or auth.hook)' });
  }
  if (!c.ftp.tls.cert) {
    if (c.ftp.requireTls) ctx.addIssue({ code: 'custom', path: ['ftp', 'requireTls'], message: 'needs ftp.tls.cert and ftp.tls.key' });
    c.accounts.forEach((a, i) => {
      if (a.requireTls) ctx.addIssue({ code: 'custom', path: ['accounts', i, 'requireTls'], message: 'needs ftp.tls.cert and ftp.tls.key' });
    });
  }
});

export type BridgeConfig = z.infer<typeof configSchema>;
export type BridgeConfigInput = z.input<typeof configSchema>;
