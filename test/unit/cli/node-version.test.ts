import { describe, expect, it } from 'vitest';
import { nodeVersionProblem, REQUIRED_NODE_MAJOR } from '../../../src/cli/node-version.js';

describe('nodeVersionProblem', () => {
  it('names the required and the running version for anything older than Node.js 22', () => {
    expect(REQUIRED_NODE_MAJOR).toBe(22);
    for (const old of ['v20.20.2', 'v21.7.3', 'v18.0.0', 'v8.17.0']) {
      expect(nodeVersionProblem(old)).toBe(`ftp-s3-bridge needs Node.js >= 22 (this is ${old})`);
    }
  });

  it('accepts 22 and later, this test run included', () => {
    for (const ok of ['v22.0.0', 'v22.11.0', 'v24.22.3', 'v100.1.2']) expect(nodeVersionProblem(ok)).toBeUndefined();
    expect(nodeVersionProblem(process.version)).toBeUndefined();
  });

  it('a version it cannot read counts as too old', () => {
    expect(nodeVersionProblem('')).toMatch(/^ftp-s3-bridge needs Node\.js >= 22 \(this is \)$/);
    expect(nodeVersionProblem('unknown')).toBeDefined();
  });
});
