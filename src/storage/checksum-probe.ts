import { randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { S3_CHECKSUM_ALGORITHMS, checksumMember, checksumOf, createChecksum, multipartChecksumType, type S3Checksum } from './checksums.js';
import { classifyS3Error } from './s3-errors.js';

/**
 * What a store does with one checksum algorithm. `verified`: it refuses bytes that do not match
 * the checksum; `kept`: keeps it (HeadObject reports it) but stores mismatching bytes too; `accepted`:
 * neither refuses nor keeps it; `rejected`: refuses the header itself, on a single request or on
 * a multipart upload's commit (uploads would fail).
 */
export type ChecksumSupport = 'verified' | 'kept' | 'accepted' | 'rejected';

export interface ChecksumProbe {
  algorithm: S3Checksum;
  support: ChecksumSupport;
  /** For `rejected`: the store's error name and the request it refused. */
  error?: string;
}

const checksumOfBytes = async (algorithm: S3Checksum, body: Buffer): Promise<string> => {
  const hasher = createChecksum(algorithm);
  hasher.update(body);
  return hasher.digest();
};

const errorName = (err: unknown) => (err as { name?: string }).name ?? 'Error';

/**
 * Whether the bucket retains every new object by default (an Object Lock rule): a probe object
 * written there could not be removed again, so none is written.
 */
export async function retainsByDefault(client: S3Client, bucket: string, abortSignal?: AbortSignal): Promise<boolean> {
  try {
    const res = await client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }), { abortSignal });
    return res.ObjectLockConfiguration?.Rule?.DefaultRetention !== undefined;
  } catch {
    return false;
  }
}

/**
 * What the store does with one algorithm, at `key` (the caller deletes it): a PutObject with the
 * right checksum (then HeadObject with ChecksumMode ENABLED: kept?), one with a wrong checksum
 * (refused: verified), and a one-part multipart upload that names the algorithm, sends the part's
 * checksum and lists it in CompleteMultipartUpload, as the bridge's uploads do (a store may take
 * the headers and still refuse the commit's XML: OpenStack Swift's s3api answers MalformedXML).
 * A store that cannot be reached or refuses for another reason (AccessDenied) throws.
 */
export async function probeChecksum(
  client: S3Client,
  bucket: string,
  key: string,
  algorithm: S3Checksum,
  abortSignal?: AbortSignal,
  /** Collects the version id of every write (a versioned bucket), for {@link removeProbe}. */
  versions: string[] = [],
): Promise<ChecksumProbe> {
  const body = Buffer.concat([Buffer.from('ftp-s3-bridge checksum probe '), randomBytes(16)]);
  const other = Buffer.from(body);
  other[0] = (other[0] as number) ^ 0xff;
  const opts = { abortSignal };
  const value = await checksumOfBytes(algorithm, body);
  const put = async (sum: string) => {
    const written = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ChecksumAlgorithm: algorithm, [checksumMember(algorithm)]: sum }), opts);
    if (written.VersionId) versions.push(written.VersionId);
  };
  try {
    await put(value);
  } catch (err) {
    if (!isChecksumRefusal(err)) throw err;
    return { algorithm, support: 'rejected', error: `${errorName(err)} on PutObject` };
  }
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }), opts);
  const kept = checksumOf(head)?.value === value;
  let refusesMismatch = false;
  try {
    await put(await checksumOfBytes(algorithm, other));
  } catch (err) {
    if (!isChecksumRefusal(err)) throw err;
    refusesMismatch = true;
  }
  const type = multipartChecksumType(algorithm);
  let uploadId: string | undefined;
  try {
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ChecksumAlgorithm: algorithm, ChecksumType: type }), opts);
    uploadId = created.UploadId;
    const sum = { [checksumMember(algorithm)]: value };
    const part = await client.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: 1, Body: body, ChecksumAlgorithm: algorithm, ...sum }),
      opts,
    );
    const completed = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag, ...sum }] },
        ...(type === 'FULL_OBJECT' && { ChecksumType: type, ...sum }),
      }),
      opts,
    );
    if (completed.VersionId) versions.push(completed.VersionId);
    uploadId = undefined;
  } catch (err) {
    if (uploadId) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }), opts).catch(() => undefined);
    if (!isChecksumRefusal(err)) throw err;
    return { algorithm, support: 'rejected', error: `${errorName(err)} on a multipart upload` };
  }
  return { algorithm, support: refusesMismatch ? 'verified' : kept ? 'kept' : 'accepted' };
}

/**
 * A refusal of the request as the store understood it (4xx other than access, absence and
 * throttling): what a store that does not know or does not match the checksum answers.
 */
function isChecksumRefusal(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (classifyS3Error(err).code === 'CHECKSUM_MISMATCH') return true;
  return status !== undefined && status >= 400 && status < 500 && ![401, 403, 404, 408, 429].includes(status);
}

