import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { sha256 } from '../support/bridge.js';
import { curl, RawFtp } from '../support/clients.js';
import { CliBridge, OPS_PASSWORD, OPS_USER } from '../support/ops-cli.js';

/** The value of one sample of a Prometheus text exposition, or undefined. */
function sample(metrics: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of metrics.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

let bridge: CliBridge | undefined;
afterEach(() => bridge?.kill());

describe('metrics and health endpoints', () => {
  it('/healthz, /readyz and /metrics count sessions, logins, transfers, bytes, S3 calls and errors', async () => {
    bridge = await CliBridge.start();
    const b = bridge;
    expect(await b.http('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    const ready = await b.http('/readyz');
    expect(ready.status).toBe(200);
    // Without http.readyzDetails: ok/failed per named check, no bucket name, endpoint or key id.
    expect(JSON.parse(ready.body)).toEqual({ ready: true, draining: false, checks: { serving: 'ok', buckets: 'ok' } });
    expect((await b.http('/nope')).status).toBe(404);

    const body = randomBytes(200_000);
    expect((await curl(['-T', '-', b.url('/m.bin')], body)).code).toBe(0);
    const down = await curl([b.url('/m.bin')]);
    expect(sha256(down.stdout)).toBe(sha256(body));
    const missing = await curl([b.url('/missing.bin')]);
    expect(missing.code).not.toBe(0);
    const bad = await curl([`ftp://${OPS_USER}:wrong@127.0.0.1:${b.ftpPort}/`]);
    expect(bad.code).not.toBe(0);
    // An open session shows in the gauge.
    const open = await RawFtp.connect(b.ftpPort);
    await open.login(OPS_USER, OPS_PASSWORD);

    const metrics = (await b.http('/metrics')).body;
    expect(sample(metrics, 'ftp_sessions_active')).toBe(1);
    expect(sample(metrics, 'ftp_logins_total', { result: 'ok' })).toBe(4);
    expect(sample(metrics, 'ftp_logins_total', { result: 'failed' })).toBe(1);
    expect(sample(metrics, 'ftp_transfers_total', { operation: 'STOR', result: 'ok' })).toBe(1);
    expect(sample(metrics, 'ftp_transfers_total', { operation: 'RETR', result: 'ok' })).toBe(1);
    expect(sample(metrics, 'ftp_transfer_bytes_total', { direction: 'in' })).toBe(body.length);
    expect(sample(metrics, 'ftp_transfer_bytes_total', { direction: 'out' })).toBe(body.length);
    expect(sample(metrics, 'ftp_transfer_duration_seconds_count', { operation: 'STOR', result: 'ok' })).toBe(1);
    expect(sample(metrics, 's3_requests_total', { operation: 'HeadBucket' })).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 's3_requests_total', { operation: 'PutObject' }) ?? sample(metrics, 's3_requests_total', { operation: 'CompleteMultipartUpload' })).toBeGreaterThanOrEqual(1);
    // The missing file was looked up and not found: an S3 error by operation and code.
    expect(metrics).toMatch(/^s3_request_errors_total\{operation="\w+",code="\w+"\} [1-9]/m);
    expect(sample(metrics, 'ftp_passive_ports', { state: 'free' })).toBe(10);
    expect(sample(metrics, 'ftp_passive_ports', { state: 'in_use' })).toBe(0);
    expect(sample(metrics, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(metrics, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);

    // A passive port held by a PASV (listening, not yet connected) shows as in use.
    expect((await open.command('PASV')).code).toBe(227);
    expect(sample((await b.http('/metrics')).body, 'ftp_passive_ports', { state: 'in_use' })).toBe(1);
    expect(sample((await b.http('/metrics')).body, 'ftp_passive_ports', { state: 'free' })).toBe(9);
    open.close();
  }, 60_000);

  it('counts aborted multipart uploads (backends that abort)', async () => {
    bridge = await CliBridge.start();
    const b = bridge;
    // Counted from here: the start-up checksum probe makes requests of its own (a multipart upload among them).
    const before = (await b.http('/metrics')).body;
    const delta = (metrics: string, name: string, labels?: Record<string, string>) => (sample(metrics, name, labels) ?? 0) - (sample(before, name, labels) ?? 0);
    const ftp = await RawFtp.connect(b.ftpPort);
    await ftp.login(OPS_USER, OPS_PASSWORD);
    await ftp.command('TYPE I');
    const data = await ftp.pasv();
    ftp.send('STOR cut.bin');
    expect((await ftp.reply()).code).toBe(150);
    await new Promise<void>((done) => data.write(randomBytes(11 * 1024 * 1024), () => done()));
    data.resetAndDestroy();
    expect((await ftp.reply(30_000)).code).toBeGreaterThanOrEqual(400);
    ftp.close();
    expect(await b.objectHash('cut.bin')).toBeUndefined();
    const metrics = (await b.http('/metrics')).body;
    expect(sample(metrics, 'ftp_transfers_total', { operation: 'STOR', result: 'error' })).toBe(1);
    expect(delta(metrics, 's3_requests_total', { operation: 'CreateMultipartUpload' })).toBe(1);
    if (inject('s3').capabilities.abortMultipartUpload) {
      expect(delta(metrics, 's3_multipart_uploads_aborted_total')).toBe(1);
    } else {
      // s3rver has no AbortMultipartUpload: the call is made and fails.
      expect(delta(metrics, 's3_requests_total', { operation: 'AbortMultipartUpload' })).toBe(1);
    }
  }, 60_000);

  it('/readyz is 503 when a configured bucket does not answer; only http.readyzDetails names the bucket', async () => {
    const base = await CliBridge.start();
    const missing = `missing-${Date.now().toString(36)}`;
    base.kill();
    const accounts = [
      { username: 'a', passwordHash: '$2b$10$' + 'x'.repeat(53), bucket: base.bucket },
      { username: 'b', passwordHash: '$2b$10$' + 'x'.repeat(53), bucket: missing },
    ];
    const s3 = inject('s3');
    bridge = await CliBridge.start({ accounts, http: { host: '127.0.0.1', port: 0, readinessCacheSeconds: 0 } });
    const terse = await bridge.http('/readyz');
    expect(terse.status).toBe(503);
    expect(JSON.parse(terse.body)).toEqual({ ready: false, draining: false, checks: { serving: 'ok', buckets: 'failed' } });
    for (const secret of [base.bucket, missing, s3.endpoint, s3.accessKeyId, 'HTTP 404']) expect(terse.body).not.toContain(secret);
    bridge.kill();

    bridge = await CliBridge.start({ accounts, http: { host: '127.0.0.1', port: 0, readinessCacheSeconds: 0, readyzDetails: true } });
    const ready = await bridge.http('/readyz');
    expect(ready.status).toBe(503);
    const report = JSON.parse(ready.body) as { ready: boolean; checks: unknown; buckets: { bucket: string; ok: boolean }[] };
    expect(report.ready).toBe(false);
    expect(report.checks).toEqual({ serving: 'ok', buckets: 'failed' });
    expect(report.buckets).toEqual(
      expect.arrayContaining([
        { bucket: base.bucket, ok: true },
        expect.objectContaining({ bucket: missing, ok: false }),
      ]),
    );
    expect((await bridge.http('/healthz')).status).toBe(200);
  }, 60_000);
});
