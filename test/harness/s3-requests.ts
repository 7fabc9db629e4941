/**
 * Requests a client made on the wire (recorded by the TLS front, local/servers/s3-tls.ts) as the
 * SDK calls they are, so that local/iam can evaluate them against the synthesized policies.
 */
import type { RecordedRequest } from './s3-tls';

export interface RecordedCall {
  readonly command: string;
  readonly input: Record<string, unknown>;
}

/**
 * The call a path-style request is, on `bucket` (the synthesized bucket, not the local one). A
 * multi-object delete (POST ?delete) names its keys in the body, which is not recorded: it comes
 * back as DeleteObjects of no key, and the caller supplies the keys (e.g. those gone after it).
 */
export function recordedCall(request: RecordedRequest, bucket: string): RecordedCall {
  const url = new URL(request.path, 'https://localhost');
  const [, , ...rest] = decodeURIComponent(url.pathname).split('/');
  const key = rest.join('/');
  const q = url.searchParams;
  if (request.method === 'GET' && key === '') return { command: 'ListObjectsV2', input: { Bucket: bucket, Prefix: q.get('prefix') ?? '', ...(q.has('delimiter') ? { Delimiter: q.get('delimiter') } : {}) } };
  if (request.method === 'POST' && key === '' && q.has('delete')) return { command: 'DeleteObjects', input: { Bucket: bucket, Delete: { Objects: [] } } };
  const object = { Bucket: bucket, Key: key, ...(q.has('versionId') ? { VersionId: q.get('versionId') } : {}) };
  if (request.method === 'GET') return { command: 'GetObject', input: object };
  if (request.method === 'HEAD') return { command: 'HeadObject', input: object };
  if (request.method === 'PUT' && q.has('partNumber')) return { command: 'UploadPart', input: object };
  if (request.method === 'PUT') return { command: 'PutObject', input: object };
  if (request.method === 'POST' && q.has('uploads')) return { command: 'CreateMultipartUpload', input: object };
  if (request.method === 'POST' && q.has('uploadId')) return { command: 'CompleteMultipartUpload', input: object };
  if (request.method === 'DELETE' && q.has('uploadId')) return { command: 'AbortMultipartUpload', input: object };
  if (request.method === 'DELETE') return { command: 'DeleteObject', input: object };
  throw new Error(`a recorded request this harness cannot map to an SDK call: ${request.method} ${request.path}`);
}
