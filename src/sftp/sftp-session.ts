import { createRequire } from 'node:module';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import type { OperationEvent, OperationListener } from '../sessions/operations.js';
import type { Session } from '../sessions/session.js';
import type { TransferPolicy, UploadAdmission } from '../sessions/transfer-policy.js';
import { formatChecksum } from '../storage/checksums.js';
import { isStorageError, StorageError } from '../storage/errors.js';
import type { Entry } from '../storage/object-store.js';
import { resolveVirtualPath } from '../storage/paths.js';
import type { ScanReport } from '../storage/scan.js';
import { SequentialReader } from './download.js';
import { isExpectedError, SFTP_STATUS, SftpError, statusFor } from './status.js';
import { OrderedUpload, type ReorderMemory } from './upload.js';

/** SSH_FXF_* open flags (SFTP v3). */
const OPEN = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;
/** The most one READ answers; clients take short reads (OpenSSH asks for 32 KiB). */
const MAX_READ_BYTES = 64 * 1024;
/** Entries per READDIR answer, well within one SFTP packet. */
const NAMES_PER_READDIR = 100;
/**
 * WRITE bytes received and not yet passed on beyond which the channel's SSH window stays shut. What
 * one session can hold outside the memory budget is this plus the window the client still had
 * (ssh2 grants 2 MiB). Small is enough: writes wait only while the upload's part buffers are all
 * full, and the part that frees next takes a whole part's bytes at once, so the window reopens long
 * before the upload could run dry.
 */
const CHANNEL_BACKLOG_BYTES = 512 * 1024;

/** ssh2's own window update (not part of its typed API): reopens a channel's window after we held it. */
const { windowAdjust } = createRequire(import.meta.url)('ssh2/lib/Channel.js') as { windowAdjust(channel: unknown): void };

export interface SftpSessionOptions {
  session: Session;
  sessionId: string;
  clientIp: string;
  transferPolicy?: TransferPolicy;
  onOperation: OperationListener;
  /** Memory for writes held out of order (the shared budget). */
  memory?: ReorderMemory;
  reorderWindowBytes: number;
  maxOpenHandles: number;
  /** Called on every request (the connection's idle timer). */
  onActivity(): void;
  /** The server is draining: transfers in flight run on, new ones are refused. */
  isDraining?(): boolean;
}

interface ReadHandle {
  kind: 'read';
  path: string;
  entry: Entry;
  reader?: SequentialReader;
  bytes: number;
  started: number;
  queue: Promise<unknown>;
}

interface WriteHandle {
  kind: 'write';
  path: string;
  flags: number;
  /** The file as found at OPEN (for a resume), when it existed and TRUNC was not asked for. */
  existing?: Entry;
  upload?: OrderedUpload;
  admission?: UploadAdmission;
  appendAt?: number | 'end';
  /** CLOSE is committing it: CLOSE reports its outcome. */
  closing?: boolean;
  started: number;
  queue: Promise<unknown>;
}

interface DirHandle {
  kind: 'dir';
  path: string;
  pages: AsyncIterator<Entry[]>;
  pending: Entry[];
  done: boolean;
  queue: Promise<unknown>;
}

type Handle = ReadHandle | WriteHandle | DirHandle;

