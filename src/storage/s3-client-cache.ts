import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { BridgeConfig } from '../config/schema.js';
import { createS3Client, type S3RequestInfo } from './s3-client.js';

/** What an account may set to reach another S3 target; omitted keys come from the `s3` section. */
export interface S3Target {
  endpoint?: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * One S3 client per distinct target (endpoint, region, credentials): accounts on the default
 * target share the bridge's client, and every partner on the same other store shares one, with
 * its connection pool. Clients live until `destroy()`.
 */
export class S3ClientCache {
  private readonly clients = new Map<string, S3Client>();
  private readonly shared: S3Client | undefined;

  constructor(
    private readonly base: BridgeConfig['s3'],
    private readonly onRequest?: (info: S3RequestInfo) => void,
    defaultClient?: S3Client,
  ) {
    this.shared = defaultClient;
    if (defaultClient) this.clients.set(this.keyOf({}), defaultClient);
  }

  get(target: S3Target): S3Client {
    const key = this.keyOf(target);
    let client = this.clients.get(key);
    if (!client) {
      client = createS3Client(this.configFor(target), this.onRequest);
      this.clients.set(key, client);
    }
    return client;
  }

  get size(): number {
    return this.clients.size;
  }

  private configFor(target: S3Target): BridgeConfig['s3'] {
    return {
      ...this.base,
      ...(target.endpoint !== undefined ? { endpoint: target.endpoint } : {}),
      ...(target.region !== undefined ? { region: target.region } : {}),
      ...(target.credentials !== undefined ? { credentials: target.credentials } : {}),
    };
  }

  /** The effective target, with the secret reduced to a hash (keys may end up in a heap dump). */
  private keyOf(target: S3Target): string {
    const c = this.configFor(target);
    const secret = c.credentials ? createHash('sha256').update(`${c.credentials.secretAccessKey}\0${c.credentials.sessionToken ?? ''}`).digest('hex') : '';
    return JSON.stringify([c.endpoint ?? '', c.region, c.credentials?.accessKeyId ?? '', secret]);
  }

  /** Destroys the clients this cache created (not the default client it was given). */
  destroy(): void {
    for (const client of this.clients.values()) if (client !== this.shared) client.destroy();
    this.clients.clear();
  }
}
