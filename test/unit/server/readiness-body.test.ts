import { describe, expect, it } from 'vitest';
import { readinessBody } from '../../../src/server/http.js';

const report = {
  ready: false,
  draining: false,
  buckets: [
    { bucket: 'uploads', ok: true },
    { bucket: 'partner-bucket', endpoint: 'https://s3.partner.example (AKIAPARTNER)', ok: false, error: 'NoSuchBucket (HTTP 404)' },
  ],
};

describe('readinessBody (/readyz)', () => {
  it('without details: ok/failed per named check, no bucket, endpoint, key id or error', () => {
    const body = readinessBody(report, false);
    expect(body).toEqual({ ready: false, draining: false, checks: { serving: 'ok', buckets: 'failed' } });
    expect(JSON.stringify(body)).not.toMatch(/uploads|partner|AKIA|404/);
    expect(readinessBody({ ...report, ready: true, buckets: [{ bucket: 'uploads', ok: true }] }, false).checks).toEqual({ serving: 'ok', buckets: 'ok' });
  });

  it('draining: serving failed, buckets not checked', () => {
    expect(readinessBody({ ready: false, draining: true, buckets: [] }, false)).toEqual({ ready: false, draining: true, checks: { serving: 'failed' } });
  });

  it('with details: the checks and every bucket as checked', () => {
    expect(readinessBody(report, true)).toEqual({ ready: false, draining: false, checks: { serving: 'ok', buckets: 'failed' }, buckets: report.buckets });
  });

  it('with scanning: a scanner check, ok/failed only; its error only with details', () => {
    const scanned = { ready: false, draining: false, buckets: [{ bucket: 'uploads', ok: true }], scanner: { ok: false, error: 'clamd unreachable: connect ENOENT /run/clamav/clamd.ctl' } };
    const body = readinessBody(scanned, false);
    expect(body).toEqual({ ready: false, draining: false, checks: { serving: 'ok', buckets: 'ok', scanner: 'failed' } });
    expect(JSON.stringify(body)).not.toMatch(/clamd|ENOENT/);
    expect(readinessBody(scanned, true)).toMatchObject({ checks: { scanner: 'failed' }, scanner: scanned.scanner });
  });
});
