import { GetObjectLockConfigurationCommand, type ObjectLockLegalHoldStatus, type ObjectLockMode, type S3Client } from '@aws-sdk/client-s3';
import { RetainedError } from './errors.js';

/** An account's Object Lock policy for what it uploads (accounts[].retention, accounts[].legalHold). */
export interface ObjectLockPolicy {
  retention?: { mode: 'GOVERNANCE' | 'COMPLIANCE'; days: number };
  legalHold?: boolean;
}

/** The Object Lock parameters of a request that creates an object (PutObject, CreateMultipartUpload, CopyObject). */
export interface ObjectLockParams {
  ObjectLockMode?: ObjectLockMode;
  ObjectLockRetainUntilDate?: Date;
  ObjectLockLegalHoldStatus?: ObjectLockLegalHoldStatus;
}

const DAY_MS = 86_400_000;

/** The parameters for an object created now: retained `days` from now, and/or under legal hold. */
export function objectLockParams(policy: ObjectLockPolicy | undefined, now = Date.now()): ObjectLockParams {
  if (!policy) return {};
  return {
    ...(policy.retention && { ObjectLockMode: policy.retention.mode, ObjectLockRetainUntilDate: new Date(now + policy.retention.days * DAY_MS) }),
    ...(policy.legalHold && { ObjectLockLegalHoldStatus: 'ON' as const }),
  };
}

/** What a HeadObject tells about an object's lock (present only with s3:GetObjectRetention / GetObjectLegalHold). */
export interface ObjectLockState {
  ObjectLockMode?: ObjectLockMode | string;
  ObjectLockRetainUntilDate?: Date;
  ObjectLockLegalHoldStatus?: ObjectLockLegalHoldStatus | string;
}

/**
 * RETAINED when the object must not be deleted or replaced now: a retention date still ahead, or a
 * legal hold. `name` is the path the client named; the message is the reply text after "550 ".
 */
export function retainedError(name: string, state: ObjectLockState | undefined, now = Date.now()): RetainedError | undefined {
  if (!state) return undefined;
  const until = state.ObjectLockRetainUntilDate;
  if (state.ObjectLockMode && until && until.getTime() > now) {
    return new RetainedError(name, until);
  }
  if (state.ObjectLockLegalHoldStatus === 'ON') return new RetainedError(name, undefined);
  return undefined;
}

/**
 * Undefined when the bucket has Object Lock enabled, else why not (one line, no S3 response text
 * beyond its error name): what start-up and /readyz report for an account with retention.
 */
export async function objectLockProblem(client: S3Client, bucket: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    const res = await client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }), { abortSignal: signal });
    return res.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled' ? undefined : 'Object Lock is not enabled on the bucket';
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'ObjectLockConfigurationNotFoundError') return 'Object Lock is not enabled on the bucket';
    return `GetObjectLockConfiguration failed: ${e.name ?? 'Error'}${e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : ''}`;
  }
}
