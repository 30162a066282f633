import { LOCAL_STATE, RedisSharedState, type SharedState } from '../cluster/shared-state.js';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { AccountConfig, BridgeConfig } from '../config/schema.js';
import { redactSecrets } from '../config/redact.js';
import { AccountSessions, BruteForceGuard, clientKey, ConnectionLimiter } from '../sessions/access-control.js';
import { FtpServer } from '../ftp/ftp-server.js';
import type { OperationEvent } from '../sessions/operations.js';
import { TlsCredentials } from '../ftp/tls.js';
import { ConfigError } from '../config/load.js';
import { ChecksumTargets, type ChecksumTarget } from '../storage/checksum-probe.js';
import { objectLockProblem } from '../storage/object-lock.js';
import { loadHostKeys } from '../sftp/host-keys.js';
import type { SftpServer } from '../sftp/sftp-server.js';
import { createS3Client } from '../storage/s3-client.js';
import { DigestCache } from '../storage/digests.js';
import { MemoryBudget } from '../storage/memory-budget.js';
import { S3FileStore } from '../storage/s3-file-store.js';
import type { AccountScanPolicy } from '../storage/scan.js';
import { pingClamd } from '../storage/clamd.js';
import type { SweepResult } from '../storage/sweep.js';
import { eventFor, WebhookPublisher } from './events.js';
import { Readiness } from './health.js';
import { OpsHttpServer } from './http.js';
import { BridgeMetrics } from './metrics.js';
import { compactHeap, startMemoryRelief } from './memory-relief.js';
import { startAccountServices, targetLabel, targetOf, type AccountTarget } from './account-services.js';

export interface RunningBridge {
  /** The FTP control listener's address (its port is the real one when the config says 0). */
  ftpAddress: AddressInfo;
  /** The implicit FTPS listener's address, when `ftp.tls.implicitPort` is set. */
  ftpsImplicitAddress?: AddressInfo;
  /** The SFTP listener's address, when `sftp.enabled`. */
  sftpAddress?: AddressInfo;
  /** The metrics/health listener's address, unless `http.enabled` is false. */
  httpAddress: AddressInfo | undefined;
  /**
   * Graceful stop: not ready at once, no new connections, idle sessions get 421, transfers in
   * flight run on for up to `shutdown.drainTimeoutSeconds` and are then aborted.
   */
  drain(): Promise<void>;
  /** Immediate stop: transfers in flight are aborted. */
  close(): Promise<void>;
}

/** The audit line of one operation, with the field names the operations docs promise. */
function auditFields(e: OperationEvent) {
  return {
    event: 'operation',
    session: e.sessionId,
    user: e.user,
    clientIp: e.clientIp,
    operation: e.op,
    protocol: e.protocol ?? 'ftp',
    path: e.path,
    ...(e.from !== undefined ? { from: e.from } : {}),
    bucket: e.bucket,
    key: e.key,
    bytes: e.bytes,
    durationMs: e.durationMs,
    result: e.result,
    replyCode: e.code,
    etag: e.etag,
    ...(e.checksum !== undefined ? { checksum: e.checksum } : {}),
    ...(e.error !== undefined ? { error: e.error } : {}),
    ...(e.scan ? { scan: e.scan } : {}),
  };
}

/** An account's malware scan policy for its S3FileStore; undefined when it does not scan. */
export function scanPolicyFor(account: AccountConfig, scan: BridgeConfig['scan']): AccountScanPolicy | undefined {
  if (!account.scan || account.scan === 'off') return undefined;
  return {
    // No scan section (an account from the accounts file or the auth hook asks for one): every upload fails closed.
    settings: scan && {
      clamd: scan.clamd,
      timeoutMs: scan.timeoutSeconds * 1000,
      verdictMsPerGiB: scan.verdictSecondsPerGiB * 1000,
      maxBytes: Math.floor(scan.maxMiB * 1024 * 1024),
      oversize: scan.oversize,
      onError: scan.onError,
    },
    mode: account.scan,
    ...(account.quarantine ? { quarantine: { bucket: account.quarantine.bucket ?? account.bucket, prefix: account.quarantine.prefix } } : {}),
  };
}

/**
 * With `s3.sweepUploadsOlderThanHours`, aborts orphaned multipart uploads under every account's
 * bucket and prefix (the accounts in force at each run, each on its own S3 target) every
 * `s3.sweepUploadsIntervalSeconds` (and shortly after start). Age-based, so safe on several
 * replicas. Returns the function that stops it.
 */
