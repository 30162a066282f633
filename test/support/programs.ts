import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Fails at once, naming the Debian package, when a program the tests under test/system start is not
 * installed: otherwise the spawn fails with a bare ENOENT and the suite waits out its hook time-out.
 */
export function requireProgram(program: string, debianPackage: string): void {
  const candidates = program.includes('/') ? [program] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, program));
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return;
    } catch {
      // not here
    }
  }
  throw new Error(`${program} is not installed (Debian: apt-get install ${debianPackage}); npm run test:system needs it (CONTRIBUTING.md#tests)`);
}
