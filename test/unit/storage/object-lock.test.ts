import { describe, expect, it } from 'vitest';
import { objectLockParams, retainedError } from '../../../src/storage/object-lock.js';

const now = Date.parse('2026-01-01T00:00:00Z');

describe('object lock', () => {
  it('an object created now is retained `days` from now, and held when legalHold is set', () => {
    expect(objectLockParams({ retention: { mode: 'COMPLIANCE', days: 3 }, legalHold: true }, now)).toEqual({
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: new Date('2026-01-04T00:00:00Z'),
      ObjectLockLegalHoldStatus: 'ON',
    });
    expect(objectLockParams(undefined, now)).toEqual({});
    expect(objectLockParams({ legalHold: false }, now)).toEqual({});
  });

  it('refuses while the retention date is ahead or a legal hold is on; names the file and the date', () => {
    const until = new Date(now + 1000);
    expect(retainedError('/a.pdf', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: until }, now)?.message).toBe(
      '/a.pdf: retained until 2026-01-01T00:00:01.000Z',
    );
    expect(retainedError('/a.pdf', { ObjectLockMode: 'GOVERNANCE', ObjectLockRetainUntilDate: until }, now + 1000)).toBeUndefined();
    expect(retainedError('/a.pdf', { ObjectLockLegalHoldStatus: 'ON' }, now)?.message).toBe('/a.pdf: under legal hold');
    expect(retainedError('/a.pdf', { ObjectLockLegalHoldStatus: 'OFF' }, now)).toBeUndefined();
    expect(retainedError('/a.pdf', undefined, now)).toBeUndefined();
  });
});