function startPeriodicSweep(config: BridgeConfig, sweepNow: (olderThan: Date) => Promise<SweepResult>, logger: Logger): (() => void) | undefined {
  const hours = config.s3.sweepUploadsOlderThanHours;
  if (hours === undefined) return undefined;
  const sweep = () =>
    sweepNow(new Date(Date.now() - hours * 3_600_000)).then(
      (result) => logger.info(result, 'swept incomplete multipart uploads'),
      (err: unknown) => logger.warn({ err }, 'sweeping incomplete multipart uploads failed'),
    );
  const intervalMs = config.s3.sweepUploadsIntervalSeconds * 1000;
  // The first run a minute after start, not a whole interval later.
  const first = intervalMs > 60_000 ? setTimeout(() => void sweep(), 60_000).unref() : undefined;
  const every = setInterval(() => void sweep(), intervalMs).unref();
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}

/**
 * One line per account with `retention` or `legalHold` that cannot have it: its bucket lacks Object
 * Lock (GetObjectLockConfiguration), or no checksum goes with the uploads (S3 requires one, or a
 * Content-MD5, on requests that set Object Lock). Each bucket is asked once per target.
 */
async function objectLockProblems(targets: AccountTarget[], withChecksum: (account: AccountConfig) => boolean): Promise<string[]> {
  const asked = new Map<string, Promise<string | undefined>>();
  const problems: string[] = [];
  for (const target of targets) {
    for (const account of target.accounts) {
      if (!account.retention && !account.legalHold) continue;
      const what = account.retention ? 'retention' : 'legalHold';
      if (!withChecksum(account)) problems.push(`accounts[${account.username}].${what}: needs s3.checksumAlgorithm (S3 requires a checksum with Object Lock)`);
      const id = `${target.label ?? ''}\n${account.bucket}`;
      if (!asked.has(id)) asked.set(id, objectLockProblem(target.client, account.bucket, AbortSignal.timeout(30_000)));
      const problem = await asked.get(id);
      if (problem) problems.push(`accounts[${account.username}].${what}: bucket ${account.bucket}: ${problem}`);
    }
  }
  return problems;
}

/** Bound on one bucket's start-up checksum probe (a handful of small requests). */
const CHECKSUM_PROBE_TIMEOUT_MS = 10_000;

/** Bound on /readyz's PING of clamd. */
const SCANNER_PING_TIMEOUT_MS = 2000;

