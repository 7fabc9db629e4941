/**
 * AwaitOffsite: one check, per invocation, that every object of a committed run is in the
 * offsite bucket with the same content. The state machine loops (Wait 60 s) while the copy is
 * not there yet; after `maxAttempts` checks the run fails `OffsiteMissing` — the primary
 * backup stays verified, only its offsite copy is unconfirmed.
 *
 * "The same content" per object:
 * - manifest.json and verification.json (small): the replica's bytes have the primary's SHA-256.
 *   The manifest carries every artifact's SHA-256, so an identical manifest is the replica's own
 *   claim about its artifacts.
 * - artifacts and globals: the replica's size is the manifest's, and its S3 checksum (CRC32,
 *   SHA-256, … — replication copies them) equals the primary object's; without a checksum of the
 *   same kind on both, the ETag (replication keeps it) stands in.
 *
 * Once confirmed, offsite.json goes to the PRIMARY bucket's run prefix (`If-None-Match: *`; a
 * retried invocation that finds it already there returns what it says).
 */
import {
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { formatDuration } from '../config/units';
import { manifestKey, offsiteKey, verificationKey } from '../domain/layout';
import { parseManifest, type Manifest } from '../domain/manifest';
import { OFFSITE_SCHEMA_VERSION, parseOffsite, serializeOffsite, type OffsiteConfirmation } from '../domain/offsite';
import { LIFEBOAT_VERSION } from '../domain/version';
import { parseVerification } from '../domain/verification';
import { segmentOfArchiveKey } from '../pitr/wal';
import { dumpSummarySchema, isNotFound, isPreconditionFailed, objectLockParams, offsitePollSchema, parseInput, stepError } from './state';

/** With the state machine's 60 s Wait: S3 Replication Time Control's 15 minutes plus a margin. */
export const DEFAULT_OFFSITE_MAX_ATTEMPTS = 16;

export interface AwaitOffsiteDeps {
  /** Client for the primary bucket. */
  readonly primary: S3Client;
  /** Client for the offsite bucket, in its region. */
  readonly offsite: S3Client;
  readonly bucket: string;
  readonly offsiteBucket: string;
  readonly offsiteRegion: string;
  /** @default 16 */
  readonly maxAttempts?: number;
  /** @default - the clock */
  readonly now?: () => Date;
}

/** `$.offsite` */
export type AwaitOffsiteResult =
  | { readonly present: true; readonly attempts: number; readonly lagSeconds: number }
  | {
      readonly present: false;
      readonly attempts: number;
      /** Keys not (yet) in the offsite bucket, or there with other content: for the execution history. */
      readonly missing: string[];
    };

interface Expected {
  readonly key: string;
  /** The version in the primary bucket; CRR gives the replica the same version id. */
  readonly versionId?: string;
  readonly bytes: number;
  readonly sha256: string;
  /** JSON files are compared by content; artifacts by size and S3 checksum. */
  readonly content?: Buffer;
}

interface Check {
  readonly key: string;
  readonly state: 'same' | 'missing' | 'different';
  readonly detail?: string;
}

const awaitOffsiteInputSchema = z.looseObject({ dump: dumpSummarySchema, offsite: offsitePollSchema.nullish() });

/** Input `{ dump, offsite?: { attempts } }`. */
export async function awaitOffsite(input: unknown, deps: AwaitOffsiteDeps): Promise<AwaitOffsiteResult> {
  const { dump, offsite: poll } = parseInput(awaitOffsiteInputSchema, input, 'AwaitOffsite');
  const now = deps.now ?? (() => new Date());
  const maxAttempts = deps.maxAttempts ?? DEFAULT_OFFSITE_MAX_ATTEMPTS;
  const attempts = (poll?.attempts ?? 0) + 1;
  const run = `${dump.source}/${dump.runId}`;
  if (dump.bucket !== deps.bucket) {
    throw stepError('InvalidInput', `AwaitOffsite: the dump of ${run} names bucket ${dump.bucket}, this function watches ${deps.bucket}`);
  }

  const { manifest, expected } = await expectedObjects(deps, dump.source, dump.runId);
  const checks = await Promise.all(expected.map((object) => checkReplica(deps, object)));
  if (manifest.pitr) checks.push(...(await pitrReplicaChecks(deps, manifest.pitr)));
  const notThere = checks.filter((check) => check.state !== 'same');

  if (notThere.length === 0) {
    const confirmedAt = now();
    const lagSeconds = Math.max(0, Math.round((confirmedAt.getTime() - Date.parse(manifest.finishedAt)) / 1000));
    const confirmation: OffsiteConfirmation = {
      schemaVersion: OFFSITE_SCHEMA_VERSION,
      lifeboatVersion: LIFEBOAT_VERSION,
      source: dump.source,
      runId: dump.runId,
      region: deps.offsiteRegion,
      bucket: deps.offsiteBucket,
      confirmedAt: confirmedAt.toISOString(),
      lagSeconds,
      objects: expected.map(({ key, versionId, bytes, sha256 }) => ({ key, ...(versionId ? { versionId } : {}), bytes, sha256 })),
    };
    const written = await writeConfirmation(deps, confirmation, manifest);
    return { present: true, attempts, lagSeconds: written.lagSeconds };
  }

  if (attempts < maxAttempts) return { present: false, attempts, missing: notThere.map((check) => check.key) };

  const waited = formatDuration((now().getTime() - Date.parse(manifest.finishedAt)) / 1000);
  const missing = notThere.filter((check) => check.state === 'missing').map((check) => check.key);
  const different = notThere.filter((check) => check.state === 'different').map((check) => `${check.key} (${check.detail})`);
  throw stepError(
    'OffsiteMissing',
    `the offsite copy of ${run} is not confirmed after ${attempts} checks, ${waited} after the dump finished: ` +
      [
        missing.length > 0 ? `missing from s3://${deps.offsiteBucket} in ${deps.offsiteRegion}: ${missing.join(', ')}` : '',
        different.length > 0 ? `different in s3://${deps.offsiteBucket} in ${deps.offsiteRegion}: ${different.join(', ')}` : '',
      ].filter(Boolean).join('; ') +
      '. The primary backup stays verified; only its offsite copy is unconfirmed.',
  );
}

/** Every object of the run, from the primary bucket: artifacts and globals as the manifest lists them, and the two JSON files. */
async function expectedObjects(deps: AwaitOffsiteDeps, source: string, runId: string): Promise<{ manifest: Manifest; expected: Expected[] }> {
  const run = `${source}/${runId}`;
  const read = async (key: string, missing: () => Error, versionId?: string): Promise<{ body: Buffer; versionId?: string }> => {
    const object = await getObject(deps.primary, deps.bucket, key, versionId);
    if (!object) throw missing();
    return object;
  };
  const mKey = manifestKey(source, runId);
  const vKey = verificationKey(source, runId);
  // The verdict names the manifest version it is about: that is the one to find offsite.
  const verification = await read(vKey, () => stepError('InvalidInput', `${run} is not committed: s3://${deps.bucket}/${vKey} does not exist`));
  let manifestVersionId: string | undefined;
  try {
    manifestVersionId = parseVerification(verification.body.toString('utf8'), vKey).manifest?.versionId;
  } catch (error) {
    throw stepError('InvalidInput', `${run} is not committed: ${(error as Error).message}`);
  }
  const manifestRead = await read(mKey, () => stepError('InvalidManifest', `${run}: s3://${deps.bucket}/${mKey} does not exist`), manifestVersionId);
  const manifestBytes = manifestRead.body;
  let manifest: Manifest;
  try {
    manifest = parseManifest(manifestBytes.toString('utf8'), mKey);
  } catch (error) {
    throw stepError('InvalidManifest', (error as Error).message);
  }
  const json = (key: string, object: { body: Buffer; versionId?: string }): Expected => ({
    key, versionId: object.versionId, bytes: object.body.length, sha256: sha256(object.body), content: object.body,
  });
  return {
    manifest,
    expected: [
      ...manifest.artifacts.map(({ key, bytes, sha256: digest, versionId }) => ({ key, versionId, bytes, sha256: digest })),
      ...(manifest.globals ? [manifest.globals] : []),
      json(mKey, manifestRead),
      json(vKey, verification),
    ],
  };
}

/**
 * A PITR run's set and WAL (pgBackRest's objects, thousands for a large cluster): every file of
 * the set and every WAL segment from its start to its stop is in the offsite bucket with the
 * primary's size and ETag (replication keeps both), compared from two listings rather than one
 * request per object.
 */
async function pitrReplicaChecks(deps: AwaitOffsiteDeps, pitr: NonNullable<Manifest['pitr']>): Promise<Check[]> {
  const setPrefix = `${pitr.repository}/backup/${pitr.stanza}/${pitr.label}/`;
  const archivePrefix = `${pitr.repository}/archive/${pitr.stanza}/`;
  const inRange = (key: string) => {
    const segment = segmentOfArchiveKey(key);
    return segment !== undefined && segment >= pitr.walStart && segment <= pitr.walStop;
  };
  const [primarySet, primaryWal, offsiteSet, offsiteWal] = await Promise.all([
    listObjects(deps.primary, deps.bucket, setPrefix),
    listObjects(deps.primary, deps.bucket, archivePrefix),
    listObjects(deps.offsite, deps.offsiteBucket, setPrefix),
    listObjects(deps.offsite, deps.offsiteBucket, archivePrefix),
  ]);
  const replicas = new Map([...offsiteSet, ...offsiteWal].map((object) => [object.key, object]));
  const wanted = [...primarySet, ...primaryWal.filter((object) => inRange(object.key))];
  return wanted.map((object): Check => {
    const replica = replicas.get(object.key);
    if (!replica) return { key: object.key, state: 'missing' };
    if (replica.size !== object.size) return { key: object.key, state: 'different', detail: `${replica.size} bytes, the primary's ${object.size}` };
    if (replica.etag !== object.etag) return { key: object.key, state: 'different', detail: `ETag ${replica.etag}, the primary's ${object.etag}` };
    return { key: object.key, state: 'same' };
  });
}

async function listObjects(client: S3Client, bucket: string, prefix: string): Promise<{ key: string; size: number; etag: string }[]> {
  const objects: { key: string; size: number; etag: string }[] = [];
  for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix })) {
    for (const object of page.Contents ?? []) objects.push({ key: object.Key as string, size: object.Size ?? 0, etag: object.ETag ?? '' });
  }
  return objects;
}

