import { describe, expect, it } from 'vitest';
import { mergeTagging } from '../../../src/storage/scan.js';

describe('mergeTagging', () => {
  it("puts the scan's tags first and keeps the account's while S3's limit of 10 allows", () => {
    expect(mergeTagging({ scan: 'infected', signature: 'Eicar-Test-Signature' }, 'partner=acme&retention=7+years')).toBe(
      'scan=infected&signature=Eicar-Test-Signature&partner=acme&retention=7+years',
    );
    const ten = new URLSearchParams(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v'])).toString();
    const merged = new URLSearchParams(mergeTagging({ scan: 'unscanned' }, ten));
    expect(merged.size).toBe(10);
    expect(merged.get('scan')).toBe('unscanned');
  });

  it('an account tag named like a scan tag cannot override it', () => {
    expect(mergeTagging({ scan: 'unscanned' }, 'scan=clean')).toBe('scan=unscanned');
    expect(mergeTagging({}, undefined)).toBeUndefined();
  });
});
