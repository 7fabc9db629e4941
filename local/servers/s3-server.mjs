// The S3-compatible server the tests talk to, run as its own process (see s3.ts) so that a test
// can kill it mid-upload. fauxqs (ESM-only, Node >= 22) serves S3 on 127.0.0.1 and a random port;
// it prints one JSON line {"port": n} once listening and exits when its stdin closes, so it
// never outlives the process that started it.
//
// `lifeboat local up` runs it as a long-lived server instead (LIFEBOAT_S3_DATA_DIR): its state
// is loaded from and kept in that directory (s3-persistence.mjs), it listens on
// LIFEBOAT_S3_PORT when set, writes {"pid", "port"} to server.json there once listening, and
// stops on SIGTERM/SIGINT only, after writing its state.
//
// fauxqs lacks S3 behaviours Lifeboat relies on; they are emulated here and in s3-versioning.mjs,
// after AWS's documented semantics, and nowhere else:
// - PutObject with `If-None-Match: *` answers 412 PreconditionFailed when the key exists (its
//   current version exists and is not a delete marker);
// - CompleteMultipartUpload with `If-None-Match: *` answers 412 when the key exists (the upload
//   stays open, as on S3, so the caller can abort it);
// - ListMultipartUploads (GET /<bucket>?uploads) lists the uploads in progress;
// - ListObjects(V2) lists keys in S3's UTF-8 binary order (fauxqs sorted with localeCompare but
//   paged byte-wise, so a listing longer than a page lost keys);
// - bucket versioning (s3-versioning.mjs): Put/GetBucketVersioning (Enabled, Suspended; objects
//   from before become null versions; a suspended bucket writes the null version); every
//   PutObject, CopyObject and CompleteMultipartUpload of a versioned bucket creates a version
//   (x-amz-version-id); GET/HEAD `versionId` (NoSuchVersion 404 for an unknown id,
//   InvalidArgument 400 for a malformed one, 405 MethodNotAllowed for a delete marker's id;
//   404 NoSuchKey with x-amz-delete-marker when the current version is a marker); DeleteObject
//   adds a delete marker, or with `versionId` removes that version for good (an unknown one:
//   204, as S3); DeleteObjects with per-object VersionId, Deleted/DeleteMarker/Error entries
//   and Quiet; CopyObject from `?versionId=` (x-amz-copy-source-version-id);
//   ListObjectVersions (prefix, delimiter, key-marker, version-id-marker, max-keys, url
//   encoding); ListObjectsV2 shows only keys whose current version is not a delete marker; a
//   bucket holding only markers or old versions is not empty (BucketNotEmpty);
// - Object Lock (s3-versioning.mjs): CreateBucket with x-amz-bucket-object-lock-enabled (hence
//   versioned, never suspended); Put/GetObjectLockConfiguration with a default retention
//   (Days or Years; turning Object Lock on needs versioning Enabled, 409 InvalidBucketState,
//   as S3); lock headers on PutObject, CopyObject and CreateMultipartUpload (the upload's lock
//   goes to the version its completion creates; refused by a versioned bucket without Object
//   Lock, 400 InvalidRequest, but ignored as before by a bucket whose versioning was never set,
//   where S3 would refuse them too), else the default retention from the version's creation
//   time; GET/HEAD answer the lock headers; Get/PutObjectRetention (extend always; shorten,
//   remove or turn GOVERNANCE into COMPLIANCE only with x-amz-bypass-governance-retention;
//   COMPLIANCE never, 403 AccessDenied); Get/PutObjectLegalHold; a version under retention or
//   legal hold is not deleted for good (DeleteObject, DeleteObjects: 403 AccessDenied;
//   GOVERNANCE yields to the bypass header, COMPLIANCE and a legal hold never); a delete marker
//   may always be added.
// Not emulated: MFA delete, Content-MD5 being required with Object Lock, lifecycle rules,
// replication, x-amz-object-lock-event-hold, Owner in version listings, object tagging/ACLs
// (refused with 501 on a versioned bucket rather than stored as a version), UploadPartCopy.
// And it works around one fauxqs bug: its CompleteMultipartUpload parser needs <PartNumber> and
// <ETag> adjacent, so a part list carrying per-part checksums (as S3 clients send) parsed as no
// parts and committed an EMPTY object. Checksum elements are stripped before fauxqs parses.
// Two costs are cut from CompleteMultipartUpload, which the worker's commit waits for while
// this server shares its two cores: the multipart ETag is built from the MD5s the parts already
// have (their ETags) instead of hashing every part again, and the parts are joined into one
// buffer on the object's first read instead of at once (fauxqs serves objects from one buffer).
// A 200 MB upload: 0.3 s of MD5 and 0.5 s of copying into freshly faulted pages, gone from the
// commit.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import process from 'node:process';
import { URL } from 'node:url';
import { createPersistence } from './s3-persistence.mjs';
import { createVersioning } from './s3-versioning.mjs';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const appUrl = import.meta.resolve('fauxqs');
const { buildApp } = await import(appUrl);
const { S3Store } = await import(new URL('./s3/s3Store.js', appUrl).href);
const { S3Error } = await import(new URL('./common/errors.js', appUrl).href);

