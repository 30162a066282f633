import type { IncomingHttpHeaders } from 'node:http';

/** The S3 API a proxied request belongs to, derived from its method, path, query and headers. */
export type S3Operation =
  | 'GetObject'
  | 'HeadObject'
  | 'PutObject'
  | 'CopyObject'
  | 'DeleteObject'
  | 'DeleteObjects'
  | 'CreateMultipartUpload'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListParts'
  | 'ListObjectsV2'
  | 'ListObjects'
  | 'ListMultipartUploads'
  | 'HeadBucket'
  | 'CreateBucket'
  | 'DeleteBucket'
  | 'Other';

export interface ClassifiedRequest {
  method: string;
  operation: S3Operation;
  bucket: string;
  /** The decoded object key ("" for bucket-level requests). */
  key: string;
  query: URLSearchParams;
}

/** Path-style S3 requests only (the bridge's tests always use forcePathStyle). */
export function classifyRequest(method: string, url: string, headers: IncomingHttpHeaders): ClassifiedRequest {
  const parsed = new URL(url, 'http://proxy');
  const query = parsed.searchParams;
  const segments = parsed.pathname.replace(/^\//, '').split('/');
  const bucket = decodeURIComponent(segments[0] ?? '');
  const key = segments.slice(1).map(decodeURIComponent).join('/');
  const copy = headers['x-amz-copy-source'] !== undefined;
  const has = (name: string) => query.has(name);
  let operation: S3Operation = 'Other';
  if (!key) {
    if (method === 'GET') operation = has('uploads') ? 'ListMultipartUploads' : query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
    else if (method === 'HEAD') operation = 'HeadBucket';
    else if (method === 'PUT' && query.size === 0) operation = 'CreateBucket';
    else if (method === 'DELETE' && query.size === 0) operation = 'DeleteBucket';
    else if (method === 'POST' && has('delete')) operation = 'DeleteObjects';
  } else if (method === 'GET') operation = has('uploadId') ? 'ListParts' : 'GetObject';
  else if (method === 'HEAD') operation = 'HeadObject';
  else if (method === 'PUT') {
    if (has('partNumber') && has('uploadId')) operation = copy ? 'UploadPartCopy' : 'UploadPart';
    else operation = copy ? 'CopyObject' : 'PutObject';
  } else if (method === 'POST') operation = has('uploads') ? 'CreateMultipartUpload' : has('uploadId') ? 'CompleteMultipartUpload' : 'Other';
  else if (method === 'DELETE') operation = has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
  return { method, operation, bucket, key, query };
}

/** What the proxy does to a request a rule matched. */
export type FaultAction =
  /** Answer with an S3 XML error (the request body is read first, as S3 would). */
  | { kind: 'error'; status: 400 | 403 | 500 | 503; code?: 'SlowDown' | 'InternalError' | 'ServiceUnavailable' | 'AccessDenied' | 'MalformedXML' }
  /** Forward the request after a delay. */
  | { kind: 'latency'; ms: number }
  /** Reset the connection (TCP RST) without answering. */
  | { kind: 'reset' }
  /**
   * Forward, send the headers and `afterBytes` of the body (default: half of it), then reset the
   * connection (`reset-body`), close it cleanly short of Content-Length (`truncate-body`) or send
   * nothing more while keeping it open (`stall-body`).
   */
  | { kind: 'reset-body' | 'truncate-body' | 'stall-body'; afterBytes?: number }
  /**
   * Forward the request with one byte of its body changed (at `atByte`, default the middle of its
   * Content-Length; same length), and answer as S3 does when the x-amz-checksum-* the request
   * carries does not match the bytes: 400 BadDigest, nothing stored. The stores the tests run
   * (s3rver, moto) keep checksums without recomputing them, so the proxy checks in their place:
   * the request goes on to the store only when its checksum header matches the bytes.
   */
  | { kind: 'corrupt-body'; atByte?: number };

export interface FaultRule {
  /** One operation or several; omitted: any. */
  operation?: S3Operation | S3Operation[];
  method?: string;
  /** Matched against the decoded key: a RegExp, or a substring. */
  key?: RegExp | string;
  /** Matched against the raw query string. */
  query?: RegExp;
  /** Only the nth, 2nth, 3nth… matching request is faulted (1-based; default 1: every one). */
  every?: number;
  /** The first `skip` matching requests pass untouched. */
  skip?: number;
  /** Fault with this probability (0..1) instead of by count. */
  probability?: number;
  /** At most this many faults from this rule. */
  times?: number;
  /**
   * Fault each distinct request (method, key and query) at most once: its retries pass, and do not
   * count towards `every`. How "answered 503 once" is expressed.
   */
  oncePerRequest?: boolean;
  action: FaultAction;
}

/** A rule installed on the proxy, with counters a test can assert on. */
export class ActiveRule {
  /** Requests the rule matched. */
  matched = 0;
  /** Requests the rule faulted. */
  fired = 0;
  private readonly faulted = new Set<string>();
  constructor(readonly rule: FaultRule) {}

  /** Whether this request is faulted (counts it as matched when it matches). */
  decide(request: ClassifiedRequest, random: () => number): boolean {
    const r = this.rule;
    if (r.method && r.method !== request.method) return false;
    if (r.operation) {
      const ops = Array.isArray(r.operation) ? r.operation : [r.operation];
      if (!ops.includes(request.operation)) return false;
    }
    if (r.key !== undefined && !(typeof r.key === 'string' ? request.key.includes(r.key) : r.key.test(request.key))) return false;
    if (r.query && !r.query.test(request.query.toString())) return false;
    const identity = `${request.method} ${request.key} ${request.query.toString()}`;
    if (r.oncePerRequest && this.faulted.has(identity)) return false;
    this.matched++;
    if (r.times !== undefined && this.fired >= r.times) return false;
    if (this.matched <= (r.skip ?? 0)) return false;
    const fire = r.probability !== undefined ? random() < r.probability : (this.matched - (r.skip ?? 0)) % (r.every ?? 1) === 0;
    if (fire) {
      this.fired++;
      if (r.oncePerRequest) this.faulted.add(identity);
    }
    return fire;
  }
}

const MESSAGES: Record<string, string> = {
  SlowDown: 'Please reduce your request rate.',
  InternalError: 'We encountered an internal error. Please try again.',
  ServiceUnavailable: 'Service is unable to handle request.',
  BadDigest: 'The checksum you specified did not match the calculated checksum.',
  AccessDenied: 'Access Denied',
  MalformedXML: 'The XML you provided was not well-formed or did not validate against our published schema',
};

/** An S3 error document as S3 sends it. */
export function s3ErrorXml(code: string, resource: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${MESSAGES[code] ?? code}</Message>` +
    `<Resource>${resource.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</Resource>` +
    `<RequestId>fault-${Math.random().toString(16).slice(2, 10)}</RequestId></Error>`
  );
}
