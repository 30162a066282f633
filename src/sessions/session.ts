import type { Logger } from 'pino';
import type { AccountConfig, Permission } from '../config/schema.js';
import { Permissions } from '../accounts/permissions.js';
import type { FileStore } from '../storage/object-store.js';
import { resolveVirtualPath } from '../storage/paths.js';
import { SessionError } from './errors.js';

/**
 * The state of one logged-in session (FTP or SFTP): who, where, and what it is allowed to touch.
 * `restOffset` and `renameFrom` are used by FTP only.
 */
export class Session {
  cwd = '/';
  /** Offset from the last REST; taken (and reset) by the next transfer command. */
  restOffset = 0;
  /** Set by RNFR, consumed by the RNTO that must follow it. */
  renameFrom: string | undefined;
  readonly permissions: Permissions;

  constructor(
    readonly account: AccountConfig,
    readonly store: FileStore,
    readonly log: Logger,
  ) {
    this.permissions = new Permissions(account.permissions);
  }

  /** Resolves a client path against the cwd, confined to the account root. */
  resolve(clientPath: string): string {
    return resolveVirtualPath(this.cwd, clientPath);
  }

  /** Throws PERMISSION_DENIED unless the account holds one of `permissions`. */
  require(...permissions: Permission[]): void {
    if (!this.permissions.hasAny(...permissions)) {
      throw new SessionError('PERMISSION_DENIED', 'Permission denied');
    }
  }

  takeRestOffset(): number {
    const offset = this.restOffset;
    this.restOffset = 0;
    return offset;
  }
}