const store = new S3Store();

// fauxqs 1.9's S3Store.completeMultipartUpload, the same checks and result, without re-hashing.
store.completeMultipartUpload = function completeMultipartUpload(uploadId, partSpecs) {
  const upload = this.multipartUploads.get(uploadId);
  if (!upload) {
    throw new S3Error('NoSuchUpload', 'The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', 404);
  }
  const objects = this.buckets.get(upload.bucket);
  if (!objects) throw new S3Error('NoSuchBucket', `The specified bucket does not exist: ${upload.bucket}`, 404);
  const parts = partSpecs.map((spec, i) => {
    if (i > 0 && spec.partNumber <= partSpecs[i - 1].partNumber) {
      throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.', 400);
    }
    const part = upload.parts.get(spec.partNumber);
    if (!part || spec.etag.replaceAll('"', '') !== part.etag.replaceAll('"', '')) {
      throw new S3Error('InvalidPart', "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.", 400);
    }
    return part;
  });
  if (parts.slice(0, -1).some((part) => part.body.length < 5 * 1024 * 1024)) {
    throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size', 400);
  }
  const digests = Buffer.concat(parts.map((part) => Buffer.from(part.etag.replaceAll('"', ''), 'hex')));
  let bodies = parts.map((part) => part.body);
  let body;
  const obj = {
    key: upload.key,
    get body() {
      if (body === undefined) {
        body = Buffer.concat(bodies);
        bodies = undefined;
      }
      return body;
    },
    contentType: upload.contentType,
    contentLength: bodies.reduce((sum, part) => sum + part.length, 0),
    // GET/HEAD ?partNumber=N read the parts back as S3 serves them (what replication copies part for part).
    partSizes: bodies.map((part) => part.length),
    etag: `"${createHash('md5').update(digests).digest('hex')}-${parts.length}"`,
    lastModified: new Date(),
    metadata: upload.metadata,
  };
  objects.set(upload.key, obj);
  this.multipartUploads.delete(uploadId);
  this.multipartUploadsByBucket.get(upload.bucket)?.delete(uploadId);
  return obj;
};
// S3 lists keys in UTF-8 binary order. Comparing UTF-16 code units is the same order except
// that surrogates (code points above U+FFFF) must sort after U+E000..U+FFFF; this maps them so.
function compareKeys(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800) x += x < 0xe000 ? 0x2000 : -0x800;
      if (y >= 0xd800) y += y < 0xe000 ? 0x2000 : -0x800;
      return x - y;
    }
  }
  return a.length - b.length;
}

// fauxqs 1.9's S3Store.listObjects sorted with localeCompare (`a`, `B`, `c`) but compared the
// start-after key byte-wise, so a listing longer than one page lost keys. The same listing in
// S3's order throughout.
store.listObjects = function listObjects(bucket, options) {
  const objectsMap = this.buckets.get(bucket);
  if (!objectsMap) throw new S3Error('NoSuchBucket', `The specified bucket does not exist: ${bucket}`, 404);
  const prefix = options?.prefix ?? '';
  const delimiter = options?.delimiter;
  const maxKeys = options?.maxKeys ?? 1000;
  const startAfter = options?.startAfter ?? options?.marker ?? '';
  const sorted = [...objectsMap.values()].filter((obj) => obj.key.startsWith(prefix)).sort((a, b) => compareKeys(a.key, b.key));
  const objects = [];
  const commonPrefixes = new Set();
  let count = 0;
  let isTruncated = false;
  for (const obj of sorted) {
    if (startAfter && compareKeys(obj.key, startAfter) <= 0) continue;
    if (delimiter) {
      const rest = obj.key.slice(prefix.length);
      const at = rest.indexOf(delimiter);
      if (at >= 0) {
        const commonPrefix = prefix + rest.slice(0, at + delimiter.length);
        if (startAfter && compareKeys(commonPrefix, startAfter) <= 0) continue;
        if (!commonPrefixes.has(commonPrefix)) {
          if (count >= maxKeys) {
            isTruncated = true;
            break;
          }
          commonPrefixes.add(commonPrefix);
          count++;
        }
        continue;
      }
    }
    if (count >= maxKeys) {
      isTruncated = true;
      break;
    }
    objects.push(obj);
    count++;
  }
  return { objects, commonPrefixes: [...commonPrefixes].sort(compareKeys), isTruncated };
};

