// Bucket versioning and Object Lock for the local S3 server (s3-server.mjs), after AWS's
// documented S3 semantics. fauxqs 1.9 has neither.
//
// fauxqs keeps one object per key in a per-bucket Map; that Map stays "the current version of
// each key that is not a delete marker", so fauxqs's own GET, HEAD, ListObjects(V2) and
// If-None-Match checks keep working unchanged. The history of a versioned bucket (every version
// and delete marker, newest first, with its retention and legal hold) lives here. Requests that
// touch versions are handled here, from the server's preHandler hook: some whole (subresources,
// listing, deletes), the rest by calling fauxqs's own action (GetObject's ranges and
// conditionals, PutObject's body decoding, CopyObject, CompleteMultipartUpload's parsing) with
// a per-request view of the store whose methods pick or record the version.
// A bucket whose versioning was never set is left to fauxqs, except for what only versioning
// defines (versionId=null, the subresources, Object Lock headers, which S3 refuses there).
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { URL, URLSearchParams } from 'node:url';

const appUrl = import.meta.resolve('fauxqs');
const action = async (name) => (await import(new URL(`./s3/actions/${name}.js`, appUrl).href))[name];
const [getObjectAction, headObjectAction, putObjectAction, createMultipartUploadAction, completeMultipartUploadAction] = await Promise.all(
  ['getObject', 'headObject', 'putObject', 'createMultipartUpload', 'completeMultipartUpload'].map(action),
);
const { decodeAwsChunked } = await import(new URL('./s3/chunkedEncoding.js', appUrl).href);

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const LOCKED = 'Access Denied because object protected by object lock.';
const NO_LOCK_CONFIGURATION = 'Bucket is missing Object Lock Configuration';
const MALFORMED = 'The XML you provided was not well-formed or did not validate against our published schema';
const MODES = new Set(['GOVERNANCE', 'COMPLIANCE']);
/**
 * Local only: the header with which the local replicator (standing in for S3 replication) asks
 * that a replica keep its source version's id, as S3 replication does. No client of AWS sends it.
 */
export const REPLICA_HEADER = 'x-lifeboat-replica-of-version';

/**
 * @param {{ store: any, S3Error: any, compareKeys: (a: string, b: string) => number, escapeXml: (text: unknown) => string }} deps
 */
