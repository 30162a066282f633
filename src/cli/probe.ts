import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { BridgeConfig } from '../config/schema.js';
import { startAccountServices, targetLabel } from '../server/account-services.js';
import { checksumInForce, checksumToProbe, probeChecksums, retainsByDefault, type ChecksumOutcome } from '../storage/checksum-probe.js';
import { objectLockProblem } from '../storage/object-lock.js';
import { createS3Client } from '../storage/s3-client.js';

/**
 * `ftp-s3-bridge check-config --probe`: what each bucket of the accounts (inline and from
 * `auth.accountsFile`), on its own S3 target, accepts. Per bucket, one small object under the first
 * account's prefix is written with each checksum algorithm (right and wrong values) and deleted
 * (not on a bucket that retains every object by default); the Object Lock configuration is read
 * for accounts with `retention` or `legalHold`. Per bucket, the algorithm the bridge would use
 * there (the same choice it makes at start). Exit 1 when a configured algorithm is refused or an
 * account's lock cannot work.
 */
export async function probeCommand(config: BridgeConfig, out: (line: string) => void): Promise<number> {
  const client = createS3Client(config.s3);
  const accounts = await startAccountServices({ config, logger: pino({ level: 'warn' }, pino.destination(2)), defaultClient: client }).catch(
    (err: unknown) => {
      client.destroy();
      throw err;
    },
  );
  const configured = config.s3.checksumAlgorithm;
  let failed = false;
  try {
    out(`s3.checksumAlgorithm: ${configured ?? 'default (SHA256 on AWS; with a custom endpoint, SHA256 where the store verifies it, else none)'}`);
    for (const target of accounts.targets()) {
      const buckets = new Map<string, (typeof target.accounts)[number]>();
      for (const account of target.accounts) if (!buckets.has(account.bucket)) buckets.set(account.bucket, account);
      for (const [bucket, first] of buckets) {
        out(`bucket ${bucket} (${targetLabel(first, config.s3)}):`);
        const endpoint = first.endpoint ?? config.s3.endpoint;
        const asked = checksumToProbe(configured, endpoint);
        let outcome: ChecksumOutcome | undefined;
        if (await retainsByDefault(target.client, bucket)) {
          out('  checksums: not probed (the bucket retains every new object by default)');
          outcome = { retains: true };
        } else {
          const key = `${first.prefix}.ftp-s3-bridge-probe-${randomBytes(6).toString('hex')}`;
          try {
            for (const p of await probeChecksums(target.client, bucket, key)) {
              out(`  checksum ${p.algorithm}: ${p.support}${p.error ? ` (${p.error})` : ''}`);
              if (p.algorithm === asked) outcome = { probe: p };
              if (p.algorithm === configured && p.support === 'rejected') failed = true;
            }
          } catch (err) {
            out(`  checksums: probe failed (${(err as { name?: string }).name ?? 'Error'})`);
            outcome = { failed: (err as { name?: string }).name ?? 'Error' };
            failed = true;
          }
        }
        const choice = checksumInForce(configured, endpoint, asked === undefined ? undefined : outcome);
        out(`  in force: ${choice.algorithm ?? 'none'} (${choice.message})`);
        for (const account of target.accounts.filter((a) => a.bucket === bucket && (a.retention || a.legalHold))) {
          const problem = choice.algorithm === undefined ? 'needs s3.checksumAlgorithm' : await objectLockProblem(target.client, bucket);
          out(`  Object Lock for ${account.username}: ${problem ?? 'enabled'}`);
          if (problem) failed = true;
        }
      }
    }
    return failed ? 1 : 0;
  } finally {
    accounts.close();
    client.destroy();
  }
}