/** `-rw-r--r--` style attributes of an entry: no owners, no times beyond mtime, modes for the look only. */
export function attrsOf(entry: Pick<Entry, 'isDirectory' | 'size' | 'mtime'>): Attributes {
  const seconds = Math.floor(entry.mtime.getTime() / 1000);
  return { mode: entry.isDirectory ? 0o40755 : 0o100644, uid: 0, gid: 0, size: entry.isDirectory ? 0 : entry.size, atime: seconds, mtime: seconds };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The `ls -l` line OpenSSH's `ls -l` prints as it is. */
function longnameOf(entry: Entry): string {
  const d = entry.mtime;
  const recent = Date.now() - d.getTime() < 180 * 86_400_000;
  const when = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${recent ? `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}` : ` ${d.getUTCFullYear()}`}`;
  const mode = entry.isDirectory ? 'drwxr-xr-x' : '-rw-r--r--';
  // Clients print this line as it is: a control character in a name must not reach a terminal.
  // eslint-disable-next-line no-control-regex
  const shown = entry.name.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
  return `${mode}    1 ftp      ftp      ${String(entry.isDirectory ? 0 : entry.size).padStart(12)} ${when} ${shown}`;
}

/** Reads an SSH string (uint32 length, bytes) from an EXTENDED request's data. */
function readStrings(data: Buffer | undefined, count: number): string[] | undefined {
  if (!data) return undefined;
  const out: string[] = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 4 > data.length) return undefined;
    const len = data.readUInt32BE(p);
    p += 4;
    if (p + len > data.length) return undefined;
    out.push(data.toString('utf8', p, p + len));
    p += len;
  }
  return out;
}

/**
 * One `sftp` subsystem channel of a logged-in connection: every SFTP request becomes calls on the
 * account's file session (paths confined by resolveVirtualPath, permissions checked first), and
 * every failure one status from the one table (status.ts). Requests on one handle run in order;
 * requests on different handles and paths run concurrently.
 */
export class SftpSession {
  private readonly handles = new Map<string, Handle>();
  private nextHandle = 1;
  /** When the last read or write handle closed (ms since the epoch; 0: none yet). */
  lastTransferEnded = 0;
  private backlog = 0;
  private held = false;
  private closed = false;

  constructor(
    private readonly sftp: SFTPWrapper,
    private readonly options: SftpSessionOptions,
  ) {
    this.holdWindowWhileBacklogged();
    const { session } = options;
    const on = <A extends unknown[]>(event: string, handler: (reqid: number, ...args: A) => Promise<void>) =>
      (sftp as unknown as NodeJS.EventEmitter).on(event, (reqid: number, ...args: A) => {
        options.onActivity();
        handler(reqid, ...args).catch((err: unknown) => this.fail(reqid, event, err));
      });
    on('OPEN', (reqid, filename: string, flags: number) => this.open(reqid, filename, flags));
    on('READ', (reqid, handle: Buffer, offset: number, length: number) => this.read(reqid, handle, offset, length));
    on('WRITE', (reqid, handle: Buffer, offset: number, data: Buffer, owned?: boolean) => this.write(reqid, handle, offset, data, owned === true));
    on('CLOSE', (reqid, handle: Buffer) => this.close(reqid, handle));
    on('FSTAT', (reqid, handle: Buffer) => this.fstat(reqid, handle));
    on('FSETSTAT', async (reqid, handle: Buffer) => {
      this.handleOf(handle);
      this.ok(reqid);
    });
    on('SETSTAT', async (reqid, path: string) => {
      // Times and modes (sftp -p, WinSCP after an upload) have no place in S3: accepted, without effect.
      session.require('list', 'read', 'write');
      await session.store.stat(this.resolve(path));
      this.ok(reqid);
    });
    on('OPENDIR', (reqid, path: string) => this.opendir(reqid, path));
    on('READDIR', (reqid, handle: Buffer) => this.readdir(reqid, handle));
    const stat = async (reqid: number, path: string) => {
      session.require('list', 'read');
      this.sftp.attrs(reqid, attrsOf(await session.store.stat(this.resolve(path))));
    };
    on('STAT', stat);
    on('LSTAT', stat);
    on('REALPATH', async (reqid, path: string) => {
      const resolved = this.resolve(path);
      this.sftp.name(reqid, [{ filename: resolved, longname: resolved, attrs: {} as Attributes }]);
    });
    on('REMOVE', (reqid, path: string) => this.pathOperation(reqid, 'DELE', 'delete', path, (p) => session.store.remove(p)));
    on('RMDIR', (reqid, path: string) => this.pathOperation(reqid, 'RMD', 'delete', path, (p) => session.store.rmdir(p)));
    on('MKDIR', (reqid, path: string) => this.pathOperation(reqid, 'MKD', 'mkdir', path, (p) => session.store.mkdir(p)));
    on('RENAME', (reqid, from: string, to: string) => this.rename(reqid, from, to));
    on('EXTENDED', async (reqid, name: string, data: Buffer | undefined) => {
      if (name !== 'posix-rename@openssh.com') throw new SftpError('UNSUPPORTED', `Extension ${name} is not supported`);
      const paths = readStrings(data, 2);
      if (!paths) throw new SftpError('BAD_ARGUMENT', 'Malformed posix-rename request');
      await this.rename(reqid, paths[0] as string, paths[1] as string);
    });
    const noLinks = async () => {
      throw new SftpError('UNSUPPORTED', 'Symbolic links are not supported');
    };
    on('READLINK', noLinks);
    on('SYMLINK', noLinks);
    sftp.once('close', () => this.end());
    // The client sent EOF (it is done): uploads it did not close are aborted, and the channel closes.
    sftp.once('end', () => {
      this.end();
      this.exitStatus(0);
      sftp.end();
    });
  }

  /** Whether a transfer is open (an idle connection is never one in the middle of a transfer). */
  get busy(): boolean {
    for (const h of this.handles.values()) if (h.kind !== 'dir') return true;
    return false;
  }

  /** The channel is gone: every upload not closed is aborted (nothing committed), every download stops. */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [key, handle] of this.handles) {
      this.handles.delete(key);
      if (handle.kind === 'write') {
        const err = new StorageError('ABORTED', 'Channel closed before CLOSE');
        const aborted = handle.upload?.abort(err);
        if (handle.closing) continue;
        handle.admission?.release();
        // Reported once the abort is done: the audit line never precedes the multipart abort.
        if (aborted) void aborted.then(() => this.report({ op: this.writeOp(handle), path: handle.path, started: handle.started, error: err }));
      } else if (handle.kind === 'read') {
        handle.reader?.close();
      }
    }
  }

  /**
   * Sends exit-status before the channel closes, as OpenSSH's sftp-server does: scp (over SFTP
   * since OpenSSH 9) reports a failure without one.
   */
  private exitStatus(code: number): void {
    const channel = this.sftp as unknown as { outgoing?: { id: number; state: string }; _client?: { _protocol?: { exitStatus(id: number, code: number): void } } };
    if (channel.outgoing?.state !== 'open') return;
    try {
      channel._client?._protocol?.exitStatus(channel.outgoing.id, code);
    } catch {
      // The connection is going anyway.
    }
  }

  private resolve(path: string): string {
    return resolveVirtualPath('/', path);
  }

  private async open(reqid: number, filename: string, flags: number): Promise<void> {
    const { session } = this.options;
    if (this.handles.size >= this.options.maxOpenHandles) throw new SftpError('TOO_MANY_HANDLES', 'Too many open files');
    if (this.options.isDraining?.()) throw new SftpError('SHUTTING_DOWN', 'Server shutting down; try again later');
    const path = this.resolve(filename);
    const started = Date.now();
    if (flags & (OPEN.WRITE | OPEN.APPEND)) {
      session.require('write');
      // A plain upload (TRUNC, as `put` sends) needs no look at the target first, like STOR: the
      // store itself applies s3.storeOntoDirectory. EXCL, APPEND and a possible resume do.
      const plain = (flags & OPEN.TRUNC) !== 0 && (flags & (OPEN.EXCL | OPEN.APPEND)) === 0;
      let existing: Entry | undefined;
      try {
        if (!plain) existing = await session.store.stat(path);
      } catch (err) {
        if (!isStorageError(err, 'NOT_FOUND')) throw err;
      }
      if (existing?.isDirectory) throw new StorageError('IS_DIRECTORY', 'Is a directory');
      if (existing && flags & OPEN.EXCL) throw new StorageError('ALREADY_EXISTS', 'File exists');
      const handle: WriteHandle = { kind: 'write', path, flags, started, queue: Promise.resolve() };
      if (flags & OPEN.APPEND) handle.appendAt = 'end';
      else if (existing && !(flags & OPEN.TRUNC)) handle.existing = existing;
      this.sftp.handle(reqid, this.add(handle));
      return;
    }
    if (!(flags & OPEN.READ)) throw new SftpError('BAD_ARGUMENT', 'OPEN needs READ or WRITE');
    session.require('read');
    const entry = await session.store.stat(path);
    if (entry.isDirectory) throw new StorageError('IS_DIRECTORY', 'Is a directory');
    this.sftp.handle(reqid, this.add({ kind: 'read', path, entry, bytes: 0, started, queue: Promise.resolve() }));
  }

  private async read(reqid: number, raw: Buffer, offset: number, length: number): Promise<void> {
    const handle = this.handleOf(raw, 'read');
    await this.serialized(handle, async () => {
      if (offset >= handle.entry.size) return this.sftp.status(reqid, SFTP_STATUS.EOF);
      if (!handle.reader || handle.reader.position !== offset) {
        handle.reader?.close();
        // A READ anywhere but where the last one ended: a new ranged GET from there.
        const { session, transferPolicy } = this.options;
        const source = await session.store.read(handle.path, { start: offset });
        handle.reader = new SequentialReader(transferPolicy ? transferPolicy.download(session, source) : source, offset);
      }
      const data = await handle.reader.take(Math.min(length, MAX_READ_BYTES));
      if (!data) return this.sftp.status(reqid, SFTP_STATUS.EOF);
      handle.bytes += data.length;
      this.sftp.data(reqid, data);
      handle.reader.release(data);
    });
  }

  /** `owned`: the WRITE's packet memory is ours to free once its data is copied out (see OrderedUpload.write). */
  private async write(reqid: number, raw: Buffer, offset: number, data: Buffer, owned: boolean): Promise<void> {
    const handle = this.handleOf(raw, 'write');
    // Read now: `data` may be freed (and read as empty) once the upload has copied it.
    const length = data.length;
    this.backlog += length;
    try {
      await this.serialized(handle, async () => {
        const upload = handle.upload ?? (await this.startUpload(handle, offset));
        await upload.write(offset, data, owned);
      });
    } finally {
      this.backlog -= length;
      this.releaseWindow();
    }
    this.ok(reqid);
  }

  /**
   * The upload behind a write handle, begun at its first WRITE (or its CLOSE): a new object, or
   * with APPEND, or a first write at the end of a file opened without TRUNC, an append (the same
   * path as APPE and REST+STOR).
   */
  private async startUpload(handle: WriteHandle, firstOffset: number): Promise<OrderedUpload> {
    const { session, transferPolicy, memory, reorderWindowBytes } = this.options;
    let startOffset = 0;
    if (handle.appendAt === 'end') {
      startOffset = firstOffset;
    } else if (handle.existing && firstOffset > 0) {
      if (firstOffset < handle.existing.size || firstOffset > handle.existing.size + reorderWindowBytes) {
        throw new SftpError('UNSUPPORTED', `Writing at ${firstOffset} into a file of ${handle.existing.size} bytes is not supported: only a resume at its end`);
      }
      handle.appendAt = handle.existing.size;
      startOffset = handle.existing.size;
    }
    const appendAt = handle.appendAt;
    handle.admission = await transferPolicy?.admitUpload(session, handle.path, { append: appendAt !== undefined });
    const sink = await session.store.write(handle.path, { appendAt, existing: typeof appendAt === 'number' ? handle.existing : undefined });
    const admission = handle.admission;
    handle.upload = new OrderedUpload({
      sink,
      wrap: admission ? (data) => admission.wrap(data, sink) : undefined,
      startOffset,
      windowBytes: reorderWindowBytes,
      memory,
    });
    return handle.upload;
  }

  private async close(reqid: number, raw: Buffer): Promise<void> {
    const key = raw.toString('hex');
    const handle = this.handleOf(raw);
    await this.serialized(handle, async () => {
      // The handle stays listed until the upload committed: the connection counts as busy (idle
      // timer, drain) and a connection lost meanwhile still aborts it.
      try {
        if (handle.kind === 'read') {
          handle.reader?.close();
          if (handle.bytes > 0) this.report({ op: 'RETR', path: handle.path, bytes: handle.bytes, started: handle.started, status: SFTP_STATUS.OK });
          return;
        }
        if (handle.kind === 'dir') return;
        handle.closing = true;
        try {
          const upload = handle.upload ?? (await this.startUpload(handle, 0));
          // OK only once S3 holds the object: the SFTP form of "226 means committed".
          const object = await upload.finish();
          this.report({
            op: this.writeOp(handle),
            path: handle.path,
            bytes: object.size,
            etag: object.etag,
            ...(object.checksum && { checksum: formatChecksum(object.checksum) }),
            ...(object.scan && { scan: object.scan }),
            started: handle.started,
            status: SFTP_STATUS.OK,
          });
        } catch (error) {
          const scan = (error as { scan?: ScanReport } | undefined)?.scan;
          this.report({ op: this.writeOp(handle), path: handle.path, started: handle.started, error, ...(scan && { scan }) });
          throw error;
        } finally {
          handle.admission?.release();
        }
      } finally {
        this.handles.delete(key);
        if (handle.kind !== 'dir') this.lastTransferEnded = Date.now();
      }
    });
    this.ok(reqid);
  }

  private async fstat(reqid: number, raw: Buffer): Promise<void> {
    const handle = this.handleOf(raw);
    if (handle.kind === 'read') return this.sftp.attrs(reqid, attrsOf(handle.entry));
    if (handle.kind === 'write') {
      const size = (handle.upload?.bytesAccepted ?? 0) + (typeof handle.appendAt === 'number' ? handle.appendAt : 0);
      return this.sftp.attrs(reqid, attrsOf({ isDirectory: false, size, mtime: new Date() }));
    }
    this.sftp.attrs(reqid, attrsOf(await this.options.session.store.stat(handle.path)));
  }

  private async opendir(reqid: number, dirPath: string): Promise<void> {
    const { session } = this.options;
    session.require('list');
    if (this.handles.size >= this.options.maxOpenHandles) throw new SftpError('TOO_MANY_HANDLES', 'Too many open files');
    const path = this.resolve(dirPath);
    const entry = await session.store.stat(path);
    if (!entry.isDirectory) throw new StorageError('NOT_DIRECTORY', 'Not a directory');
    const pages = session.store.list(path)[Symbol.asyncIterator]();
    this.sftp.handle(reqid, this.add({ kind: 'dir', path, pages, pending: [], done: false, queue: Promise.resolve() }));
  }

  private async readdir(reqid: number, raw: Buffer): Promise<void> {
    const handle = this.handleOf(raw, 'dir');
    await this.serialized(handle, async () => {
      while (handle.pending.length === 0 && !handle.done) {
        const page = await handle.pages.next();
        if (page.done) handle.done = true;
        else handle.pending.push(...page.value);
      }
      if (handle.pending.length === 0) return this.sftp.status(reqid, SFTP_STATUS.EOF);
      const names: FileEntry[] = handle.pending.splice(0, NAMES_PER_READDIR).map((e) => ({ filename: e.name, longname: longnameOf(e), attrs: attrsOf(e) }));
      this.sftp.name(reqid, names);
    });
  }

  private async rename(reqid: number, fromPath: string, toPath: string): Promise<void> {
    const { session } = this.options;
    const started = Date.now();
    session.require('rename');
    const from = this.resolve(fromPath);
    const to = this.resolve(toPath);
    try {
      await session.store.rename(from, to);
    } catch (error) {
      this.report({ op: 'RENAME', path: to, from, started, error });
      throw error;
    }
    this.report({ op: 'RENAME', path: to, from, started, status: SFTP_STATUS.OK });
    this.ok(reqid);
  }

  private async pathOperation(reqid: number, op: 'DELE' | 'RMD' | 'MKD', permission: 'delete' | 'mkdir', clientPath: string, run: (path: string) => Promise<void>): Promise<void> {
    const started = Date.now();
    this.options.session.require(permission);
    const path = this.resolve(clientPath);
    try {
      await run(path);
    } catch (error) {
      this.report({ op, path, started, error });
      throw error;
    }
    this.report({ op, path, started, status: SFTP_STATUS.OK });
    this.ok(reqid);
  }

  /** The bucket and key of a path for the event; the root has no key of its own. */
  private locate(path: string): { bucket: string; key: string } {
    const { store } = this.options.session;
    try {
      return store.locate(path);
    } catch {
      return { bucket: store.bucket, key: '' };
    }
  }

  private writeOp(handle: WriteHandle): 'STOR' | 'APPE' {
    return handle.appendAt === undefined ? 'STOR' : 'APPE';
  }

  private add(handle: Handle): Buffer {
    const raw = Buffer.alloc(4);
    raw.writeUInt32BE(this.nextHandle++ >>> 0);
    this.handles.set(raw.toString('hex'), handle);
    return raw;
  }

  private handleOf(raw: Buffer): Handle;
  private handleOf<K extends Handle['kind']>(raw: Buffer, kind: K): Extract<Handle, { kind: K }>;
  private handleOf(raw: Buffer, kind?: Handle['kind']): Handle {
    const handle = this.handles.get(raw.toString('hex'));
    if (!handle) throw new SftpError('BAD_HANDLE', 'Invalid handle');
    if (kind && handle.kind !== kind) throw new SftpError(handle.kind === 'dir' || kind === 'dir' ? 'BAD_HANDLE' : 'UNSUPPORTED', `Not a handle for ${kind}`);
    return handle;
  }

  /** Runs `work` after everything queued on the handle before it. */
  private serialized<T>(handle: Handle, work: () => Promise<T>): Promise<T> {
    const run = handle.queue.then(work, work);
    handle.queue = run.catch(() => undefined);
    return run;
  }

  private ok(reqid: number): void {
    this.send(() => this.sftp.status(reqid, SFTP_STATUS.OK));
  }

  private fail(reqid: number, request: string, err: unknown): void {
    const status = statusFor(err);
    this.options.session.log[isExpectedError(err) ? 'info' : 'error']({ err, request, status: status.code }, 'SFTP request failed');
    this.send(() => this.sftp.status(reqid, status.code, status.message));
  }

  /** Answers unless the channel is gone meanwhile (its requests then go unanswered). */
  private send(answer: () => void): void {
    if (this.closed) return;
    try {
      answer();
    } catch (err) {
      this.options.session.log.debug({ err }, 'SFTP answer not sent');
    }
  }

  /**
   * SSH flow control for uploads: while WRITE bytes not yet passed on exceed CHANNEL_BACKLOG_BYTES,
   * the channel's window is not reopened, so a client that pipelines without waiting for answers
   * stops at the window (2 MiB) instead of filling our memory.
   */
  private holdWindowWhileBacklogged(): void {
    const channel = this.sftp as unknown as { push(data: Buffer | null): unknown };
    const push = channel.push.bind(channel);
    channel.push = (data) => {
      const result = push(data);
      if (data !== null && this.backlog > CHANNEL_BACKLOG_BYTES) {
        this.held = true;
        return false;
      }
      return result;
    };
  }

  private releaseWindow(): void {
    if (!this.held || this.backlog > CHANNEL_BACKLOG_BYTES / 2) return;
    this.held = false;
    const channel = this.sftp as unknown as { _waitChanDrain?: boolean };
    if (channel._waitChanDrain) {
      channel._waitChanDrain = false;
      windowAdjust(this.sftp);
    }
  }

  private report(fields: {
    op: OperationEvent['op'];
    path: string;
    from?: string;
    bytes?: number;
    etag?: string;
    checksum?: string;
    scan?: ScanReport;
    started: number;
    status?: number;
    error?: unknown;
  }): void {
    const { session, sessionId, clientIp, onOperation } = this.options;
    const { op, path, from, bytes, etag, checksum, scan, started, error } = fields;
    const failed = error !== undefined;
    onOperation({
      op,
      sessionId,
      user: session.account.username,
      clientIp,
      path,
      ...(from !== undefined ? { from } : {}),
      ...this.locate(path),
      bytes,
      etag,
      ...(checksum !== undefined ? { checksum } : {}),
      ...(scan !== undefined ? { scan } : {}),
      durationMs: Date.now() - started,
      result: failed ? 'error' : 'ok',
      code: failed ? statusFor(error).code : (fields.status ?? SFTP_STATUS.OK),
      ...(failed ? { error: (error as { code?: string }).code ?? 'INTERNAL' } : {}),
      protocol: 'sftp',
    });
  }
}
