#!/usr/bin/env node
// Checks a CycloneDX SBOM of the runtime tree (infra/sbom.mjs) against the deny list:
//   node infra/check-sbom.mjs SBOM [DENY_LIST] [PACKAGE_JSON]
// It fails (exit 1) when the SBOM lists a denied package, and when it misses one of package.json's
// runtime dependencies: an SBOM cut short by a tool (npm/cli#7909) would otherwise pass any list.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const [sbomPath, denyPath = resolve(import.meta.dirname, 'sbom-deny-list.json'), pkgPath = resolve(import.meta.dirname, '../package.json')] =
  process.argv.slice(2);
if (!sbomPath) {
  console.error('usage: check-sbom.mjs SBOM [DENY_LIST] [PACKAGE_JSON]');
  process.exit(2);
}
const sbom = JSON.parse(readFileSync(sbomPath, 'utf8'));
const { deny } = JSON.parse(readFileSync(denyPath, 'utf8'));
const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'));
if (sbom.bomFormat !== 'CycloneDX' || !Array.isArray(sbom.components)) {
  console.error(`${sbomPath}: not a CycloneDX SBOM with components`);
  process.exit(1);
}

/** Name and version from the component's package URL (pkg:npm/%40scope/name@1.2.3), else its fields. */
function identify(component) {
  const purl = /^pkg:npm\/(.+)@([^@]+)$/.exec(component.purl ?? '');
  if (purl) return { name: decodeURIComponent(purl[1]), version: decodeURIComponent(purl[2]) };
  const name = component.group ? `${component.group}/${component.name}` : component.name;
  return { name, version: component.version ?? '' };
}

/** a < b for dotted numeric versions (a pre-release counts as its release: denied entries err on the safe side). */
function lower(a, b) {
  const pa = a.split(/[-+]/)[0].split('.').map(Number);
  const pb = b.split(/[-+]/)[0].split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] || 0) !== (pb[i] || 0)) return (pa[i] || 0) < (pb[i] || 0);
  return false;
}

const listed = sbom.components.map(identify);
const problems = [];
for (const { name, version } of listed) {
  for (const entry of deny) {
    if (entry.name === name && (!entry.below || lower(version, entry.below))) {
      problems.push(`denied: ${name}@${version} (${entry.advisory ?? 'policy'}): ${entry.why}`);
    }
  }
}
const names = new Set(listed.map((c) => c.name));
for (const dep of Object.keys(pkg.dependencies ?? {})) {
  if (!names.has(dep)) problems.push(`missing: runtime dependency ${dep} is not in the SBOM (an incomplete SBOM)`);
}
if (problems.length) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(
  `${sbomPath}: ${listed.length} components, all ${Object.keys(pkg.dependencies ?? {}).length} runtime dependencies listed, ` +
    `none denied (${deny.map((e) => (e.below ? `${e.name}<${e.below}` : e.name)).join(', ')})`,
);