async function checkReplica(deps: AwaitOffsiteDeps, object: Expected): Promise<Check> {
  if (object.content) {
    const replica = (await getObject(deps.offsite, deps.offsiteBucket, object.key, object.versionId))?.body;
    if (!replica) return { key: object.key, state: 'missing' };
    const digest = sha256(replica);
    return digest === object.sha256
      ? { key: object.key, state: 'same' }
      : { key: object.key, state: 'different', detail: `sha256 ${digest}, the primary's is ${object.sha256}` };
  }
  const [primary, replica] = await Promise.all([
    head(deps.primary, deps.bucket, object.key, object.versionId),
    head(deps.offsite, deps.offsiteBucket, object.key, object.versionId),
  ]);
  if (!replica) return { key: object.key, state: 'missing' };
  if (replica.ContentLength !== object.bytes) {
    return { key: object.key, state: 'different', detail: `${replica.ContentLength} bytes, the manifest says ${object.bytes}` };
  }
  if (!primary) {
    // The primary object is gone (the manifest still lists it): nothing to compare the replica with but its size.
    return { key: object.key, state: 'different', detail: 'the primary object is missing, so its checksum cannot be compared' };
  }
  const difference = checksumDifference(primary, replica);
  return difference ? { key: object.key, state: 'different', detail: difference } : { key: object.key, state: 'same' };
}

