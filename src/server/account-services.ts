import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { AccountStore } from '../accounts/account-store.js';
import { AccountsFile, type ReloadOutcome } from '../accounts/accounts-file.js';
import { AuthHook } from '../accounts/auth-hook.js';
import { Authenticator } from '../accounts/authenticator.js';
import { QuotaTracker } from '../accounts/quota.js';
import type { SharedState } from '../cluster/shared-state.js';
import { objectParamsFor } from '../accounts/s3-policy.js';
import type { AccountConfig, BridgeConfig } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { Bandwidth } from '../sessions/bandwidth.js';
import type { OperationEvent } from '../sessions/operations.js';
import { TransferPolicy } from '../sessions/transfer-policy.js';
import { S3ClientCache } from '../storage/s3-client-cache.js';
import type { S3RequestInfo } from '../storage/s3-client.js';
import { measurePrefix } from '../storage/s3-usage.js';
import { sweepTargets, type SweepGroup, type SweepResult } from '../storage/sweep.js';
import { redactUrl } from '../config/redact.js';
import type { ReadinessTarget } from './health.js';

/** The S3 target of an account: its own endpoint/region/credentials over the `s3` section's. */
export const targetOf = (a: AccountConfig) => ({ endpoint: a.endpoint, region: a.region, credentials: a.credentials });

/** Names an account's own S3 target in reports and logs: endpoint, region, access key id (never the secret). */
export function targetLabel(a: AccountConfig, s3: BridgeConfig['s3']): string {
  const endpoint = a.endpoint ?? s3.endpoint;
  return [endpoint ? redactUrl(endpoint) : 'aws', a.region ?? s3.region, ...(a.credentials ? [a.credentials.accessKeyId] : [])].join(' ');
}

/** One S3 target (one cached client) and the accounts in force on it. */
export interface AccountTarget {
  client: S3Client;
  /** Undefined for the `s3` section's own target; see {@link targetLabel}. */
  label: string | undefined;
  accounts: AccountConfig[];
}

/** The accounts grouped by S3 target, the `s3` section's first. */
function accountTargets(accounts: readonly AccountConfig[], clients: S3ClientCache, s3: BridgeConfig['s3']): AccountTarget[] {
  const byClient = new Map<S3Client, AccountTarget>();
  const defaultClient = clients.get({});
  byClient.set(defaultClient, { client: defaultClient, label: undefined, accounts: [] });
  for (const account of accounts) {
    const client = clients.get(targetOf(account));
    let group = byClient.get(client);
    if (!group) byClient.set(client, (group = { client, label: targetLabel(account, s3), accounts: [] }));
    group.accounts.push(account);
  }
  return [...byClient.values()].filter((g) => g.accounts.length);
}

/** What to sweep: each target's buckets and prefixes. */
const sweepGroups = (targets: AccountTarget[]): SweepGroup[] =>
  targets.map((t) => ({ client: t.client, label: t.label ?? '', targets: t.accounts.map((a) => ({ bucket: a.bucket, prefix: a.prefix })) }));

export interface AccountServices {
  store: AccountStore;
  authenticator: Authenticator;
  clients: S3ClientCache;
  transferPolicy: TransferPolicy;
  /** Per-session object parameters (policy, uploader metadata) for S3FileStore. */
  objectParams(account: AccountConfig, session: { clientIp: string; protocol?: 'ftp' | 'sftp' }): ReturnType<typeof objectParamsFor>;
  /** Keeps quota usage current from the bridge's own operations. */
  onOperation(event: OperationEvent): void;
  /** Closes the sessions of removed accounts (with `auth.accountsReload.closeRemovedSessions`). */
  onRemoved(close: (usernames: ReadonlySet<string>) => number): void;
  /** Re-reads the accounts file now (SIGHUP). */
  reload(): Promise<ReloadOutcome | undefined>;
  /** The accounts in force now (inline and from the file), grouped by S3 target. */
  targets(): AccountTarget[];
  /** Aborts the incomplete multipart uploads older than `olderThan` under every account in force, on its own target. */
  sweep(olderThan: Date): Promise<SweepResult>;
  /** The buckets /readyz checks: those of every account in force, each on its own target. */
  readinessTargets(): ReadinessTarget[];
  close(): void;
}

