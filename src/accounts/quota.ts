import { Transform, type TransformCallback } from 'node:stream';
import type { Logger } from 'pino';
import { SharedQuotaLedger, type LeaseRequest, type LeaseResult, type SharedQuotaEntry } from '../cluster/quota-ledger.js';
import type { SharedState } from '../cluster/shared-state.js';
import type { AccountConfig } from '../config/schema.js';
import { StorageError } from '../storage/errors.js';
import type { MeasuredUsage, Usage } from '../storage/s3-usage.js';

export type { MeasuredUsage, Usage };

/**
 * Measures what an account's bucket/prefix holds now (one paged ListObjectsV2), with the ETags
 * it listed for the keys `watching` selects (the keys of uploads in flight or just committed).
 */
export type MeasureUsage = (account: AccountConfig, watching: (key: string) => boolean) => Promise<MeasuredUsage>;

/** An upload this process committed that the measurement in force may not include. */
interface Commit {
  key: string;
  etag: string | undefined;
  bytes: number;
  objects: number;
  /** Event number (see QuotaTracker.events). */
  seq: number;
}

interface Entry {
  bucket: string;
  prefix: string;
  /** What the last measurement listed; undefined before the first. */
  measured: Usage | undefined;
  measuredAt: number;
  /** The event number when that measurement started: later events may be missing from it. */
  measuredSince: number;
  /** Event number of the last removal, rename or other change the bridge cannot size. */
  changedAt: number;
  /** Own commits on top of `measured`: the sum, and those recorded during a measurement (it may have missed them). */
  commits: Commit[];
  committedOnTop: Usage;
  /** Uploads in flight against this prefix's quota, and the sum of what they reserved. */
  reservations: Set<Reservation>;
  reserved: Usage;
  /** Keys of `commits` and `reservations` (with counts): their ETags are looked for when measuring. */
  watched: Map<string, number>;
  measuring: Promise<void> | undefined;
}

/**
 * What a running upload holds of its account's quota. The upload feeds it every chunk it receives
 * before passing the chunk on ({@link reserveAsReceived}); then exactly one of commit and release.
 */
export interface UploadReservation {
  /** Bytes received so far (for an append: the appended bytes). */
  readonly bytes: number;
  /**
   * Takes `n` more bytes; false (and nothing taken) when they would cross maxBytes. A promise when
   * the answer needs the shared ledger (cluster.redis: the upload's lease is used up).
   */
  grow(n: number): boolean | Promise<boolean>;
  /** The upload committed an object with `etag`: what it reserved becomes the account's usage. */
  commit(etag: string | undefined): void;
  /** The upload failed or was aborted: what it reserved is free again. No-op after commit. */
  release(): void;
}

export interface ReserveOptions {
  /** The S3 key the upload commits. */
  key: string;
  /** The size announced with ALLO: refused at once when it cannot fit. */
  size?: number;
  /** Whether the upload appends to the file (APPE, REST n + STOR). */
  append?: boolean;
  /** Whether the upload replaces an existing file (then it adds no object). */
  replacesObject?: () => Promise<boolean>;
}

