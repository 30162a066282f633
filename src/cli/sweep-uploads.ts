import { pino } from 'pino';
import type { BridgeConfig } from '../config/schema.js';
import { startAccountServices } from '../server/account-services.js';
import { createS3Client } from '../storage/s3-client.js';
import { parseDuration, SweepError } from '../storage/sweep.js';

/**
 * `ftp-s3-bridge sweep-uploads --config FILE --older-than DURATION`: aborts the incomplete multipart
 * uploads initiated before now minus DURATION under every account's bucket and prefix (inline and
 * from `auth.accountsFile`), each on the account's own S3 target, and prints `{"aborted": N}`. When some
 * bucket cannot be swept, the others still are: it prints `{"aborted": N, "failed": [...]}` and
 * exits 1.
 */
export async function sweepUploadsCommand(config: BridgeConfig, olderThan: string | undefined): Promise<number> {
  if (!olderThan) {
    process.stderr.write('--older-than DURATION is required (e.g. 24h)\n');
    return 2;
  }
  let ms: number;
  try {
    ms = parseDuration(olderThan);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const client = createS3Client(config.s3);
  // An invalid accounts file throws a ConfigError here (exit 2, one line per bad field).
  const accounts = await startAccountServices({ config, logger: pino({ level: 'warn' }, pino.destination(2)), defaultClient: client }).catch(
    (err: unknown) => {
      client.destroy();
      throw err;
    },
  );
  try {
    const result = await accounts.sweep(new Date(Date.now() - ms));
    process.stdout.write(JSON.stringify(result) + '\n');
    return 0;
  } catch (err) {
    if (err instanceof SweepError) process.stdout.write(JSON.stringify({ aborted: err.aborted, failed: err.failures }) + '\n');
    process.stderr.write(`sweep failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    accounts.close();
    client.destroy();
  }
}
