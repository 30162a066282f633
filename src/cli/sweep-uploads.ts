import type { BridgeConfig } from '../config/schema.js';
import { createS3Client } from '../storage/s3-client.js';
import { parseDuration, sweepUploads } from '../storage/sweep.js';

/**
 * `ftp-s3-bridge sweep-uploads --config FILE --older-than DURATION`: aborts the incomplete multipart
 * uploads under every account's bucket and prefix initiated before now minus DURATION, and prints
 * `{"aborted": N}`.
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
  try {
    const targets = config.accounts.map((a) => ({ bucket: a.bucket, prefix: a.prefix }));
    const result = await sweepUploads(client, targets, new Date(Date.now() - ms));
    process.stdout.write(JSON.stringify(result) + '\n');
    return 0;
  } catch (err) {
    process.stderr.write(`sweep failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    client.destroy();
  }
}