export interface AccountServicesOptions {
  config: BridgeConfig;
  logger: Logger;
  defaultClient: S3Client;
  onS3Request?: (info: S3RequestInfo) => void;
  /** Where the reload counter goes (the bridge's metrics registry). */
  registry?: Registry;
  /** State shared by the replicas (cluster.redis): quota reservations and the global bandwidth caps count cluster-wide. */
  shared?: SharedState;
}

/** Accounts and their policies: the live store and its file, the auth hook, quotas, bandwidth, S3 targets. */
export async function startAccountServices(options: AccountServicesOptions): Promise<AccountServices> {
  const { config, logger } = options;
  const store = new AccountStore(config.accounts);
  const reloads = options.registry
    ? new Counter({
        name: 'ftp_accounts_reloads_total',
        help: 'Reloads of the accounts file by result (applied, rejected) and accounts added, changed, removed',
        labelNames: ['result'],
        registers: [options.registry],
      })
    : undefined;
  const file = config.auth.accountsFile
    ? new AccountsFile({
        path: config.auth.accountsFile,
        store,
        logger: logger.child({ component: 'accounts' }),
        pollMs: config.auth.accountsReload.pollSeconds * 1000,
        onReload: (outcome, diff) => {
          if (outcome === 'unchanged') return;
          reloads?.inc({ result: outcome });
          if (diff) {
            reloads?.inc({ result: 'added' }, diff.added.length);
            reloads?.inc({ result: 'changed' }, diff.changed.length);
            reloads?.inc({ result: 'removed' }, diff.removed.length);
          }
        },
      })
    : undefined;
  try {
    await file?.start();
  } catch (err) {
    const problems = (err as { problems?: string[] }).problems;
    if (problems) throw new ConfigError(problems);
    throw err;
  }
  const hook = config.auth.hook ? new AuthHook(config.auth.hook) : undefined;
  const authenticator = new Authenticator(store, config.ftp.loginFailureDelayMs, hook);
  const clients = new S3ClientCache(config.s3, options.onS3Request, options.defaultClient);
  const quota = new QuotaTracker(
    (account, watching) => measurePrefix(clients.get(targetOf(account)), account.bucket, account.prefix, watching),
    config.auth.quotaRefreshSeconds * 1000,
    logger.child({ component: 'quota' }),
    options.shared,
  );
  const bandwidth = new Bandwidth(config.ftp.bandwidth, options.shared);
  const transferPolicy = new TransferPolicy(bandwidth, quota);
  const targets = () => accountTargets(store.all(), clients, config.s3);
  return {
    store,
    authenticator,
    clients,
    transferPolicy,
    objectParams: (account, session) => objectParamsFor(account, session, config.s3.uploaderMetadata),
    onOperation(event) {
      // Uploads count through their quota reservation (TransferPolicy); other changes cannot be sized.
      if (event.result !== 'ok' || ['STOR', 'STOU', 'APPE', 'RETR'].includes(event.op)) return;
      quota.markStale(event.bucket, event.key);
    },
    onRemoved(close) {
      if (!config.auth.accountsReload.closeRemovedSessions) return;
      store.on('change', (diff) => {
        if (!diff.removed.length) return;
        const closed = close(new Set(diff.removed));
        if (closed) logger.info({ event: 'accounts-reload', removed: diff.removed, sessionsClosed: closed }, 'closed the sessions of removed accounts');
      });
    },
    reload: async () => file?.reload('SIGHUP'),
    targets,
    sweep: (olderThan) => sweepTargets(sweepGroups(targets()), olderThan),
    readinessTargets: () =>
      targets().flatMap((t) =>
        t.accounts.map((a) => ({
          client: t.client,
          bucket: a.bucket,
          ...(t.label !== undefined ? { endpoint: t.label } : {}),
          ...(a.retention || a.legalHold ? { objectLock: true } : {}),
        })),
      ),
    close() {
      file?.close();
      bandwidth.close();
      // The default client belongs to the bridge, which destroys it.
      clients.destroy();
    },
  };
}
