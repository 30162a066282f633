/**
 * The CLI's first import: on a Node.js too old for the bridge it exits 2 with one line, before any
 * other module runs. Older versions would start and then fail at the first upload
 * (`ArrayBuffer.prototype.transfer`, src/storage/free-buffer.ts, arrived in Node.js 22). This module
 * imports nothing, so nothing else is evaluated before the check.
 */

/** The oldest Node.js major version the bridge runs on (as package.json `engines` says). */
export const REQUIRED_NODE_MAJOR = 22;

/** The one line to print for `version` (as `process.version`: "v20.20.2"), or undefined when it is recent enough. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (major >= REQUIRED_NODE_MAJOR) return undefined;
  return `ftp-s3-bridge needs Node.js >= ${REQUIRED_NODE_MAJOR} (this is ${version})`;
}

const problem = nodeVersionProblem(process.version);
if (problem !== undefined) {
  process.stderr.write(problem + '\n');
  process.exit(2);
}
