import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { startAccountServices } from '../../../src/server/account-services.js';

const HASH = '$2b$10$' + 'a'.repeat(53);

describe('account services', () => {
  it('counts reloads of the accounts file in ftp_accounts_reloads_total and keeps the accounts in force on a bad file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'services-'));
    const file = join(dir, 'accounts.json');
    writeFileSync(file, JSON.stringify([{ username: 'a', passwordHash: HASH, bucket: 'bucket-1' }]));
    const config = parseConfig({ s3: { endpoint: 'http://127.0.0.1:1' }, auth: { accountsFile: file, accountsReload: { pollSeconds: 3600 } } });
    const registry = new Registry();
    const client = new S3Client({ region: 'us-east-1' });
    const services = await startAccountServices({ config, logger: pino({ level: 'silent' }), defaultClient: client, registry });
    try {
      writeFileSync(file, JSON.stringify([{ username: 'a', passwordHash: HASH, bucket: 'bucket-1' }, { username: 'b', passwordHash: HASH, bucket: 'bucket-1' }]));
      expect(await services.reload()).toBe('applied');
      writeFileSync(file, '[{"username": "a"}]');
      expect(await services.reload()).toBe('rejected');
      expect(services.store.all().map((a) => a.username)).toEqual(['a', 'b']);
      const metric = await registry.getSingleMetricAsString('ftp_accounts_reloads_total');
      expect(metric).toContain('ftp_accounts_reloads_total{result="applied"} 1');
      expect(metric).toContain('ftp_accounts_reloads_total{result="rejected"} 1');
      expect(metric).toContain('ftp_accounts_reloads_total{result="added"} 1');
    } finally {
      services.close();
      client.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
