import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/** The runtime tree, its SBOM, the deny list and the audit step of .ci/run (docs/supply-chain.md). */
const root = resolve(import.meta.dirname, '../..');
const work = mkdtempSync(join(tmpdir(), 'supply-chain-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface DenyEntry {
  name: string;
  below?: string;
  advisory: string | null;
  why: string;
}
const denyList = JSON.parse(readFileSync(join(root, 'infra/sbom-deny-list.json'), 'utf8')) as { deny: DenyEntry[] };
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, timeout: 120_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

/** A CycloneDX document listing `packages` (name@version) the way npm sbom does. */
function sbomOf(packages: string[]): string {
  const file = join(work, `sbom-${Math.random().toString(36).slice(2)}.json`);
  const components = packages.map((id) => {
    const at = id.lastIndexOf('@');
    const name = id.slice(0, at);
    const version = id.slice(at + 1);
    return { type: 'library', name, version, purl: `pkg:npm/${encodeURIComponent(name).replace('%2F', '/')}@${version}` };
  });
  writeFileSync(file, JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', components }));
  return file;
}
const directDependencies = Object.keys(pkg.dependencies).map((name) => `${name}@1.0.0`);

describe('runtime dependency tree', () => {
  it("package-lock.json links ftp-srv's ip, bunyan, moment and yargs to the stand-in, and lists no denied runtime package", () => {
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; dev?: boolean; link?: boolean; resolved?: string; name?: string }>;
    };
    const resolveFrom = (from: string, name: string): string | undefined => {
      for (let dir = from; ; dir = dir.replace(/\/?node_modules\/(@[^/]+\/)?[^/]+$/, '')) {
        const path = `${dir ? `${dir}/` : ''}node_modules/${name}`;
        if (lock.packages[path]) return path;
        if (!dir) return undefined;
      }
    };
    for (const name of ['ip', 'bunyan', 'moment', 'yargs']) {
      const path = resolveFrom('node_modules/ftp-srv', name);
      expect(path && lock.packages[path], name).toMatchObject({ link: true, resolved: 'stubs/unused-dependency' });
    }
    expect(lock.packages['stubs/unused-dependency']?.name).toBe('ftp-s3-bridge-unused-dependency');
    const runtime = Object.entries(lock.packages)
      .filter(([path, entry]) => path.includes('node_modules/') && !entry.dev && !entry.link)
      .map(([path, entry]) => ({ name: path.replace(/^.*node_modules\//, ''), version: entry.version ?? '' }));
    const denied = runtime.filter((p) => denyList.deny.some((d) => d.name === p.name && (!d.below || p.version.localeCompare(d.below, 'en', { numeric: true }) < 0)));
    expect(denied).toEqual([]);
    expect(runtime.find((p) => p.name === 'ftp-srv')).toBeDefined();
  });

  it('every deny-list entry says why, and names an advisory or is marked as policy (null)', () => {
    expect(denyList.deny.length).toBeGreaterThan(0);
    for (const entry of denyList.deny) {
      expect(entry.why.length, entry.name).toBeGreaterThan(20);
      if (entry.advisory !== null) expect(entry.advisory, entry.name).toMatch(/^GHSA-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}\b/);
    }
  });
});

describe('infra/sbom.mjs and infra/check-sbom.mjs', () => {
  it('the SBOM of the runtime tree lists every runtime package (the AWS SDK too, which `npm sbom --omit dev` drops) and passes the deny list', async () => {
    const out = join(work, 'runtime.cdx.json');
    const made = await run(['infra/sbom.mjs', out]);
    expect(made.code, made.stderr).toBe(0);
    const sbom = JSON.parse(readFileSync(out, 'utf8')) as { bomFormat: string; components: { purl: string }[]; metadata: { component: { name: string } } };
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.metadata.component.name).toBe('ftp-s3-bridge');
    const purls = sbom.components.map((c) => decodeURIComponent(c.purl));
    for (const name of ['@aws-sdk/client-s3', '@smithy/core', 'ftp-srv', 'lodash', 'bluebird', 'uuid', 'ftp-s3-bridge-unused-dependency']) {
      expect(purls.some((p) => p.startsWith(`pkg:npm/${name}@`)), name).toBe(true);
    }
    for (const name of ['ip', 'bunyan', 'moment', 'yargs', 'dtrace-provider', 'vitest', 's3rver', 'typescript']) {
      expect(purls.some((p) => p.startsWith(`pkg:npm/${name}@`)), name).toBe(false);
    }
    // Only this platform's binary of @node-rs/argon2, as npm installs.
    expect(purls.filter((p) => p.startsWith('pkg:npm/@node-rs/argon2-'))).toHaveLength(1);
    const checked = await run(['infra/check-sbom.mjs', out]);
    expect(checked.code, checked.stderr).toBe(0);
    expect(checked.stdout).toMatch(/none denied/);
  });

  it('fails on a denied package and names its advisory and why', async () => {
    const checked = await run(['infra/check-sbom.mjs', sbomOf([...directDependencies, 'ip@1.1.9', 'dtrace-provider@0.8.8'])]);
    expect(checked.code).toBe(1);
    expect(checked.stderr).toMatch(/denied: ip@1\.1\.9 \(GHSA-2p57-rm9w-gvfp.*SSRF/);
    expect(checked.stderr).toMatch(/denied: dtrace-provider@0\.8\.8 \(policy\): .*install script/);
  });

  it('denies uuid below 11.1.1 only', async () => {
    const old = await run(['infra/check-sbom.mjs', sbomOf([...directDependencies, 'uuid@3.4.0'])]);
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/denied: uuid@3\.4\.0 \(GHSA-w5hq-g745-h8pq/);
    const fixed = await run(['infra/check-sbom.mjs', sbomOf([...directDependencies, 'uuid@11.1.1'])]);
    expect(fixed.code, fixed.stderr).toBe(0);
  });

  it('fails on an SBOM that misses a runtime dependency (a cut-short SBOM passes no deny list)', async () => {
    const checked = await run(['infra/check-sbom.mjs', sbomOf(directDependencies.filter((d) => !d.startsWith('@aws-sdk/client-s3@')))]);
    expect(checked.code).toBe(1);
    expect(checked.stderr).toMatch(/missing: runtime dependency @aws-sdk\/client-s3/);
  });
});

describe('infra/npm-audit.mjs', () => {
  /** npm audit against a registry on loopback that answers the bulk advisory request with `answer`. */
  async function auditWith(answer: { status: number; advisories?: Record<string, unknown[]> }): Promise<Run & { posts: number }> {
    let posts = 0;
    const registry = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.method === 'POST' && req.url?.endsWith('/-/npm/v1/security/advisories/bulk')) {
          posts++;
          res.writeHead(answer.status, { 'content-type': 'application/json' });
          res.end(answer.status === 200 ? JSON.stringify(answer.advisories) : '');
          return;
        }
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((ready) => registry.listen(0, '127.0.0.1', ready));
    try {
      const { port } = registry.address() as AddressInfo;
      // A cache of its own: npm keeps audit answers in its cache.
      const cache = mkdtempSync(join(work, 'npm-cache-'));
      const result = await run(['infra/npm-audit.mjs', '60'], { npm_config_registry: `http://127.0.0.1:${port}/`, npm_config_cache: cache });
      return { ...result, posts };
    } finally {
      registry.close();
    }
  }
  const advisory = (severity: string) => ({
    lodash: [{ id: 1, url: 'https://github.com/advisories/GHSA-test', title: 'test advisory', severity, vulnerable_versions: '>=0.0.0', cwe: [], cvss: { score: 0, vectorString: null } }],
  });

  it('fails on a high advisory in the runtime tree', async () => {
    const result = await auditWith({ status: 200, advisories: advisory('high') });
    expect(result.posts).toBe(1);
    expect(result.code, result.stdout + result.stderr).toBe(1);
    expect(result.stdout).toMatch(/high\s+lodash .*test advisory/);
  });

  it('lists a moderate advisory and passes', async () => {
    const result = await auditWith({ status: 200, advisories: advisory('moderate') });
    expect(result.posts).toBe(1);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/moderate\s+lodash/);
  });

  it('passes, and says so, when the audit endpoint is not available', async () => {
    const result = await auditWith({ status: 405 });
    expect(result.posts).toBe(1);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(/audit endpoint is not available \(405.*deny-list\.json only/s);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const [build = '', runtime = ''] = dockerfile.split(/^FROM .* AS runtime$/m);
  const meta = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; license: string };

  it('copies stubs/ before npm ci (the overrides install from it) and into the runtime stage (node_modules links to it)', () => {
    expect(build.indexOf('COPY stubs/ ./stubs/')).toBeGreaterThan(-1);
    expect(build.indexOf('COPY stubs/ ./stubs/')).toBeLessThan(build.indexOf('RUN npm ci'));
    expect(runtime).toMatch(/^COPY --from=build \/app\/stubs \.\/stubs$/m);
  });

  it('writes and checks the SBOM after pruning, and ships it', () => {
    const prune = build.indexOf('npm prune --omit=dev');
    const sbom = build.indexOf('RUN node infra/sbom.mjs sbom.cdx.json && node infra/check-sbom.mjs sbom.cdx.json');
    expect(prune).toBeGreaterThan(-1);
    expect(sbom).toBeGreaterThan(prune);
    expect(runtime).toMatch(/^COPY --from=build \/app\/sbom\.cdx\.json \/usr\/share\/doc\/ftp-s3-bridge\/sbom\.cdx\.json$/m);
  });

  it("sets the OCI labels, with package.json's version and license", () => {
    const label = (key: string) => new RegExp(`org\\.opencontainers\\.image\\.${key}="([^"]*)"`).exec(runtime)?.[1];
    expect(label('source')).toBe('${SOURCE}');
    expect(label('version')).toBe('${VERSION}');
    expect(label('revision')).toBe('${REVISION}');
    expect(label('licenses')).toBe(meta.license);
    expect(/^ARG VERSION=(.*)$/m.exec(runtime)?.[1]).toBe(meta.version);
    expect(runtime).toMatch(/^ARG REVISION=/m);
    expect(runtime).toMatch(/^ARG SOURCE=https:\/\//m);
  });
});
