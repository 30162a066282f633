import { mkdirSync } from 'node:fs';

export interface EmbeddedS3 {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  close(): Promise<void>;
}

/**
 * A local S3-compatible server (s3rver, a dev dependency) storing under `directory`, for the
 * zero-setup quick start. Not for production: no multipart abort, no UploadPartCopy.
 * s3rver needs Node's `--openssl-legacy-provider` for ListObjectsV2 paging (see cli/main.ts).
 */
export async function startEmbeddedS3(options: { directory: string; port?: number; buckets: string[] }): Promise<EmbeddedS3> {
  mkdirSync(options.directory, { recursive: true });
  let S3rver: new (opts: Record<string, unknown>) => { run(): Promise<{ port: number }>; close(): Promise<void> };
  try {
    S3rver = (await import('s3rver' as string)).default;
  } catch {
    throw new Error('the embedded S3 needs the dev dependency s3rver: run `npm ci` (not --omit=dev)');
  }
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    silent: true,
    directory: options.directory,
    configureBuckets: options.buckets.map((name) => ({ name, configs: [] })),
  });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    close: () => server.close(),
  };
}