/** Composition root: builds every part from the config and starts the FTP listener. */
export async function startBridge(config: BridgeConfig, logger: Logger): Promise<RunningBridge> {
  logger.info({ config: redactSecrets(config) }, 'effective configuration');
  // `ftp` is assigned below; the metrics only read it when scraped.
  // eslint-disable-next-line prefer-const -- used by the closures below before it is assigned
  let ftp: FtpServer;
  // Read before anything starts: a missing or unreadable host key is a start-up error of one line.
  const hostKeys = config.sftp.enabled ? await loadHostKeys(config.sftp.hostKeys) : [];
  let sftp: SftpServer | undefined;
  const memoryBudget = new MemoryBudget(config.s3.memoryLimitMiB * 1024 * 1024, config.s3.memoryShare);
  // Bans, limits, quota reservations and bandwidth shared by every replica (cluster.redis), else this replica's own.
  const redisState = config.cluster.redis ? await RedisSharedState.create(config.cluster.redis, config.cluster.replicaId, logger.child({ component: 'cluster' })) : undefined;
  const shared: SharedState = redisState ?? LOCAL_STATE;
  const metrics = new BridgeMetrics({
    sessionsActive: () => ftp.connections.size + (sftp?.connections.size ?? 0),
    passivePorts: () => ftp.passivePortUsage(),
    uploadMemory: () => ({ inUse: memoryBudget.inUse, waiting: memoryBudget.waiting }),
    ...(redisState ? { cluster: () => ({ up: shared.available(), fallbacks: shared.fallbacks }) } : {}),
  });
  redisState?.start();
  const s3 = createS3Client(config.s3, (info) => metrics.onS3Request(info));
  const accounts = await startAccountServices({ config, logger, defaultClient: s3, onS3Request: (info) => metrics.onS3Request(info), registry: metrics.registry, shared });
  // Which checksum each bucket's uploads carry, and why: one line per bucket and target.
  const checksums = new ChecksumTargets({
    configured: config.s3.checksumAlgorithm,
    timeoutMs: CHECKSUM_PROBE_TIMEOUT_MS,
    report: (r) =>
      logger[r.warn ? 'warn' : 'info'](
        { event: 'checksum-algorithm', bucket: r.bucket, target: r.target, checksumAlgorithm: r.algorithm ?? 'none', configured: r.configured ?? 'default' },
        `bucket ${r.bucket} (${r.target}): ${r.message}`,
      ),
  });
  const checksumTarget = (account: AccountConfig, client = accounts.clients.get(targetOf(account))): ChecksumTarget => ({
    client,
    bucket: account.bucket,
    prefix: account.prefix,
    endpoint: account.endpoint ?? config.s3.endpoint,
    label: targetLabel(account, config.s3),
  });
  const checksumTargets = () => accounts.targets().flatMap((t) => t.accounts.map((a) => checksumTarget(a, t.client)));
  await checksums.probe(checksumTargets());
  // Buckets that reloaded accounts name for the first time are probed as they arrive.
  accounts.store.on('change', () => void checksums.probe(checksumTargets()));
  const lockProblems = await objectLockProblems(accounts.targets(), (account) => checksums.algorithmFor(checksumTarget(account)) !== undefined);
  if (lockProblems.length) {
    accounts.close();
    s3.destroy();
    await redisState?.stop();
    throw new ConfigError(lockProblems);
  }
  const authenticator = accounts.authenticator;
  const memoryRelief = startMemoryRelief({ budgetBytes: memoryBudget.limitBytes });
  const digestCache = new DigestCache();
  const storeFor = (account: AccountConfig, session: { clientIp: string; protocol?: 'ftp' | 'sftp' } = { clientIp: '' }) =>
    new S3FileStore({
      client: accounts.clients.get(targetOf(account)),
      objectParams: accounts.objectParams(account, session),
      bucket: account.bucket,
      prefix: account.prefix,
      partSizeBytes: config.s3.partSizeMiB * 1024 * 1024,
      queueSize: config.s3.queueSize,
      renameDirectoryMaxObjects: config.s3.renameDirectoryMaxObjects,
      storeOntoDirectory: config.s3.storeOntoDirectory,
      uploadDigests: config.s3.uploadDigests,
      multipartCopyThresholdBytes: config.s3.multipartCopyThresholdMiB * 1024 * 1024,
      hashMaxStreamBytes: config.s3.hashMaxStreamMiB * 1024 * 1024,
      maxAttempts: config.s3.maxAttempts,
      memoryBudget,
      memoryOwner: { client: clientKey(session.clientIp, config.ftp.bruteForce.ipv6PrefixLength), account: account.username },
      digestCache,
      checksumAlgorithm: checksums.algorithmFor(checksumTarget(account)),
      objectLock: account.retention || account.legalHold ? { retention: account.retention, legalHold: account.legalHold } : undefined,
      scan: scanPolicyFor(account, config.scan),
    });
  const stopSweep = startPeriodicSweep(config, (olderThan) => accounts.sweep(olderThan), logger.child({ component: 'sweep' }));
  const audit = logger.child({ component: 'audit' });
  const webhookConfig = config.events.webhook;
  const webhook = webhookConfig
    ? new WebhookPublisher(webhookConfig, logger.child({ component: 'webhook' }), {
        onDelivered: () => metrics.webhookEvents.inc({ result: 'delivered' }),
        onFailed: () => metrics.webhookEvents.inc({ result: 'failed' }),
        onDropped: () => metrics.webhookEvents.inc({ result: 'dropped' }),
      })
    : undefined;
  const onOperation = (event: OperationEvent) => {
    audit.info(auditFields(event), 'operation');
    metrics.onOperation(event);
    accounts.onOperation(event);
    const published = webhook && eventFor(event);
    if (published) webhook.publish(published);
  };
  const { cert, key, minVersion, reloadCheckSeconds } = config.ftp.tls;
  const tls = cert && key ? await TlsCredentials.load({ cert, key, minVersion, reloadCheckSeconds }, logger.child({ component: 'tls' })) : undefined;
  // One ban list and one count of connections for both front ends.
  const bruteForce = new BruteForceGuard(config.ftp.bruteForce, Date.now, redisState);
  const limiter = new ConnectionLimiter(config.ftp.maxConnections, config.ftp.maxConnectionsPerIp, config.ftp.bruteForce.ipv6PrefixLength, redisState);
  const accountSessions = new AccountSessions(redisState);
  ftp = new FtpServer({
    bruteForce,
    limiter,
    accountSessions,
    ftp: config.ftp,
    authenticator,
    storeFor,
    logger,
    onOperation,
    onLogin: (r) => metrics.onLogin(r),
    transferPolicy: accounts.transferPolicy,
    tls,
  });
  if (config.sftp.enabled) {
    // Loaded only here: a bridge without SFTP never loads ssh2 (see config/ssh2-module.ts).
    const { SftpServer: SftpListener } = await import('../sftp/sftp-server.js');
    sftp = new SftpListener({
      sftp: config.sftp,
      loginTimeoutSeconds: config.ftp.loginTimeoutSeconds,
      hostKeys,
      authenticator,
      bruteForce,
      limiter,
      accountSessions,
      storeFor,
      logger: logger.child({ component: 'sftp' }),
      onOperation,
      onLogin: (r) => metrics.onLogin(r, 'sftp'),
      transferPolicy: accounts.transferPolicy,
      reorderMemory: (account, clientIp) => {
        const owner = { client: clientKey(clientIp, config.ftp.bruteForce.ipv6PrefixLength), account: account.username };
        return { tryTake: (bytes) => memoryBudget.tryTakeSmallBuffer(bytes, owner), discard: (buffer) => memoryBudget.discard(buffer) };
      },
    });
  }
  accounts.onRemoved((usernames) => ftp.closeSessionsOf(usernames) + (sftp?.closeSessionsOf(usernames) ?? 0));
  const onHangup = () => void accounts.reload();
  if (config.auth.accountsFile) process.on('SIGHUP', onHangup);
  const scanSection = config.scan;
  const scannerCheck = scanSection && (() => pingClamd(scanSection.clamd, SCANNER_PING_TIMEOUT_MS));
  const readiness = new Readiness(() => accounts.readinessTargets(), config.http.readinessCacheSeconds * 1000, undefined, scannerCheck);
  let http: OpsHttpServer | undefined;
  let httpAddress: AddressInfo | undefined;
  if (config.http.enabled) http = new OpsHttpServer(metrics.registry, readiness, logger.child({ component: 'http' }), config.http.readyzDetails);
  let stopped: Promise<void> | undefined;
  const stop = (graceful: boolean) =>
    (stopped ??= (async () => {
      readiness.startDraining();
      stopSweep?.();
      memoryRelief?.stop();
      if (graceful) await Promise.all([ftp.drain(config.shutdown.drainTimeoutSeconds * 1000), sftp?.drain(config.shutdown.drainTimeoutSeconds * 1000)]);
      else await Promise.all([ftp.close(), sftp?.close()]);
      tls?.close();
      await webhook?.close(graceful ? 5000 : 0);
      await http?.close();
      process.off('SIGHUP', onHangup);
      accounts.close();
      s3.destroy();
      bruteForce.close();
      await redisState?.stop();
    })());
  let ftpAddress: AddressInfo;
  let ftpsImplicitAddress: AddressInfo | undefined;
  let sftpAddress: AddressInfo | undefined;
  try {
    if (http) {
      httpAddress = await http.listen(config.http.host, config.http.port);
      logger.info({ address: httpAddress.address, port: httpAddress.port }, 'HTTP (metrics, health) listening');
    }
    ftpAddress = await ftp.listen();
    ftpsImplicitAddress = await ftp.listenImplicit();
    sftpAddress = await sftp?.listen();
  } catch (err) {
    // A port in use: everything started so far stops, so the process can exit.
    await stop(false);
    throw err;
  }
  compactHeap();
  logger.info({ address: ftpAddress.address, explicitFtps: tls !== undefined, port: ftpAddress.port }, 'FTP listening');
  if (ftpsImplicitAddress) logger.info({ address: ftpsImplicitAddress.address, port: ftpsImplicitAddress.port }, 'implicit FTPS listening');
  if (sftpAddress) {
    logger.info({ address: sftpAddress.address, port: sftpAddress.port, hostKeys: hostKeys.map((k) => ({ file: k.file, type: k.type, fingerprint: k.fingerprint })) }, 'SFTP listening');
  }
  return {
    ftpAddress,
    ftpsImplicitAddress,
    sftpAddress,
    httpAddress,
    drain: () => stop(true),
    close: () => {
      // During a drain: cut it short.
      if (stopped) {
        void ftp.close();
        void sftp?.close();
      }
      return stop(false);
    },
  };
}