const CHECKSUMS = ['ChecksumSHA256', 'ChecksumSHA1', 'ChecksumCRC64NVME', 'ChecksumCRC32C', 'ChecksumCRC32'] as const;

/** Undefined when the two objects carry the same content as far as S3 tells; otherwise what differs. */
export function checksumDifference(
  primary: Pick<HeadObjectCommandOutput, (typeof CHECKSUMS)[number] | 'ETag'>,
  replica: Pick<HeadObjectCommandOutput, (typeof CHECKSUMS)[number] | 'ETag'>,
): string | undefined {
  const common = CHECKSUMS.find((name) => primary[name] && replica[name]);
  if (common) {
    return primary[common] === replica[common] ? undefined : `${common} ${replica[common]}, the primary's is ${primary[common]}`;
  }
  if (primary.ETag && replica.ETag && primary.ETag !== replica.ETag) return `ETag ${replica.ETag}, the primary's is ${primary.ETag}`;
  return undefined;
}

async function writeConfirmation(deps: AwaitOffsiteDeps, confirmation: OffsiteConfirmation, manifest: Manifest): Promise<OffsiteConfirmation> {
  const key = offsiteKey(confirmation.source, confirmation.runId);
  try {
    await deps.primary.send(new PutObjectCommand({
      Bucket: deps.bucket,
      Key: key,
      Body: serializeOffsite(confirmation),
      ContentType: 'application/json',
      IfNoneMatch: '*',
      ...objectLockParams(manifest),
    }));
    return confirmation;
  } catch (error) {
    if (!isPreconditionFailed(error)) throw error;
  }
  // A retried invocation: the confirmation is already there; it stands.
  const existing = (await getObject(deps.primary, deps.bucket, key))?.body;
  try {
    const parsed = parseOffsite(existing?.toString('utf8') ?? '', key);
    if (parsed.source === confirmation.source && parsed.runId === confirmation.runId) return parsed;
  } catch {
    // fall through: report below
  }
  throw stepError('InvalidInput', `s3://${deps.bucket}/${key} already exists and is not a confirmation for ${confirmation.source}/${confirmation.runId}`);
}

async function head(s3: S3Client, bucket: string, key: string, versionId?: string): Promise<HeadObjectCommandOutput | undefined> {
  try {
    return await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId, ChecksumMode: 'ENABLED' }));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** The object (that version when given) and its version, or undefined when it is not there (yet). */
async function getObject(s3: S3Client, bucket: string, key: string, versionId?: string): Promise<{ body: Buffer; versionId?: string } | undefined> {
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    return { body: Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()), versionId: object.VersionId };
  } catch (error) {
    if (isNotFound(error) || (error as Error).name === 'NoSuchVersion') return undefined;
    throw error;
  }
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
