import type { Document } from 'yaml';

/**
 * A key that moved to another path. Its old path keeps working until `removedIn`, with one
 * deprecation warning per old path used; a config that sets both paths is refused.
 */
export interface MovedKey {
  from: string;
  to: string;
  removedIn: string;
}

/**
 * Every moved key, applied to the raw config (the file, environment overrides, objects handed to
 * parseConfig) before validation. Storage behaviour went from `ftp` to `s3`, next to the other
 * keys that govern how the file tree maps onto S3; the sources of accounts and their reload,
 * and quota measurement, went under `auth` next to `auth.hook`.
 */
export const MOVED_KEYS: readonly MovedKey[] = [
  { from: 'ftp.storeOntoDirectory', to: 's3.storeOntoDirectory', removedIn: '0.3.0' },
  { from: 'ftp.renameDirectoryMaxObjects', to: 's3.renameDirectoryMaxObjects', removedIn: '0.3.0' },
  { from: 'ftp.hashMaxStreamMiB', to: 's3.hashMaxStreamMiB', removedIn: '0.3.0' },
  { from: 'accountsFile', to: 'auth.accountsFile', removedIn: '0.3.0' },
  { from: 'accountsReload', to: 'auth.accountsReload', removedIn: '0.3.0' },
  { from: 'quotaRefreshSeconds', to: 'auth.quotaRefreshSeconds', removedIn: '0.3.0' },
];

/**
 * A key that no longer exists. It is ignored with one warning until `removedIn` (a config that
 * worked keeps starting), then refused like any unknown key.
 */
export interface RemovedKey {
  path: string;
  why: string;
  removedIn: string;
}

export const REMOVED_KEYS: readonly RemovedKey[] = [
  {
    path: 's3.persistMultipartDigests',
    why: 'multipart uploads carry S3-verified checksums (s3.checksumAlgorithm) instead of a second copy with digests',
    removedIn: '0.3.0',
  },
];

/** One old path that was used, and where (the config file's name, environment variable names). */
export interface Deprecation {
  from: string;
  to: string;
  sources: string[];
  /** "ftp.storeOntoDirectory is deprecated: use s3.storeOntoDirectory (in bridge.yaml; accepted until 0.3.0)" */
  message: string;
}

/** Collects the old paths used, one Deprecation per old path whatever the number of places. */
export class DeprecationLog {
  private readonly byPath = new Map<string, { key: MovedKey | RemovedKey; sources: string[] }>();

  add(key: MovedKey | RemovedKey, source: string): void {
    const path = 'from' in key ? key.from : key.path;
    const entry = this.byPath.get(path) ?? { key, sources: [] };
    if (!entry.sources.includes(source)) entry.sources.push(source);
    this.byPath.set(path, entry);
  }

  get list(): Deprecation[] {
    return [...this.byPath.values()].map(({ key, sources }) =>
      'from' in key
        ? {
            from: key.from,
            to: key.to,
            sources,
            message: `${key.from} is deprecated: use ${key.to} (in ${sources.join(', ')}; accepted until ${key.removedIn})`,
          }
        : {
            from: key.path,
            to: '',
            sources,
            message: `${key.path} is no longer used and is ignored: ${key.why} (in ${sources.join(', ')}; refused from ${key.removedIn})`,
          },
    );
  }
}

/** The operations a migration needs from a config tree (plain objects, or a YAML document that keeps its comments). */
interface Tree {
  has(path: string[]): boolean;
  /** Moves the value at `from` to `to`; a string when that cannot be done. */
  move(from: string[], to: string[]): string | undefined;
  remove(path: string[]): void;
}

/**
 * Moves every old path of `tree` to its new path. Returns one problem line per key set at both
 * paths (or that cannot be moved), and records each move in `log` under `source`.
 */
function migrateTree(tree: Tree, source: string, log: DeprecationLog): string[] {
  const problems: string[] = [];
  for (const key of MOVED_KEYS) {
    const from = key.from.split('.');
    const to = key.to.split('.');
    if (!tree.has(from)) continue;
    if (tree.has(to)) {
      problems.push(`${key.from}: moved to ${key.to}, and both are set (in ${source}): keep ${key.to} only`);
      continue;
    }
    const failed = tree.move(from, to);
    if (failed) problems.push(`${key.from}: cannot be moved to ${key.to} (in ${source}): ${failed}`);
    else log.add(key, source);
  }
  for (const key of REMOVED_KEYS) {
    const path = key.path.split('.');
    if (!tree.has(path)) continue;
    tree.remove(path);
    log.add(key, source);
  }
  return problems;
}

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Moves the old paths of a plain config object. The input is left untouched: a copy is returned
 * when anything moved.
 */
export function migrateObject(raw: unknown, source: string, log: DeprecationLog): { raw: unknown; problems: string[] } {
  if (!isMapping(raw)) return { raw, problems: [] };
  const at = (root: unknown, path: string[]): unknown =>
    path.reduce<unknown>((node, segment) => (isMapping(node) && Object.hasOwn(node, segment) ? node[segment] : undefined), root);
  const has = (root: unknown, path: string[]) => at(root, path) !== undefined;
  if (!MOVED_KEYS.some((k) => has(raw, k.from.split('.'))) && !REMOVED_KEYS.some((k) => has(raw, k.path.split('.')))) return { raw, problems: [] };
  const copy = structuredClone(raw);
  const problems = migrateTree(
    {
      has: (path) => has(copy, path),
      move(from, to) {
        let parent: Record<string, unknown> = copy;
        for (const segment of to.slice(0, -1)) {
          parent[segment] ??= {};
          const next = parent[segment];
          if (!isMapping(next)) return `${segment} is not a mapping`;
          parent = next;
        }
        const fromParent = at(copy, from.slice(0, -1)) as Record<string, unknown>;
        const name = from[from.length - 1] as string;
        parent[to[to.length - 1] as string] = fromParent[name];
        delete fromParent[name];
        return undefined;
      },
      remove(path) {
        delete (at(copy, path.slice(0, -1)) as Record<string, unknown>)[path[path.length - 1] as string];
      },
    },
    source,
    log,
  );
  return { raw: copy, problems };
}

/** Moves the old paths of a parsed YAML file in place, keeping its comments and layout where it can. */
export function migrateDocument(doc: Document, source: string, log: DeprecationLog): string[] {
  return migrateTree(
    {
      has: (path) => doc.hasIn(path),
      move(from, to) {
        try {
          doc.setIn(to, doc.getIn(from, true));
        } catch (err) {
          return (err as Error).message;
        }
        doc.deleteIn(from);
        return undefined;
      },
      remove: (path) => void doc.deleteIn(path),
    },
    source,
    log,
  );
}

/**
 * The new path segments of an environment override's segments when they start with an old path
 * (`normalise` makes segments comparable: `STORE_ONTO_DIRECTORY` and `storeOntoDirectory`).
 */
export function migrateSegments(segments: string[], normalise: (s: string) => string): { segments: string[]; moved?: MovedKey; removed?: RemovedKey } {
  for (const key of REMOVED_KEYS) {
    const path = key.path.split('.');
    if (segments.length >= path.length && path.every((s, i) => normalise(s) === normalise(segments[i] as string))) return { segments: [], removed: key };
  }
  for (const key of MOVED_KEYS) {
    const from = key.from.split('.');
    if (segments.length < from.length || !from.every((s, i) => normalise(s) === normalise(segments[i] as string))) continue;
    return { segments: [...key.to.split('.'), ...segments.slice(from.length)], moved: key };
  }
  return { segments };
}
