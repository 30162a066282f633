import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Authenticator } from '../accounts/authenticator.js';
import type { AccountConfig, BridgeConfig } from '../config/schema.js';
import { redactSecrets } from '../config/redact.js';
import { FtpServer } from '../ftp/ftp-server.js';
import type { OperationEvent } from '../ftp/operations.js';
import { createS3Client } from '../storage/s3-client.js';
import { S3FileStore } from '../storage/s3-file-store.js';

export interface RunningBridge {
  /** The FTP control listener's address (its port is the real one when the config says 0). */
  ftpAddress: AddressInfo;
  close(): Promise<void>;
}

/** Composition root: builds every part from the config and starts the FTP listener. */
export async function startBridge(config: BridgeConfig, logger: Logger): Promise<RunningBridge> {
  logger.info({ config: redactSecrets(config) }, 'effective configuration');
  const s3 = createS3Client(config.s3);
  const authenticator = new Authenticator(config.accounts, config.ftp.loginFailureDelayMs);
  const storeFor = (account: AccountConfig) =>
    new S3FileStore({
      client: s3,
      bucket: account.bucket,
      prefix: account.prefix,
      partSizeBytes: config.s3.partSizeMiB * 1024 * 1024,
      queueSize: config.s3.queueSize,
      renameDirectoryMaxObjects: config.ftp.renameDirectoryMaxObjects,
    });
  const audit = logger.child({ component: 'audit' });
  const onOperation = (event: OperationEvent) => audit.info(event, 'operation');
  const ftp = new FtpServer({ ftp: config.ftp, authenticator, storeFor, logger, onOperation });
  const ftpAddress = await ftp.listen();
  logger.info({ address: ftpAddress.address, port: ftpAddress.port }, 'FTP listening');
  return {
    ftpAddress,
    async close() {
      await ftp.close();
      s3.destroy();
    },
  };
}