/**
 * Removes what a probe wrote at `key`: each version it created (a versioned bucket keeps no
 * noncurrent version and gets no delete marker), or the object itself on an unversioned bucket.
 * Failures are ignored: the probe's answer stands.
 */
export async function removeProbe(client: S3Client, bucket: string, key: string, versions: readonly string[], abortSignal?: AbortSignal): Promise<void> {
  const deletes = versions.length ? versions.map((VersionId) => ({ Bucket: bucket, Key: key, VersionId })) : [{ Bucket: bucket, Key: key }];
  for (const input of deletes) await client.send(new DeleteObjectCommand(input), { abortSignal }).catch(() => undefined);
}

/**
 * Writes a small object at `key` with each algorithm (see {@link probeChecksum}), then removes
 * every version it wrote: what `check-config --probe` reports.
 */
export async function probeChecksums(client: S3Client, bucket: string, key: string): Promise<ChecksumProbe[]> {
  const out: ChecksumProbe[] = [];
  const versions: string[] = [];
  try {
    for (const algorithm of S3_CHECKSUM_ALGORITHMS) out.push(await probeChecksum(client, bucket, key, algorithm, undefined, versions));
  } finally {
    await removeProbe(client, bucket, key, versions);
  }
  return out;
}

/** s3.checksumAlgorithm as configured; undefined: the default (see {@link checksumInForce}). */
export type ChecksumSetting = S3Checksum | 'none' | undefined;

/** What is known of one bucket on one S3 target. */
export type ChecksumOutcome =
  | { probe: ChecksumProbe }
  /** The probe could not answer (store unreachable, timed out, access denied): the error's name. */
  | { failed: string }
  /** Not probed: the bucket retains every new object by default (it has Object Lock). */
  | { retains: true };

/** The algorithm a target's bucket gets, and the start-up line that says why. */
export interface ChecksumChoice {
  algorithm: S3Checksum | undefined;
  /** Whether the line is a warning: what was asked for is not what uploads get, or is unknown. */
  warn: boolean;
  message: string;
}

/** Whether the algorithm for a bucket on a target with this endpoint needs a probe (and which one). */
export function checksumToProbe(configured: ChecksumSetting, endpoint: string | undefined): S3Checksum | undefined {
  if (configured === 'none' || endpoint === undefined) return undefined;
  return configured ?? 'SHA256';
}

/**
 * The algorithm in force for a bucket. `none` configured: none. On AWS (no endpoint): the
 * configured one, SHA256 by default, not probed. With a custom endpoint: a configured algorithm
 * the store rejects becomes none (uploads would fail); the default (unset) is SHA256 where the store
 * verifies it, else none. Unknown (not probed yet, or the probe failed): the configured algorithm,
 * none by default. A bucket that retains every object by default has Object Lock, which S3
 * implements only with checksums: SHA256 by default.
 */
export function checksumInForce(configured: ChecksumSetting, endpoint: string | undefined, outcome: ChecksumOutcome | undefined): ChecksumChoice {
  const asked = checksumToProbe(configured, endpoint);
  if (configured === 'none') return { algorithm: undefined, warn: false, message: 'uploads carry no checksum (s3.checksumAlgorithm none)' };
  if (asked === undefined || endpoint === undefined) {
    const algorithm = configured ?? 'SHA256';
    return { algorithm, warn: false, message: `uploads carry ${algorithm} checksums S3 verifies (${configured ? 's3.checksumAlgorithm' : 'default on AWS'})` };
  }
  const setting = configured ? `s3.checksumAlgorithm ${configured}` : 's3.checksumAlgorithm default';
  if (!outcome) return { algorithm: configured, warn: false, message: `not probed yet: ${configured ?? 'none'} (${setting})` };
  if ('failed' in outcome) {
    return {
      algorithm: configured,
      warn: true,
      message: `the checksum probe could not answer (${outcome.failed}): uploads carry ${configured ? `${configured} checksums as configured` : 'no checksum until a probe succeeds'} (${setting})`,
    };
  }
  if ('retains' in outcome) {
    return { algorithm: asked, warn: false, message: `not probed (the bucket retains every new object by default, so it has Object Lock): uploads carry ${asked} checksums (${setting})` };
  }
  const { support, error } = outcome.probe;
  if (support === 'rejected') {
    return {
      algorithm: undefined,
      // A warning where an algorithm was asked for; the default's none is what it promises.
      warn: configured !== undefined,
      message: `the store rejects x-amz-checksum-${asked.toLowerCase()} (${error ?? 'refused'}): uploads carry no checksum (${setting} -> none)`,
    };
  }
  if (configured) return { algorithm: configured, warn: false, message: `the store takes ${configured} (${support}): uploads carry it (${setting})` };
  if (support === 'verified') return { algorithm: 'SHA256', warn: false, message: `the store verifies SHA256: uploads carry it (${setting})` };
  return { algorithm: undefined, warn: false, message: `the store does not verify SHA256 (${support}): uploads carry no checksum (${setting} -> none)` };
}

