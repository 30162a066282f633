#!/usr/bin/env node
// Writes the CycloneDX SBOM of the runtime dependency tree: what `npm ci --omit=dev` installs on
// this platform, the tree the container image ships.
//   node infra/sbom.mjs OUT.cdx.json [PROJECT_DIR]    (PROJECT_DIR: this repository by default)
//
// It runs `npm sbom --omit dev --sbom-format cyclonedx --package-lock-only`, on a copy of
// package.json and package-lock.json without the development dependencies, because on the project
// as it is `--omit dev` also drops every runtime package that a development dependency shares
// (npm/cli#7909: 54 of the 113 runtime packages were left, the AWS SDK among the missing ones), and
// without `--package-lock-only` npm refuses a production install whose package.json names
// development dependencies that are not installed. Optional packages built for another platform
// (the @node-rs/argon2 binaries for other systems) are left out, as npm does not install them.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const out = process.argv[2];
if (!out) {
  console.error('usage: sbom.mjs OUT.cdx.json [PROJECT_DIR]');
  process.exit(2);
}
const root = resolve(process.argv[3] ?? resolve(import.meta.dirname, '..'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));

const libc = process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
/** npm's own rule (npm-install-checks): a list matches if it names the value, or only excludes others. */
const matches = (list, value) =>
  !list || list.includes(value) || (list.every((v) => v.startsWith('!')) && !list.includes(`!${value}`));
const forThisPlatform = (entry) =>
  matches(entry.os, process.platform) && matches(entry.cpu, process.arch) && matches(entry.libc, libc);

delete pkg.devDependencies;
delete lock.packages[''].devDependencies;
const links = [];
for (const [path, entry] of Object.entries(lock.packages)) {
  if (path === '') continue;
  if (entry.dev || (entry.optional && !forThisPlatform(entry))) delete lock.packages[path];
  else if (entry.link) links.push(entry.resolved);
}

// The project's name as the directory name: npm names the SBOM's root component after it.
const work = join(mkdtempSync(join(tmpdir(), 'sbom-')), pkg.name);
try {
  mkdirSync(work);
  writeFileSync(join(work, 'package.json'), JSON.stringify(pkg, null, 2));
  writeFileSync(join(work, 'package-lock.json'), JSON.stringify(lock, null, 2));
  // Local packages (the stand-ins of stubs/) are read from their directories.
  for (const target of new Set(links)) cpSync(join(root, target), join(work, target), { recursive: true });
  const sbom = execFileSync('npm', ['sbom', '--omit', 'dev', '--sbom-format', 'cyclonedx', '--package-lock-only'], {
    cwd: work,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const parsed = JSON.parse(sbom);
  mkdirSync(dirname(resolve(out)), { recursive: true });
  writeFileSync(out, `${JSON.stringify(parsed, null, 2)}\n`);
  console.log(`${out}: CycloneDX ${parsed.specVersion}, ${parsed.components?.length ?? 0} components`);
} finally {
  rmSync(dirname(work), { recursive: true, force: true });
}
