import type { Permission } from '../config/schema.js';

export type { Permission };

/** What an account may do; checked before any storage call. */
export class Permissions {
  private readonly granted: ReadonlySet<Permission>;
  constructor(granted: readonly Permission[]) {
    this.granted = new Set(granted);
  }
  has(permission: Permission): boolean {
    return this.granted.has(permission);
  }
  hasAny(...permissions: Permission[]): boolean {
    return permissions.some((p) => this.granted.has(p));
  }
}
