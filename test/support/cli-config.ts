import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BridgeConfigInput } from '../../src/config/schema.js';
import type { TestS3 } from './s3-backends.js';

type FtpSection = NonNullable<BridgeConfigInput['ftp']>;
type S3Section = NonNullable<BridgeConfigInput['s3']>;

/**
 * What a test configures beyond the defaults of {@link writeCliConfig}: `ftp` and `s3` are merged
 * key by key over the defaults (a given `ftp.passive` or `s3.credentials` replaces the default one
 * whole); every other section replaces its default.
 */
export type CliConfig = Omit<BridgeConfigInput, 'ftp' | 's3'> & { ftp?: FtpSection; s3?: S3Section };

/**
 * A random passive range of `count` ports on loopback (10000-29999), announced as 127.0.0.1. Every
 * port may go to one client address: a test's clients stand for many devices but share 127.0.0.1.
 */
export function passivePorts(count: number): NonNullable<FtpSection['passive']> {
  const portMin = 10000 + Math.floor(Math.random() * 2000) * 10;
  return { address: '127.0.0.1', portMin, portMax: portMin + count - 1, maxPerClient: count };
}

/**
 * Writes a config file for the bridge CLI (`node dist/cli/main.js --config <file>`) and returns its
 * path. Defaults: FTP on 127.0.0.1 with a free port and {@link passivePorts}(10), the test run's S3
 * (path-style, its credentials), no HTTP server. The file is JSON, which the YAML loader reads as is.
 *
 * @param s3 the test run's S3 (`inject('s3')`)
 * @param config the test's sections, see {@link CliConfig}
 * @param file where to write; default: `bridge.yaml` in a new temporary directory
 */
export function writeCliConfig(s3: TestS3, config: CliConfig, file?: string): string {
  const { ftp, s3: s3Overrides, ...rest } = config;
  const full: BridgeConfigInput = {
    ftp: { host: '127.0.0.1', port: 0, passive: passivePorts(10), ...ftp },
    s3: {
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      ...s3Overrides,
    },
    http: { enabled: false },
    ...rest,
  };
  const path = file ?? join(mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-cli-')), 'bridge.yaml');
  writeFileSync(path, JSON.stringify(full, null, 2) + '\n');
  return path;
}
