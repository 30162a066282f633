import { describe, expect, it } from 'vitest';
import { optsHash } from '../../../src/ftp/commands/hash.js';
import { featuresOf } from '../../../src/ftp/commands/index.js';
import type { Connection } from '../../../src/ftp/connection.js';
import { fakeConnection } from '../../support/fake-connection.js';

const hashLine = (conn?: Connection) => featuresOf(undefined, conn).filter((f) => f.startsWith('HASH '));
const connection = () => fakeConnection().connection;

describe('FEAT HASH line (draft-bryan-ftp-hash §3)', () => {
  it('marks SHA-256, the default, before OPTS HASH', () => {
    expect(hashLine()).toEqual(['HASH SHA-256*;SHA-1;SHA-512;MD5']);
    expect(hashLine(connection())).toEqual(['HASH SHA-256*;SHA-1;SHA-512;MD5']);
  });

  it("marks the algorithm OPTS HASH selected on that connection, and only there", () => {
    const conn = connection();
    const other = connection();
    expect(optsHash(conn, 'md5')).toEqual({ code: 200, message: 'MD5' });
    expect(hashLine(conn)).toEqual(['HASH SHA-256;SHA-1;SHA-512;MD5*']);
    expect(hashLine(other)).toEqual(['HASH SHA-256*;SHA-1;SHA-512;MD5']);
    expect(optsHash(conn, 'SHA-1').code).toBe(200);
    expect(hashLine(conn)).toEqual(['HASH SHA-256;SHA-1*;SHA-512;MD5']);
    // A refused OPTS HASH keeps the selection.
    expect(optsHash(conn, 'CRC32').code).toBe(501);
    expect(hashLine(conn)).toEqual(['HASH SHA-256;SHA-1*;SHA-512;MD5']);
  });
});