/** One bucket on one S3 target, as the bridge's accounts use it. */
export interface ChecksumTarget {
  client: S3Client;
  bucket: string;
  /** Where the probe object goes (the first account's prefix). */
  prefix: string;
  /** The target's endpoint; undefined: AWS. */
  endpoint: string | undefined;
  /** Names the target in the start-up line. */
  label: string;
}

export interface ChecksumChoiceReport extends ChecksumChoice {
  bucket: string;
  target: string;
  configured: ChecksumSetting;
}

interface TargetState {
  choice: ChecksumChoice;
  /** When an unknown outcome may be probed again. */
  retryAt: number;
  probing?: Promise<void>;
}

/**
 * The checksum algorithm of each bucket on each S3 target: probed once per target and bucket (at
 * start, on reload, and on first use of a bucket no account named before, such as one from the
 * auth hook), each probe bounded by `timeoutMs`; a probe that could not answer is tried again on
 * the next use at most once a minute. Each result is reported once.
 */
export class ChecksumTargets {
  private readonly states = new Map<S3Client, Map<string, TargetState>>();

  constructor(
    private readonly options: {
      configured: ChecksumSetting;
      timeoutMs: number;
      report: (report: ChecksumChoiceReport) => void;
      retryMs?: number;
    },
  ) {}

  /** The algorithm uploads to this bucket carry now; starts a probe if none has answered. */
  algorithmFor(target: ChecksumTarget): S3Checksum | undefined {
    const state = this.states.get(target.client)?.get(target.bucket);
    if (state && (state.probing || Date.now() < state.retryAt)) return state.choice.algorithm;
    if (checksumToProbe(this.options.configured, target.endpoint) === undefined) return checksumInForce(this.options.configured, target.endpoint, undefined).algorithm;
    void this.probe([target]);
    return (this.states.get(target.client)?.get(target.bucket)?.choice ?? checksumInForce(this.options.configured, target.endpoint, undefined)).algorithm;
  }

  /** Probes each bucket not probed yet (or whose probe could not answer), four at a time; resolves when all have answered. */
  async probe(targets: readonly ChecksumTarget[]): Promise<void> {
    const waits: Promise<void>[] = [];
    const queue: (() => Promise<void>)[] = [];
    for (const target of targets) {
      let byBucket = this.states.get(target.client);
      if (!byBucket) this.states.set(target.client, (byBucket = new Map()));
      const state = byBucket.get(target.bucket);
      if (state?.probing) {
        waits.push(state.probing);
        continue;
      }
      if (state && Date.now() < state.retryAt) continue;
      const asked = checksumToProbe(this.options.configured, target.endpoint);
      const fresh: TargetState = state ?? { choice: checksumInForce(this.options.configured, target.endpoint, undefined), retryAt: 0 };
      byBucket.set(target.bucket, fresh);
      if (asked === undefined) {
        fresh.retryAt = Infinity;
        this.report(target, fresh.choice);
        continue;
      }
      let release!: () => void;
      fresh.probing = new Promise<void>((r) => (release = r));
      waits.push(fresh.probing);
      queue.push(async () => {
        const outcome = await this.outcome(target, asked);
        fresh.choice = checksumInForce(this.options.configured, target.endpoint, outcome);
        fresh.retryAt = 'failed' in outcome ? Date.now() + (this.options.retryMs ?? 60_000) : Infinity;
        fresh.probing = undefined;
        this.report(target, fresh.choice);
        release();
      });
    }
    const run = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await next();
    };
    await Promise.all([...Array.from({ length: Math.min(4, queue.length) }, run), ...waits]);
  }

  private async outcome(target: ChecksumTarget, algorithm: S3Checksum): Promise<ChecksumOutcome> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    const key = `${target.prefix}.ftp-s3-bridge-probe-${randomBytes(6).toString('hex')}`;
    let wrote = false;
    const versions: string[] = [];
    try {
      if (await retainsByDefault(target.client, target.bucket, signal)) return { retains: true };
      wrote = true;
      return { probe: await probeChecksum(target.client, target.bucket, key, algorithm, signal, versions) };
    } catch (err) {
      return { failed: signal.aborted ? `no answer in ${this.options.timeoutMs / 1000} s` : errorName(err) };
    } finally {
      // Not bound by the probe's time-out: an object the probe wrote must not stay.
      if (wrote) await removeProbe(target.client, target.bucket, key, versions, AbortSignal.timeout(this.options.timeoutMs));
    }
  }

  private report(target: ChecksumTarget, choice: ChecksumChoice): void {
    this.options.report({ ...choice, bucket: target.bucket, target: target.label, configured: this.options.configured });
  }
}
