import type { TestProject } from 'vitest/node';
import { startBackend, type TestS3 } from './s3-backends.js';

declare module 'vitest' {
  export interface ProvidedContext {
    s3: TestS3;
  }
}

/** Starts the real S3 server (S3_TEST_BACKEND: s3rver, swift or minio) once for the whole run. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const backend = await startBackend(process.env.S3_TEST_BACKEND ?? 's3rver');
  project.provide('s3', backend.s3);
  return () => backend.stop();
}