const app = buildApp({ logger: false, stores: { s3Store: store } });
// fauxqs caps every request body at 11 MiB; real clients send more in one PUT (restic's packs are
// 16-19 MB, S3 takes up to 5 GiB). The buffer parser again, with a cap of its own: the server
// holds objects in memory, so not 5 GiB.
export const MAX_REQUEST_BODY = 256 * 1024 * 1024;
app.removeContentTypeParser('*');
app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_REQUEST_BODY }, (_request, body, done) => done(null, body));

const escapeXml = (text) =>
  String(text).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&apos;');

const versioning = createVersioning({ store, S3Error, compareKeys, escapeXml });

function sendError(reply, status, code, message, extra = '') {
  reply
    .status(status)
    .header('content-type', 'application/xml')
    .send(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${escapeXml(message)}</Message>${extra}</Error>`);
}

// fauxqs keeps objects per bucket in a Map; these are its (unexported) internals in 1.9.x.
const objectExists = (bucket, key) => store.buckets.get(bucket)?.has(key) === true;

function preconditionFailed(reply) {
  sendError(reply, 412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', '<Condition>If-None-Match</Condition>');
}

function listMultipartUploads(bucket, query, reply) {
  if (!store.hasBucket(bucket)) {
    sendError(reply, 404, 'NoSuchBucket', 'The specified bucket does not exist');
    return;
  }
  const prefix = query.prefix ?? '';
  const uploads = [...store.multipartUploads.values()]
    .filter((upload) => upload.bucket === bucket && upload.key.startsWith(prefix))
    .sort((a, b) => (a.key === b.key ? a.initiated - b.initiated : a.key < b.key ? -1 : 1));
  const entries = uploads.map(
    (upload) =>
      `<Upload><Key>${escapeXml(upload.key)}</Key><UploadId>${escapeXml(upload.uploadId)}</UploadId>` +
      `<StorageClass>STANDARD</StorageClass><Initiated>${upload.initiated.toISOString()}</Initiated></Upload>`,
  );
  reply
    .status(200)
    .header('content-type', 'application/xml')
    .send(
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Bucket>${escapeXml(bucket)}</Bucket><Prefix>${escapeXml(prefix)}</Prefix><MaxUploads>1000</MaxUploads>` +
        `<IsTruncated>false</IsTruncated>${entries.join('')}</ListMultipartUploadsResult>`,
    );
}

app.addHook('preHandler', async (request, reply) => {
  const bucket = request.params?.bucket;
  if (!bucket) return;
  const key = request.params['*'] ?? '';
  const query = request.query ?? {};
  const ifNoneMatch = request.headers['if-none-match'];

  if (request.method === 'POST' && query.uploadId && Buffer.isBuffer(request.body)) {
    request.body = Buffer.from(request.body.toString('utf8').replace(/<(Checksum[A-Za-z0-9]+)>[^<]*<\/\1>/g, ''));
  }
  if (request.method === 'GET' && key === '' && 'uploads' in query) {
    listMultipartUploads(bucket, query, reply);
    return reply;
  }
  // "Exists" is fauxqs's Map, which holds a key's current version unless it is a delete marker.
  if (ifNoneMatch === '*' && key !== '') {
    if (request.method === 'PUT' && !query.uploadId && !request.headers['x-amz-copy-source']) {
      if (objectExists(bucket, key)) {
        preconditionFailed(reply);
        return reply;
      }
    }
    if (request.method === 'POST' && query.uploadId) {
      const upload = store.multipartUploads.get(query.uploadId);
      if (upload && objectExists(upload.bucket, upload.key)) {
        preconditionFailed(reply);
        return reply;
      }
    }
  }
  if (versioning.handle(request, reply, bucket, key)) return reply;
});

const dataDir = process.env.LIFEBOAT_S3_DATA_DIR;
const persistence = dataDir ? createPersistence({ dir: dataDir, store, versioning }) : undefined;
if (persistence) {
  persistence.load();
  const MUTATING = new Set(['PUT', 'POST', 'DELETE']);
  app.addHook('onResponse', async (request) => {
    if (MUTATING.has(request.method)) persistence.changed();
  });
}

await app.listen({ port: Number(process.env.LIFEBOAT_S3_PORT ?? 0), host: '127.0.0.1' });
const { port } = app.server.address();
process.stdout.write(`${JSON.stringify({ port })}\n`);
if (dataDir) writeFileSync(join(dataDir, 'server.json'), `${JSON.stringify({ pid: process.pid, port })}\n`);

let stopping;
const shutdown = () => {
  stopping ??= (async () => {
    try {
      await app.close();
      await persistence?.flush();
    } catch (error) {
      process.stderr.write(`local S3: ${error.message}\n`);
      process.exitCode = 1;
    } finally {
      if (dataDir) rmSync(join(dataDir, 'server.json'), { force: true });
    }
    process.exit();
  })();
};
if (!dataDir) {
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.resume();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