export function createVersioning({ store, S3Error, compareKeys, escapeXml }) {
  /** bucket -> { versioning: 'Enabled' | 'Suspended' | undefined, objectLock: boolean, defaultRetention?: { mode, days?, years? } } */
  const buckets = new Map();
  /** bucket -> Map(key -> versions, newest first). Only for buckets whose versioning was ever set. */
  const histories = new Map();
  let sequence = 0;

  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  // 32 characters as S3's: a sequence number (base 36, 8 characters) then 24 random ones. The
  // sequence orders a key's versions, so a listing resumes at the right place even when the
  // version its marker names was deleted between two pages.
  const VERSION_ID = /^[0-9a-z]{8}[A-Za-z0-9]{24}$/;
  // Well formed: any id shaped as S3's (32 characters of [A-Za-z0-9._]) answers NoSuchVersion
  // when unknown; anything else is InvalidArgument, as S3 answers an id it cannot decode.
  const WELL_FORMED = /^[A-Za-z0-9._]{32}$/;
  function newVersionId(seq) {
    const random = randomBytes(24);
    let tail = '';
    for (const byte of random) tail += ALPHABET[byte % ALPHABET.length];
    return seq.toString(36).padStart(8, '0') + tail;
  }
  const seqOf = (versionId) => (VERSION_ID.test(versionId) ? parseInt(versionId.slice(0, 8), 36) : undefined);
  const validVersionId = (versionId) => versionId === 'null' || WELL_FORMED.test(versionId);

  const state = (bucket) => buckets.get(bucket);
  const isVersioned = (bucket) => state(bucket)?.versioning !== undefined;
  const lockEnabled = (bucket) => state(bucket)?.objectLock === true;
  const objectsOf = (bucket) => {
    const objects = store.buckets.get(bucket);
    if (!objects) throw new S3Error('NoSuchBucket', 'The specified bucket does not exist', 404, `/${bucket}`);
    return objects;
  };

  function newVersion(obj, { versionId, deleteMarker = false, lastModified } = {}) {
    const seq = ++sequence;
    return {
      versionId: versionId ?? newVersionId(seq),
      seq,
      deleteMarker,
      obj,
      lastModified: lastModified ?? obj?.lastModified ?? new Date(),
      retention: undefined,
      legalHold: undefined,
    };
  }

  /** The key's versions, newest first; in an unversioned bucket its object as the null version. */
  function versionsOf(bucket, key) {
    const history = histories.get(bucket);
    if (history) return history.get(key) ?? [];
    const obj = objectsOf(bucket).get(key);
    return obj ? [{ versionId: 'null', seq: 0, deleteMarker: false, obj, lastModified: obj.lastModified }] : [];
  }

  /** fauxqs's Map follows the newest version: the object, or nothing under a delete marker. */
  function syncCurrent(bucket, key) {
    const history = histories.get(bucket);
    const versions = history.get(key) ?? [];
    if (versions.length === 0) history.delete(key);
    const objects = objectsOf(bucket);
    if (versions[0] && !versions[0].deleteMarker) objects.set(key, versions[0].obj);
    else objects.delete(key);
  }

  /** Adds a version (or marker) on top: in a suspended bucket it replaces the null version. */
  function pushVersion(bucket, key, version) {
    const history = histories.get(bucket);
    const versions = (history.get(key) ?? []).filter((existing) => version.versionId !== 'null' || existing.versionId !== 'null');
    versions.unshift(version);
    history.set(key, versions);
    syncCurrent(bucket, key);
  }

  function enableHistory(bucket) {
    if (histories.has(bucket)) return;
    const history = new Map();
    histories.set(bucket, history);
    // Objects from before versioning are their keys' null versions.
    for (const [key, obj] of objectsOf(bucket)) history.set(key, [newVersion(obj, { versionId: 'null' })]);
  }

  const activeRetention = (version, now = Date.now()) =>
    version.retention && version.retention.retainUntil.getTime() > now ? version.retention : undefined;

  /** Why deleting this version permanently is refused, or undefined. */
  function deleteRefusal(version, bypass) {
    if (version.legalHold === 'ON') return LOCKED;
    const retention = activeRetention(version);
    if (retention && (retention.mode === 'COMPLIANCE' || !bypass)) return LOCKED;
    return undefined;
  }

  // --- request helpers ---------------------------------------------------------------------

  const header = (request, name) => {
    const value = request.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const bypassGovernance = (request) => String(header(request, 'x-amz-bypass-governance-retention') ?? '').toLowerCase() === 'true';

  function bodyText(request) {
    let body = request.body;
    if (body === undefined || body === null) return '';
    if (!Buffer.isBuffer(body)) body = Buffer.from(String(body));
    if (String(header(request, 'content-encoding') ?? '').includes('aws-chunked')) body = decodeAwsChunked(body);
    return body.toString('utf8');
  }

  const unescapeXml = (text) =>
    text.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&apos;', "'").replaceAll('&amp;', '&');
  const element = (xml, name) => {
    const match = new RegExp(`<${name}(?:\\s[^>]*)?>([\\s\\S]*?)</${name}>`).exec(xml);
    return match ? unescapeXml(match[1].trim()) : undefined;
  };

  function parseDate(text, what) {
    const date = new Date(text);
    if (text === undefined || text === '' || Number.isNaN(date.getTime())) {
      throw new S3Error('InvalidArgument', `The ${what} is not a valid date`, 400);
    }
    return date;
  }

  function checkVersionId(versionId) {
    if (!validVersionId(versionId)) throw new S3Error('InvalidArgument', 'Invalid version id specified', 400);
  }

  /**
   * The version a GET/HEAD-like request addresses (versionId or the current one). Throws as S3:
   * NoSuchKey (404, with x-amz-delete-marker when the current version is a marker),
   * NoSuchVersion (404), InvalidArgument (400) for a malformed id, MethodNotAllowed (405) for a
   * marker's own id.
   */
  function resolveVersion(bucket, key, versionId, reply, method) {
    const versions = versionsOf(bucket, key);
    if (versionId === undefined) {
      const current = versions[0];
      if (!current) throw new S3Error('NoSuchKey', 'The specified key does not exist.', 404, `/${bucket}/${key}`);
      if (current.deleteMarker) {
        reply.header('x-amz-delete-marker', 'true');
        reply.header('x-amz-version-id', current.versionId);
        throw new S3Error('NoSuchKey', 'The specified key does not exist.', 404, `/${bucket}/${key}`);
      }
      return current;
    }
    checkVersionId(versionId);
    const version = versions.find((candidate) => candidate.versionId === versionId);
    if (!version) throw new S3Error('NoSuchVersion', 'The specified version does not exist.', 404, `/${bucket}/${key}`);
    if (version.deleteMarker) {
      reply.header('x-amz-delete-marker', 'true');
      reply.header('x-amz-version-id', version.versionId);
      reply.header('last-modified', version.lastModified.toUTCString());
      reply.header('allow', 'DELETE');
      throw new MethodNotAllowed(method);
    }
    return version;
  }

  class MethodNotAllowed extends S3Error {
    constructor(method) {
      super('MethodNotAllowed', 'The specified method is not allowed against this resource.', 405);
      this.method = method;
    }
    toXml() {
      return (
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>MethodNotAllowed</Code><Message>${escapeXml(this.message)}</Message>` +
        `<Method>${escapeXml(this.method)}</Method><ResourceType>DeleteMarker</ResourceType></Error>`
      );
    }
  }

  /** The lock a write asks for in its headers, validated as S3 does. */
  function requestedLock(request, bucket) {
    const mode = header(request, 'x-amz-object-lock-mode');
    const until = header(request, 'x-amz-object-lock-retain-until-date');
    const legalHold = header(request, 'x-amz-object-lock-legal-hold');
    if (mode === undefined && until === undefined && legalHold === undefined) return {};
    // S3 refuses lock headers without Object Lock. A bucket whose versioning was never set
    // ignores them, as fauxqs always did: the project's tests write locked uploads to such
    // buckets and rely on it.
    if (!lockEnabled(bucket) && !isVersioned(bucket)) return {};
    if (!lockEnabled(bucket)) throw new S3Error('InvalidRequest', NO_LOCK_CONFIGURATION, 400);
    const lock = {};
    if (mode !== undefined || until !== undefined) {
      if (mode === undefined || until === undefined) {
        throw new S3Error('InvalidArgument', 'x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied', 400);
      }
      if (!MODES.has(mode)) throw new S3Error('InvalidArgument', 'Unknown wormMode directive.', 400);
      const retainUntil = parseDate(until, 'retain until date');
      if (retainUntil.getTime() <= Date.now()) throw new S3Error('InvalidArgument', 'The retain until date must be in the future!', 400);
      lock.retention = { mode, retainUntil };
    }
    if (legalHold !== undefined) {
      if (legalHold !== 'ON' && legalHold !== 'OFF') throw new S3Error('InvalidArgument', 'Legal Hold must be either of \'ON\' or \'OFF\'', 400);
      lock.legalHold = legalHold;
    }
    return lock;
  }

  function defaultRetention(bucket, created) {
    const rule = state(bucket)?.defaultRetention;
    if (!lockEnabled(bucket) || !rule) return undefined;
    const retainUntil = new Date(created.getTime());
    if (rule.days !== undefined) retainUntil.setTime(retainUntil.getTime() + rule.days * 86_400_000);
    else retainUntil.setUTCFullYear(retainUntil.getUTCFullYear() + rule.years);
    return { mode: rule.mode, retainUntil };
  }

  /**
   * Records a write fauxqs just stored as the key's new version; headers as S3 answers them.
   * `replicaOf`: the source version's id, for a write of the local replicator (REPLICA_HEADER):
   * S3 replication gives a replica the version id of its source, and marks it REPLICA.
   */
  function recordWrite(bucket, key, obj, lock, reply, replicaOf) {
    if (!isVersioned(bucket)) return undefined;
    const version = newVersion(obj, { versionId: replicaOf ?? (state(bucket).versioning === 'Enabled' ? undefined : 'null') });
    version.retention = lock.retention ?? defaultRetention(bucket, obj.lastModified);
    version.legalHold = lock.legalHold;
    if (replicaOf) version.replica = true;
    pushVersion(bucket, key, version);
    reply.header('x-amz-version-id', version.versionId);
    return version;
  }

  /** The replica version id a local replicator's write asks for; refused outside a versioned bucket or when it is taken. */
  function replicaVersionOf(bucket, key, request) {
    const replicaOf = header(request, REPLICA_HEADER);
    if (replicaOf === undefined) return undefined;
    if (!isVersioned(bucket) || !VERSION_ID.test(replicaOf)) {
      throw new S3Error('InvalidArgument', `${REPLICA_HEADER} needs a versioned bucket and a version id made by this server`, 400);
    }
    if ((histories.get(bucket).get(key) ?? []).some((version) => version.versionId === replicaOf)) {
      throw new S3Error('InvalidRequest', `version ${replicaOf} of ${key} is already replicated`, 409);
    }
    return replicaOf;
  }

  /**
   * Fault injection (local only, POST /_lifeboat/tamper?bucket&key&versionId, body = the new
   * bytes): replaces the stored bytes of one version in place, as silent corruption of the
   * storage or a dump that wrote bad bytes would; its ETag and metadata stay. A multipart
   * object keeps its part layout as far as the new bytes reach (cut short, it ends in a shorter
   * last part): `?partNumber` reads, which replication makes, then serve exactly the stored bytes.
   */
  function tamper(request, reply) {
    const { bucket, key, versionId } = request.query;
    const objects = objectsOf(bucket);
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body ?? '');
    const damaged = (obj) => ({ ...obj, body, contentLength: body.length, partSizes: obj.partSizes && partsWithin(obj.partSizes, body.length) });
    if (isVersioned(bucket)) {
      const version = (histories.get(bucket).get(key) ?? []).find((candidate) => candidate.versionId === versionId);
      if (!version || version.deleteMarker) throw new S3Error('NoSuchVersion', 'The specified version does not exist.', 404);
      const current = objects.get(key) === version.obj;
      version.obj = damaged(version.obj);
      if (current) objects.set(key, version.obj);
    } else {
      const obj = objects.get(key);
      if (!obj) throw new S3Error('NoSuchKey', 'The specified key does not exist.', 404);
      objects.set(key, damaged(obj));
    }
    reply.status(204).send();
  }

  /** The part sizes of `sizes` that `length` bytes fill, the last one cut (or grown) to end with them. */
  function partsWithin(sizes, length) {
    if (length === 0) return undefined;
    const fitted = [];
    let left = length;
    for (const size of sizes) {
      if (left === 0) break;
      fitted.push(Math.min(left, size));
      left -= fitted[fitted.length - 1];
    }
    fitted[fitted.length - 1] += left;
    return fitted;
  }

  function versionHeaders(bucket, version, reply) {
    if (isVersioned(bucket)) reply.header('x-amz-version-id', version.versionId);
    if (version.replica) reply.header('x-amz-replication-status', 'REPLICA');
    if (version.retention) {
      reply.header('x-amz-object-lock-mode', version.retention.mode);
      reply.header('x-amz-object-lock-retain-until-date', version.retention.retainUntil.toISOString());
    }
    if (version.legalHold) reply.header('x-amz-object-lock-legal-hold', version.legalHold);
  }

  const xml = (reply, status, body) =>
    reply.status(status).header('content-type', 'application/xml').send(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);

  /** A view of fauxqs's store for one request: the same store with some methods replaced. */
  const view = (overrides) => Object.assign(Object.create(store), overrides);

  // --- bucket configuration ----------------------------------------------------------------

  function createLockedBucket(bucket, reply) {
    if (store.hasBucket(bucket)) {
      // What S3 answers outside us-east-1; there it answers 200 and changes nothing, which
      // would leave a caller asking for Object Lock with a bucket that has none.
      throw new S3Error('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', 409, `/${bucket}`);
    }
    store.createBucket(bucket);
    buckets.set(bucket, { versioning: 'Enabled', objectLock: true });
    enableHistory(bucket);
    reply.header('location', `/${bucket}`).status(200).send();
  }

  function putBucketVersioning(bucket, request, reply) {
    objectsOf(bucket);
    const status = element(bodyText(request), 'Status');
    if (status !== 'Enabled' && status !== 'Suspended') throw new S3Error('MalformedXML', MALFORMED, 400);
    const current = state(bucket) ?? { versioning: undefined, objectLock: false };
    if (current.objectLock && status !== 'Enabled') {
      throw new S3Error('InvalidBucketState', 'An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.', 409);
    }
    enableHistory(bucket);
    buckets.set(bucket, { ...current, versioning: status });
    reply.status(200).send();
  }

  function getBucketVersioning(bucket, reply) {
    objectsOf(bucket);
    const status = state(bucket)?.versioning;
    xml(reply, 200, `<VersioningConfiguration xmlns="${XMLNS}">${status ? `<Status>${status}</Status>` : ''}</VersioningConfiguration>`);
  }

  function putObjectLockConfiguration(bucket, request, reply) {
    objectsOf(bucket);
    const body = bodyText(request);
    const enabled = element(body, 'ObjectLockEnabled');
    const current = state(bucket);
    if (!current?.objectLock) {
      // S3 turns Object Lock on for an existing bucket only if its versioning is Enabled.
      if (current?.versioning !== 'Enabled') {
        throw new S3Error('InvalidBucketState', "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration", 409);
      }
      if (enabled !== 'Enabled') throw new S3Error('MalformedXML', MALFORMED, 400);
    } else if (enabled !== undefined && enabled !== 'Enabled') {
      throw new S3Error('MalformedXML', MALFORMED, 400);
    }
    let defaultRetention;
    const rule = element(body, 'Rule');
    if (rule !== undefined) {
      const retention = element(rule, 'DefaultRetention');
      const mode = retention === undefined ? undefined : element(retention, 'Mode');
      const days = retention === undefined ? undefined : element(retention, 'Days');
      const years = retention === undefined ? undefined : element(retention, 'Years');
      if (!MODES.has(mode) || (days === undefined) === (years === undefined)) throw new S3Error('MalformedXML', MALFORMED, 400);
      const period = Number(days ?? years);
      if (!Number.isInteger(period) || period <= 0) {
        throw new S3Error('InvalidArgument', 'Default retention period must be a positive integer value.', 400);
      }
      defaultRetention = days !== undefined ? { mode, days: period } : { mode, years: period };
    }
    buckets.set(bucket, { ...current, objectLock: true, defaultRetention });
    reply.status(200).send();
  }

  function getObjectLockConfiguration(bucket, reply) {
    objectsOf(bucket);
    const current = state(bucket);
    if (!current?.objectLock) {
      throw new S3Error('ObjectLockConfigurationNotFoundError', 'Object Lock configuration does not exist for this bucket', 404, `/${bucket}`);
    }
    const rule = current.defaultRetention;
    const period = rule ? (rule.days !== undefined ? `<Days>${rule.days}</Days>` : `<Years>${rule.years}</Years>`) : '';
    xml(
      reply,
      200,
      `<ObjectLockConfiguration xmlns="${XMLNS}"><ObjectLockEnabled>Enabled</ObjectLockEnabled>` +
        (rule ? `<Rule><DefaultRetention><Mode>${rule.mode}</Mode>${period}</DefaultRetention></Rule>` : '') +
        `</ObjectLockConfiguration>`,
    );
  }

  // --- retention and legal hold ------------------------------------------------------------

  function lockedVersion(bucket, key, request, reply) {
    objectsOf(bucket);
    if (!lockEnabled(bucket)) throw new S3Error('InvalidRequest', NO_LOCK_CONFIGURATION, 400);
    return resolveVersion(bucket, key, request.query.versionId, reply, request.method);
  }

  function getObjectRetention(bucket, key, request, reply) {
    const version = lockedVersion(bucket, key, request, reply);
    if (!version.retention) {
      throw new S3Error('NoSuchObjectLockConfiguration', 'The specified object does not have a ObjectLock configuration', 404, `/${bucket}/${key}`);
    }
    xml(
      reply,
      200,
      `<Retention xmlns="${XMLNS}"><Mode>${version.retention.mode}</Mode>` +
        `<RetainUntilDate>${version.retention.retainUntil.toISOString()}</RetainUntilDate></Retention>`,
    );
  }

  function putObjectRetention(bucket, key, request, reply) {
    const version = lockedVersion(bucket, key, request, reply);
    const body = bodyText(request);
    if (!/<Retention[\s>/]/.test(body)) throw new S3Error('MalformedXML', MALFORMED, 400);
    const mode = element(body, 'Mode');
    const until = element(body, 'RetainUntilDate');
    let next;
    if (mode !== undefined || until !== undefined) {
      if (!MODES.has(mode) || until === undefined) throw new S3Error('MalformedXML', MALFORMED, 400);
      const retainUntil = parseDate(until, 'retain until date');
      if (retainUntil.getTime() <= Date.now()) throw new S3Error('InvalidArgument', 'The retain until date must be in the future!', 400);
      next = { mode, retainUntil };
    }
    const existing = activeRetention(version);
    if (existing) {
      // Extending (same mode, a date no earlier) is always allowed. Anything else overrides the
      // retention: never under COMPLIANCE, only with the bypass header under GOVERNANCE (a
      // change from GOVERNANCE to COMPLIANCE counts, as S3 answers it).
      const extends_ = next !== undefined && next.mode === existing.mode && next.retainUntil.getTime() >= existing.retainUntil.getTime();
      if (!extends_ && (existing.mode === 'COMPLIANCE' || !bypassGovernance(request))) throw new S3Error('AccessDenied', LOCKED, 403);
    }
    version.retention = next;
    reply.status(200).send();
  }

  function getObjectLegalHold(bucket, key, request, reply) {
    const version = lockedVersion(bucket, key, request, reply);
    if (!version.legalHold) {
      throw new S3Error('NoSuchObjectLockConfiguration', 'The specified object does not have a ObjectLock configuration', 404, `/${bucket}/${key}`);
    }
    xml(reply, 200, `<LegalHold xmlns="${XMLNS}"><Status>${version.legalHold}</Status></LegalHold>`);
  }

  function putObjectLegalHold(bucket, key, request, reply) {
    const version = lockedVersion(bucket, key, request, reply);
    const status = element(bodyText(request), 'Status');
    if (status !== 'ON' && status !== 'OFF') throw new S3Error('MalformedXML', MALFORMED, 400);
    version.legalHold = status;
    reply.status(200).send();
  }

  // --- objects -----------------------------------------------------------------------------

  function getOrHead(bucket, key, request, reply) {
    objectsOf(bucket);
    const version = resolveVersion(bucket, key, request.query.versionId, reply, request.method);
    versionHeaders(bucket, version, reply);
    const obj = request.query.partNumber === undefined ? version.obj : partOf(version.obj, request, reply);
    const one = view({ getObject: () => obj, headObject: () => obj });
    (request.method === 'HEAD' ? headObjectAction : getObjectAction)(request, reply, one);
  }

  /**
   * `?partNumber=N` (GET and HEAD): that part of a multipart object, with `x-amz-mp-parts-count`,
   * as S3 serves it; part 1 of a single-part object is the whole object (no parts count).
   */
  function partOf(obj, request, reply) {
    const number = Number(request.query.partNumber);
    const sizes = obj.partSizes ?? [obj.contentLength];
    if (!Number.isInteger(number) || number < 1 || number > 10_000) throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', 400);
    if (number > sizes.length) throw new S3Error('InvalidPartNumber', 'The requested partnumber is not satisfiable', 416);
    if (obj.partSizes) reply.header('x-amz-mp-parts-count', String(sizes.length));
    const start = sizes.slice(0, number - 1).reduce((sum, size) => sum + size, 0);
    const size = sizes[number - 1];
    if (request.method === 'GET' && obj.partSizes) request.headers.range = `bytes=${start}-${start + size - 1}`;
    return request.method === 'HEAD' ? { ...obj, contentLength: size } : obj;
  }

  function putObject(bucket, key, request, reply) {
    objectsOf(bucket);
    const lock = requestedLock(request, bucket);
    const replicaOf = replicaVersionOf(bucket, key, request);
    const write = view({
      putObject(...args) {
        const obj = store.putObject(...args);
        recordWrite(bucket, key, obj, lock, reply, replicaOf);
        return obj;
      },
    });
    putObjectAction(request, reply, write);
  }

  /** `/bucket/key?versionId=…` (the key URL-encoded, as S3 takes it; a leading slash optional). */
  function parseCopySource(text) {
    const [path, query = ''] = String(text).split('?', 2);
    const decoded = decodeURIComponent(path.startsWith('/') ? path.slice(1) : path);
    const slash = decoded.indexOf('/');
    if (slash <= 0 || slash === decoded.length - 1) throw new S3Error('InvalidArgument', 'Invalid copy source object key', 400);
    const versionId = new URLSearchParams(query).get('versionId') ?? undefined;
    return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1), versionId };
  }

  function copyObject(bucket, key, request, reply) {
    objectsOf(bucket);
    const source = parseCopySource(header(request, 'x-amz-copy-source'));
    objectsOf(source.bucket);
    let sourceVersion;
    try {
      sourceVersion = resolveVersion(source.bucket, source.key, source.versionId, reply, 'GET');
    } catch (err) {
      reply.removeHeader('x-amz-delete-marker');
      reply.removeHeader('x-amz-version-id');
      reply.removeHeader('allow');
      reply.removeHeader('last-modified');
      if (err instanceof MethodNotAllowed) {
        throw new S3Error('InvalidRequest', 'The source of a copy request may not specifically refer to a delete marker by version id.', 400);
      }
      throw err;
    }
    const lock = requestedLock(request, bucket);
    if (isVersioned(source.bucket)) reply.header('x-amz-copy-source-version-id', sourceVersion.versionId);
    const copy = view({
      getObject: () => sourceVersion.obj,
      putObject(...args) {
        const obj = store.putObject(...args);
        recordWrite(bucket, key, obj, lock, reply);
        return obj;
      },
    });
    putObjectAction(request, reply, copy);
  }

  function createMultipartUpload(bucket, key, request, reply) {
    objectsOf(bucket);
    const lock = requestedLock(request, bucket);
    const replicaOf = replicaVersionOf(bucket, key, request);
    const create = view({
      createMultipartUpload(...args) {
        const uploadId = store.createMultipartUpload(...args);
        // The lock applies to the object the upload's completion creates; it goes with the upload.
        store.multipartUploads.get(uploadId).lock = lock;
        store.multipartUploads.get(uploadId).replicaOf = replicaOf;
        return uploadId;
      },
    });
    createMultipartUploadAction(request, reply, create);
  }

  function completeMultipartUpload(request, reply) {
    const complete = view({
      completeMultipartUpload(uploadId, parts) {
        const upload = store.multipartUploads.get(uploadId);
        const obj = store.completeMultipartUpload(uploadId, parts);
        recordWrite(upload.bucket, upload.key, obj, upload.lock ?? {}, reply, upload.replicaOf);
        return obj;
      },
    });
    completeMultipartUploadAction(request, reply, complete);
  }

  /**
   * One DeleteObject: a delete marker without a version id (in a versioned bucket), else the
   * version's permanent removal unless its lock forbids it. Returns what S3 reports of it.
   */
  function deleteOne(bucket, key, versionId, bypass) {
    if (versionId === undefined) {
      if (!isVersioned(bucket)) {
        store.deleteObject(bucket, key);
        return {};
      }
      const marker = newVersion(undefined, {
        deleteMarker: true,
        versionId: state(bucket).versioning === 'Enabled' ? undefined : 'null',
        lastModified: new Date(),
      });
      pushVersion(bucket, key, marker);
      return { deleteMarker: true, versionId: marker.versionId, markerCreated: true };
    }
    checkVersionId(versionId);
    if (!isVersioned(bucket)) {
      if (versionId === 'null') store.deleteObject(bucket, key);
      return { versionId };
    }
    const versions = histories.get(bucket).get(key) ?? [];
    const version = versions.find((candidate) => candidate.versionId === versionId);
    // Deleting a version that does not exist succeeds, as on S3.
    if (!version) return { versionId };
    const refusal = deleteRefusal(version, bypass);
    if (refusal) throw new S3Error('AccessDenied', refusal, 403);
    versions.splice(versions.indexOf(version), 1);
    syncCurrent(bucket, key);
    return { versionId, deleteMarker: version.deleteMarker };
  }

  function deleteObject(bucket, key, request, reply) {
    objectsOf(bucket);
    const result = deleteOne(bucket, key, request.query.versionId, bypassGovernance(request));
    if (result.deleteMarker) reply.header('x-amz-delete-marker', 'true');
    if (result.versionId !== undefined) reply.header('x-amz-version-id', result.versionId);
    reply.status(204).send();
  }

  function deleteObjects(bucket, request, reply) {
    objectsOf(bucket);
    const body = bodyText(request);
    const quiet = element(body, 'Quiet') === 'true';
    const bypass = bypassGovernance(request);
    const entries = [];
    for (const match of body.matchAll(/<Object>([\s\S]*?)<\/Object>/g)) {
      const key = element(match[1], 'Key');
      const versionId = element(match[1], 'VersionId');
      if (key === undefined) throw new S3Error('MalformedXML', MALFORMED, 400);
      const keyXml = `<Key>${escapeXml(key)}</Key>${versionId === undefined ? '' : `<VersionId>${escapeXml(versionId)}</VersionId>`}`;
      try {
        if (versionId !== undefined && !validVersionId(versionId)) throw new S3Error('NoSuchVersion', 'The specified version does not exist.', 404);
        const result = deleteOne(bucket, key, versionId, bypass);
        if (quiet) continue;
        const marker = result.deleteMarker
          ? `<DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>${escapeXml(result.versionId)}</DeleteMarkerVersionId>`
          : '';
        entries.push(`<Deleted>${keyXml}${marker}</Deleted>`);
      } catch (err) {
        if (!(err instanceof S3Error)) throw err;
        entries.push(`<Error>${keyXml}<Code>${err.code}</Code><Message>${escapeXml(err.message)}</Message></Error>`);
      }
    }
    xml(reply, 200, `<DeleteResult xmlns="${XMLNS}">${entries.join('')}</DeleteResult>`);
  }

  // --- ListObjectVersions ------------------------------------------------------------------

  function listObjectVersions(bucket, query, reply) {
    const objects = objectsOf(bucket);
    const prefix = query.prefix ?? '';
    const delimiter = query.delimiter || undefined;
    const keyMarker = query['key-marker'] ?? '';
    const versionIdMarker = query['version-id-marker'] ?? '';
    const maxKeys = query['max-keys'] === undefined ? 1000 : Number(query['max-keys']);
    const urlEncoded = query['encoding-type'] === 'url';
    if (query['encoding-type'] !== undefined && !urlEncoded) throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', 400);
    if (!Number.isInteger(maxKeys) || maxKeys < 0) throw new S3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range', 400);
    const limit = Math.min(maxKeys, 1000);
    if (versionIdMarker && !keyMarker) throw new S3Error('InvalidArgument', 'A version-id marker cannot be specified without a key marker.', 400);
    if (versionIdMarker) checkVersionId(versionIdMarker);
    // S3's url encoding percent-encodes UTF-8 bytes, `(` and `)` too (test_file(3).png ->
    // test_file%283%29.png), and leaves `/`.
    const percent = (text) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replaceAll('%2F', '/');
    const encode = (text) => escapeXml(urlEncoded ? percent(text) : text);

    const history = histories.get(bucket);
    const keys = [...(history ? history.keys() : objects.keys())].filter((key) => key.startsWith(prefix)).sort(compareKeys);
    const entries = [];
    const prefixes = new Set();
    let count = 0;
    let truncated = false;
    let last;
    outer: for (const key of keys) {
      const order = keyMarker ? compareKeys(key, keyMarker) : 1;
      if (order < 0 || (order === 0 && !versionIdMarker)) continue;
      if (delimiter) {
        const at = key.indexOf(delimiter, prefix.length);
        if (at >= 0) {
          const commonPrefix = key.slice(0, at + delimiter.length);
          if (prefixes.has(commonPrefix) || (keyMarker && compareKeys(commonPrefix, keyMarker) <= 0)) continue;
          if (count >= limit) {
            truncated = true;
            break;
          }
          prefixes.add(commonPrefix);
          count++;
          last = { key: commonPrefix };
          continue;
        }
      }
      const versions = versionsOf(bucket, key);
      let start = 0;
      if (order === 0) {
        const at = versions.findIndex((version) => version.versionId === versionIdMarker);
        const seq = seqOf(versionIdMarker);
        start = at >= 0 ? at + 1 : seq === undefined ? versions.length : versions.findIndex((version) => version.seq < seq);
        if (start < 0) start = versions.length;
      }
      for (let i = start; i < versions.length; i++) {
        if (count >= limit) {
          truncated = true;
          break outer;
        }
        const version = versions[i];
        const common =
          `<Key>${encode(key)}</Key><VersionId>${escapeXml(version.versionId)}</VersionId>` +
          `<IsLatest>${i === 0}</IsLatest><LastModified>${version.lastModified.toISOString()}</LastModified>`;
        entries.push(
          version.deleteMarker
            ? `<DeleteMarker>${common}</DeleteMarker>`
            : `<Version>${common}<ETag>${escapeXml(version.obj.etag)}</ETag><Size>${version.obj.contentLength}</Size><StorageClass>STANDARD</StorageClass></Version>`,
        );
        count++;
        last = { key, versionId: version.versionId };
      }
    }
    const next = truncated && last
      ? `<NextKeyMarker>${encode(last.key)}</NextKeyMarker>` + (last.versionId ? `<NextVersionIdMarker>${escapeXml(last.versionId)}</NextVersionIdMarker>` : '')
      : '';
    xml(
      reply,
      200,
      `<ListVersionsResult xmlns="${XMLNS}"><Name>${escapeXml(bucket)}</Name><Prefix>${encode(prefix)}</Prefix>` +
        `<KeyMarker>${encode(keyMarker)}</KeyMarker><VersionIdMarker>${escapeXml(versionIdMarker)}</VersionIdMarker>${next}` +
        `<MaxKeys>${maxKeys}</MaxKeys>${delimiter ? `<Delimiter>${encode(delimiter)}</Delimiter>` : ''}` +
        `${urlEncoded ? '<EncodingType>url</EncodingType>' : ''}<IsTruncated>${truncated}</IsTruncated>` +
        entries.join('') +
        [...prefixes].map((commonPrefix) => `<CommonPrefixes><Prefix>${encode(commonPrefix)}</Prefix></CommonPrefixes>`).join('') +
        `</ListVersionsResult>`,
    );
  }

  // --- the bucket's end --------------------------------------------------------------------

  // A bucket holding only delete markers or noncurrent versions is not empty on S3.
  const fauxqsDeleteBucket = store.deleteBucket.bind(store);
  store.deleteBucket = (name) => {
    if ((histories.get(name)?.size ?? 0) > 0) {
      throw new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty. You must delete all versions in the bucket.', 409);
    }
    fauxqsDeleteBucket(name);
    buckets.delete(name);
    histories.delete(name);
  };

  // --- routing -----------------------------------------------------------------------------

  /**
   * Handles the request if versioning or Object Lock concerns it; returns whether it did (the
   * reply is then sent). Others go on to fauxqs unchanged.
   */
  function route(request, reply, bucket, key) {
    const query = request.query ?? {};
    const method = request.method;
    if (key === '') {
      if (method === 'PUT') {
        if ('versioning' in query) return putBucketVersioning(bucket, request, reply), true;
        if ('object-lock' in query) return putObjectLockConfiguration(bucket, request, reply), true;
        if (String(header(request, 'x-amz-bucket-object-lock-enabled') ?? '').toLowerCase() === 'true') {
          return createLockedBucket(bucket, reply), true;
        }
      } else if (method === 'GET') {
        if ('versioning' in query) return getBucketVersioning(bucket, reply), true;
        if ('object-lock' in query) return getObjectLockConfiguration(bucket, reply), true;
        if ('versions' in query) return listObjectVersions(bucket, query, reply), true;
      } else if (method === 'POST' && 'delete' in query) {
        if (isVersioned(bucket) || /<VersionId>/.test(bodyText(request))) return deleteObjects(bucket, request, reply), true;
      }
      return false;
    }
    const versioned = isVersioned(bucket);
    if ('retention' in query) {
      if (method === 'GET') return getObjectRetention(bucket, key, request, reply), true;
      if (method === 'PUT') return putObjectRetention(bucket, key, request, reply), true;
    }
    if ('legal-hold' in query) {
      if (method === 'GET') return getObjectLegalHold(bucket, key, request, reply), true;
      if (method === 'PUT') return putObjectLegalHold(bucket, key, request, reply), true;
    }
    const hasLockHeaders = ['x-amz-object-lock-mode', 'x-amz-object-lock-retain-until-date', 'x-amz-object-lock-legal-hold'].some(
      (name) => header(request, name) !== undefined,
    );
    switch (method) {
      case 'GET':
      case 'HEAD':
        if (versioned || query.versionId !== undefined) return getOrHead(bucket, key, request, reply), true;
        return false;
      case 'PUT': {
        if (query.uploadId !== undefined) return false;
        if (versioned && ('tagging' in query || 'acl' in query)) {
          throw new S3Error('NotImplemented', 'A header or query you provided implies functionality that is not implemented', 501);
        }
        const copySource = header(request, 'x-amz-copy-source');
        if (copySource !== undefined) {
          const source = parseCopySource(copySource);
          if (versioned || isVersioned(source.bucket) || source.versionId !== undefined) return copyObject(bucket, key, request, reply), true;
          return false;
        }
        if (versioned) return putObject(bucket, key, request, reply), true;
        return false;
      }
      case 'POST':
        if ('uploads' in query) {
          if (hasLockHeaders && versioned) return createMultipartUpload(bucket, key, request, reply), true;
          return false;
        }
        if (query.uploadId !== undefined) {
          const upload = store.multipartUploads.get(query.uploadId);
          if (upload && isVersioned(upload.bucket)) return completeMultipartUpload(request, reply), true;
        }
        return false;
      case 'DELETE':
        if (query.uploadId !== undefined) return false;
        if (versioned || query.versionId !== undefined) return deleteObject(bucket, key, request, reply), true;
        return false;
      default:
        return false;
    }
  }

  return {
    /** The bucket settings and every history, as plain data; objects by `ref` (s3-persistence.mjs). */
    snapshot(ref) {
      return {
        sequence,
        buckets: [...buckets],
        histories: [...histories].map(([bucket, history]) => [
          bucket,
          [...history].map(([key, versions]) => [key, versions.map((version) => ({ ...version, obj: version.obj ? ref(version.obj) : null }))]),
        ]),
      };
    },
    /** What `snapshot` gave, back; `obj` turns a reference into the object. */
    restore(snapshot, obj) {
      sequence = snapshot.sequence;
      buckets.clear();
      for (const [bucket, settings] of snapshot.buckets) buckets.set(bucket, settings);
      histories.clear();
      for (const [bucket, keys] of snapshot.histories) {
        histories.set(bucket, new Map(keys.map(([key, versions]) => [key, versions.map((version) => ({ ...version, obj: version.obj === null ? undefined : obj(version.obj) }))])));
      }
    },
    /** Like `route`, answering an S3 error as fauxqs does (a HEAD without a body). */
    handle(request, reply, bucket, key) {
      try {
        if (bucket === '_lifeboat' && key === 'tamper' && request.method === 'POST') {
          tamper(request, reply);
          return true;
        }
        return route(request, reply, bucket, key);
      } catch (err) {
        if (!(err instanceof S3Error)) throw err;
        reply.status(err.statusCode);
        if (request.method === 'HEAD') reply.send();
        else reply.header('content-type', 'application/xml').send(err.toXml());
        return true;
      }
    },
  };
}