const normalEtag = (etag: string | undefined) => etag?.replace(/"/g, '');

/**
 * Quota usage per bucket/prefix, as a ledger: usage measured from S3 (cached, measured again after
 * `refreshMs` or after a change the bridge cannot size: deletes, renames), the uploads this process
 * committed since, and the bytes and object slots its running uploads reserved. An upload takes an
 * object slot when it starts (none when it is known to replace a file: asked at maxObjects and for
 * appends; otherwise an overwrite counts as a new object until the next measurement) and its bytes
 * as they arrive; the chunk that would cross maxBytes is refused, so uploads running in parallel in
 * one process never commit more than the quota together.
 *
 * A measurement can race a commit: the listing may or may not hold the new object. The commits
 * after the measurement started, and the uploads in flight, are matched by key and ETag against
 * what the listing saw: counted once, never twice, never forgotten. (An ETag that changes after the
 * commit, e.g. by digest persistence copying a multipart object onto itself, counts the object
 * twice until the next measurement: the conservative side.)
 *
 * With `cluster.redis` (a {@link SharedState} that is available) the decisions are the shared
 * ledger's (cluster/quota-ledger.ts): the usage measured by any replica, the commits of every
 * replica and the reservations of the live ones count; an upload leases its bytes in blocks and
 * grows within its lease without a round trip. This process's own ledger is kept all the same and
 * decides whenever Redis is unavailable: then the bound is per replica (docs/accounts.md#quotas).
 * A reservation taken on the process's own ledger stays there until it settles.
 */
export class QuotaTracker {
  private readonly entries = new Map<string, Entry>();
  /** Numbers commits and changes, to tell which ones a measurement may have missed. */
  private events = 0;
  private readonly ledger: SharedQuotaLedger | undefined;

  constructor(
    private readonly measure: MeasureUsage,
    private readonly refreshMs: number,
    private readonly logger?: Logger,
    shared?: SharedState,
  ) {
    this.ledger = shared ? new SharedQuotaLedger(shared) : undefined;
  }

  /** Committed usage of an account's prefix (measured, plus own commits since): from the cache when fresh. */
  async usage(account: AccountConfig): Promise<Usage> {
    return committedOf(await this.current(account));
  }

  /**
   * Starts an upload: refused (STORAGE_FULL) when the account is at a limit, counting the uploads in
   * flight, or when the announced size cannot fit; otherwise it holds an object slot (unless it
   * replaces a file) and then takes its bytes as they arrive.
   */
  async reserve(account: AccountConfig, options: ReserveOptions): Promise<UploadReservation> {
    const quota = account.quota;
    if (!quota || (quota.maxBytes === undefined && quota.maxObjects === undefined)) {
      return new Reservation(this, account, options.key, undefined, undefined, 1);
    }
    if (this.ledger?.available()) {
      const reservation = await this.reserveShared(account, quota, options);
      if (reservation) return reservation;
    }
    const entry = await this.current(account);
    let replaces: boolean | undefined;
    if (options.append && quota.maxObjects !== undefined) replaces = (await options.replacesObject?.()) ?? false;
    let refusal = this.refusal(entry, quota, options.size, replaces ?? false);
    if (refusal === 'objects' && replaces === undefined && options.replacesObject) {
      replaces = await options.replacesObject();
      refusal = this.refusal(entry, quota, options.size, replaces);
    }
    // From the last check on, nothing awaits: the check and the reservation are one step.
    if (refusal) {
      this.logger?.info({ event: 'quota', user: account.username, usage: committedOf(entry), reserved: entry.reserved, quota, why: refusal }, 'upload refused: quota');
      throw new StorageError('STORAGE_FULL', `Quota exceeded (${refusal})`);
    }
    return this.track(new Reservation(this, account, options.key, entry, quota.maxBytes, replaces ? 0 : 1, this.sharedEntryOf(account)));
  }

  /** Adds a reservation to its local entry (which counts it whichever ledger decides). */
  private track(reservation: Reservation): Reservation {
    const entry = reservation.entry as Entry;
    entry.reservations.add(reservation);
    entry.reserved.objects += reservation.objects;
    watch(entry, reservation.key, 1);
    return reservation;
  }

  /** The shared ledger decides: a reservation, a refusal (thrown), or undefined when Redis is unavailable. */
  private async reserveShared(account: AccountConfig, quota: NonNullable<AccountConfig['quota']>, options: ReserveOptions): Promise<Reservation | undefined> {
    const shared = this.sharedEntryOf(account) as SharedQuotaEntry;
    let replaces: boolean | undefined;
    if (options.append && quota.maxObjects !== undefined) replaces = (await options.replacesObject?.()) ?? false;
    const ask = (objects: 0 | 1) => this.lease(account, shared, { need: 0, objects, size: options.size, limits: quota, refreshMs: this.refreshMs });
    let result = await ask(replaces ? 0 : 1);
    if (result && 'refused' in result && result.refused === 'objects' && replaces === undefined && options.replacesObject) {
      replaces = await options.replacesObject();
      if (replaces) result = await ask(0);
    }
    if (!result) return undefined;
    if ('refused' in result) {
      this.logger?.info({ event: 'quota', user: account.username, usage: result.usage, quota, why: result.refused, shared: true }, 'upload refused: quota');
      throw new StorageError('STORAGE_FULL', `Quota exceeded (${result.refused})`);
    }
    const reservation = new Reservation(this, account, options.key, this.entryFor(account), quota.maxBytes, replaces ? 0 : 1, shared);
    reservation.decidedShared = true;
    reservation.leased = result.granted;
    reservation.sharedObjects = reservation.objects;
    return this.track(reservation);
  }

  /**
   * Asks the shared ledger, measuring into it first when it has no usable measurement (then once
   * more, taking the fresh one whatever its age). Undefined: Redis is unavailable.
   */
  private async lease(account: AccountConfig, shared: SharedQuotaEntry, request: LeaseRequest): Promise<Exclude<LeaseResult, 'measure'> | undefined> {
    const first = await shared.lease(request);
    if (first !== 'measure') return first;
    if (!(await shared.measure(() => this.measure(account, () => false)))) return undefined;
    const second = await shared.lease({ ...request, refreshMs: undefined });
    return second === 'measure' ? undefined : second;
  }

  /** @internal Reservation.grow beyond its lease: more from the shared ledger, or this process's decision when Redis is unavailable. */
  async topUp(reservation: Reservation, n: number): Promise<boolean> {
    const shared = reservation.shared as SharedQuotaEntry;
    const limits = reservation.account.quota ?? {};
    let result: Exclude<LeaseResult, 'measure'> | undefined;
    try {
      result = this.ledger?.available() ? await this.lease(reservation.account, shared, { need: reservation.bytes + n - reservation.leased, objects: 0, limits }) : undefined;
    } catch {
      result = undefined; // a failed measurement: decide locally, as when Redis is down
    }
    if (result && 'granted' in result) {
      // Settled while asking: what was just granted goes back at once.
      if (reservation.settledAlready) shared.settle(result.granted, 0);
      else reservation.leased += result.granted;
    }
    if (reservation.settledAlready) return false;
    if (result) return 'granted' in result;
    const entry = await this.current(reservation.account).catch(() => reservation.entry as Entry);
    return this.fits(entry, reservation.maxBytes, n);
  }

  /** Something under `bucket/key` was removed or renamed: measure again before the next decision. */
  markStale(bucket: string, key: string): void {
    this.ledger?.markStale(bucket, key);
    const seq = ++this.events;
    for (const entry of this.entriesOf(bucket, key)) entry.changedAt = seq;
  }

  /** @internal Reservation.grow: whether `n` more bytes fit next to the committed usage and every reservation. */
  fits(entry: Entry, maxBytes: number | undefined, n: number): boolean {
    return maxBytes === undefined || committedOf(entry).bytes + entry.reserved.bytes + n <= maxBytes;
  }

  /** @internal Reservation.commit (with the committed object's ETag) and release (`committed` undefined). */
  settle(reservation: Reservation, committed: { etag: string | undefined } | undefined): void {
    const { entry } = reservation;
    // The shared ledger learns of every commit, also of uploads decided locally during an outage.
    reservation.shared?.settle(reservation.leased, reservation.sharedObjects, committed ? { bytes: reservation.bytes, objects: reservation.objects } : undefined);
    if (entry) {
      entry.reservations.delete(reservation);
      entry.reserved.bytes -= reservation.bytes;
      entry.reserved.objects -= reservation.objects;
      watch(entry, reservation.key, -1);
    }
    if (!committed) return;
    const commit: Commit = { key: reservation.key, etag: normalEtag(committed.etag), bytes: reservation.bytes, objects: reservation.objects, seq: ++this.events };
    for (const e of this.entriesOf(reservation.bucket, reservation.key)) {
      if (!e.measured && !e.measuring) continue;
      // The measurement in force listed this very object (it finished after the S3 commit, before this call).
      if (e === entry && commit.etag !== undefined && reservation.listedEtag === commit.etag) continue;
      e.committedOnTop.bytes += commit.bytes;
      e.committedOnTop.objects += commit.objects;
      // With no measurement running, the next one starts later and includes it: a sum is enough
      // (which keeps an entry that is rarely measured from collecting every commit under it).
      if (!e.measuring) continue;
      e.commits.push(commit);
      watch(e, commit.key, 1);
    }
  }

  /** Why an upload may not start now (undefined: it may). */
  private refusal(entry: Entry, quota: NonNullable<AccountConfig['quota']>, size: number | undefined, replaces: boolean): string | undefined {
    const committed = committedOf(entry);
    if (quota.maxObjects !== undefined && !replaces && committed.objects + entry.reserved.objects >= quota.maxObjects) return 'objects';
    if (quota.maxBytes === undefined) return undefined;
    const remaining = quota.maxBytes - committed.bytes - entry.reserved.bytes;
    if (remaining <= 0) return 'bytes';
    if (size !== undefined && size > remaining) return 'announced size';
    return undefined;
  }

  /** The account's entry, measured again first when it is missing, old or stale. */
  private async current(account: AccountConfig): Promise<Entry> {
    const entry = this.entryFor(account);
    const fresh = entry.measured && entry.changedAt <= entry.measuredSince && Date.now() - entry.measuredAt < this.refreshMs;
    if (fresh) return entry;
    entry.measuring ??= this.measureInto(account, entry).finally(() => (entry.measuring = undefined));
    await entry.measuring;
    return entry;
  }

  private async measureInto(account: AccountConfig, entry: Entry): Promise<void> {
    const since = this.events;
    const listed = await this.measure(account, (key) => entry.watched.has(key));
    const seen = (key: string) => normalEtag(listed.etags?.get(key));
    entry.measured = { bytes: listed.bytes, objects: listed.objects };
    entry.measuredAt = Date.now();
    entry.measuredSince = since;
    // Commits from before the listing started are in it (those not in `commits` all are); later
    // ones only if it saw their version.
    const kept: Commit[] = [];
    for (const c of entry.commits) {
      if (c.seq > since && !(c.etag !== undefined && seen(c.key) === c.etag)) kept.push(c);
      else watch(entry, c.key, -1);
    }
    entry.commits = kept;
    entry.committedOnTop = kept.reduce((sum, c) => ({ bytes: sum.bytes + c.bytes, objects: sum.objects + c.objects }), { bytes: 0, objects: 0 });
    for (const r of entry.reservations) r.listedEtag = seen(r.key);
  }

  private entriesOf(bucket: string, key: string): Entry[] {
    return [...this.entries.values()].filter((e) => e.bucket === bucket && key.startsWith(e.prefix));
  }

  private sharedEntryOf(account: AccountConfig): SharedQuotaEntry | undefined {
    return this.ledger?.entry(account.endpoint ?? '', account.bucket, account.prefix);
  }

  private entryFor(account: AccountConfig): Entry {
    const id = JSON.stringify([account.endpoint ?? '', account.bucket, account.prefix]);
    let entry = this.entries.get(id);
    if (!entry) {
      entry = {
        bucket: account.bucket,
        prefix: account.prefix,
        measured: undefined,
        measuredAt: 0,
        measuredSince: 0,
        changedAt: 0,
        commits: [],
        committedOnTop: { bytes: 0, objects: 0 },
        reservations: new Set(),
        reserved: { bytes: 0, objects: 0 },
        watched: new Map(),
        measuring: undefined,
      };
      this.entries.set(id, entry);
    }
    return entry;
  }
}

function committedOf(entry: Entry): Usage {
  const measured = entry.measured ?? { bytes: 0, objects: 0 };
  return { bytes: measured.bytes + entry.committedOnTop.bytes, objects: measured.objects + entry.committedOnTop.objects };
}

function watch(entry: Entry, key: string, delta: 1 | -1): void {
  const n = (entry.watched.get(key) ?? 0) + delta;
  if (n > 0) entry.watched.set(key, n);
  else entry.watched.delete(key);
}

class Reservation implements UploadReservation {
  bytes = 0;
  /** The ETag the measurement in force listed under `key` (undefined: not listed, or not looked at). */
  listedEtag: string | undefined;
  /** Bytes the shared ledger granted this upload (it grows within them without asking). */
  leased = 0;
  /** The object slot held in the shared ledger. */
  sharedObjects = 0;
  /** Whether the shared ledger admitted this upload (then it decides its bytes while Redis is available). */
  decidedShared = false;
  private settled = false;
  readonly bucket: string;

  constructor(
    private readonly tracker: QuotaTracker,
    readonly account: AccountConfig,
    readonly key: string,
    /** The entry whose quota this upload counts against; undefined for an account without a quota. */
    readonly entry: Entry | undefined,
    readonly maxBytes: number | undefined,
    readonly objects: 0 | 1,
    /** The shared ledger's entry (cluster.redis); it decides the bytes when the reservation started there. */
    readonly shared?: SharedQuotaEntry,
  ) {
    this.bucket = account.bucket;
  }

  get settledAlready(): boolean {
    return this.settled;
  }

  grow(n: number): boolean | Promise<boolean> {
    if (this.settled) return false;
    if (!this.entry || this.maxBytes === undefined) return this.take(n);
    if (this.decidedShared) {
      if (this.bytes + n <= this.leased) return this.take(n);
      return this.tracker.topUp(this, n).then((fits) => fits && this.take(n));
    }
    return this.tracker.fits(this.entry, this.maxBytes, n) && this.take(n);
  }

  private take(n: number): boolean {
    if (this.settled) return false;
    this.bytes += n;
    if (this.entry) this.entry.reserved.bytes += n;
    return true;
  }

  commit(etag: string | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.tracker.settle(this, { etag });
  }

  release(): void {
    if (this.settled) return;
    this.settled = true;
    this.tracker.settle(this, undefined);
  }
}

/**
 * Passes an upload's bytes through, each chunk reserved first; the first chunk that does not fit
 * releases the reservation at once (the upload will not commit: the end of its data has not passed
 * yet), so the uploads running beside it may go on, and calls `onExceeded` (which aborts the upload
 * sink with STORAGE_FULL); nothing more goes through.
 */
export function reserveAsReceived(reservation: UploadReservation, onExceeded: () => void): Transform {
  let exceeded = false;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      if (exceeded) return callback();
      const decide = (fits: boolean) => {
        if (exceeded) return callback();
        if (!fits) {
          exceeded = true;
          reservation.release();
          onExceeded();
          return callback();
        }
        callback(null, chunk);
      };
      const fits = reservation.grow(chunk.length);
      if (typeof fits === 'boolean') return decide(fits);
      // The shared ledger answers (or this process's own, when Redis fails): the stream waits meanwhile.
      fits.then(decide, (error: unknown) => callback(error as Error));
    },
  });
}
