/**
 * The bucket read as a catalog: which sources have runs, which runs exist, and which of them
 * count as backups. The one module that interprets the layout of lib/domain/layout.ts for
 * reading; the CLI, the verifier, the Lambdas, the pruner and the tests all go through it, so
 * they cannot disagree on what "verified" means. It works the same on the offsite replica.
 *
 * Cost model (a source has thousands of runs): one paginated ListObjectsV2 of
 * `runs/<source>/` tells which JSON files each run has, so a run without a manifest or a
 * verification is classified without a read; JSON is then read only for the runs asked for.
 */
import { GetObjectCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { RUNS_PREFIX, manifestKey, offsiteKey, runPrefix, sourcePrefix, verificationKey } from '../domain/layout';
import { parseManifest, type Manifest } from '../domain/manifest';
import { parseOffsite, type OffsiteConfirmation } from '../domain/offsite';
import { isRunId, runIdToDate } from '../domain/run-id';
import { parseVerification, type Verification } from '../domain/verification';
import { mapLimit } from '../util/map-limit';

/**
 * `verified`: manifest.json and verification.json exist, parse, agree, and the verdict is ok —
 * the run counts as a backup (RPO, retention, restore, drills).
 * `failed`: the verifier's verdict is failed.
 * `unverified`: everything else — interrupted, not verified yet, or a file that cannot be read.
 */
export type RunStatus = 'verified' | 'failed' | 'unverified';

export interface CatalogObject {
  readonly key: string;
  readonly bytes: number;
  readonly lastModified?: Date;
}

export interface RunRecord {
  source: string;
  runId: string;
  status: RunStatus;
  manifest?: Manifest;
  verification?: Verification;
  offsite?: OffsiteConfirmation;
  /**
   * Why the run is not verified (or, for a verified run, why its offsite.json could not be
   * read), in words a person understands. Absent for a verified run with nothing to report.
   */
  reason?: string;
  /** Every object under the run's prefix, as listed (the pruner deletes these, the CLI sums them). */
  objects: CatalogObject[];
}

export interface CatalogOptions {
  /**
   * Keys per ListObjectsV2 page.
   * @default 1000 (the S3 maximum)
   */
  pageSize?: number;
  /**
   * How many runs' JSON files are read at once.
   * @default 8
   */
  concurrency?: number;
}

export interface ListRunsOptions extends CatalogOptions {
  /** @default false (oldest first, the order of the run ids) */
  newestFirst?: boolean;
  /** At most this many runs, taken after ordering: `{ newestFirst: true, limit: 10 }` is the last ten. */
  limit?: number;
}

export interface LatestVerifiedRunOptions extends CatalogOptions {
  /**
   * Only runs whose slot (run id) is at or before this time.
   * @default - now
   */
  at?: Date;
}

const MANIFEST = 'manifest.json';
const VERIFICATION = 'verification.json';
const OFFSITE = 'offsite.json';
const DEFAULT_CONCURRENCY = 8;

/** Source names, from the common prefixes under `runs/`, sorted. */
export async function listSources(s3: S3Client, bucket: string, opts: CatalogOptions = {}): Promise<string[]> {
  const sources: string[] = [];
  const pages = paginateListObjectsV2(
    { client: s3, pageSize: opts.pageSize },
    { Bucket: bucket, Prefix: RUNS_PREFIX, Delimiter: '/' },
  );
  for await (const page of pages) {
    for (const common of page.CommonPrefixes ?? []) {
      const name = common.Prefix?.slice(RUNS_PREFIX.length, -1);
      if (name) sources.push(name);
    }
  }
  return sources.sort();
}

/** Every run of a source, one record per run id, with its JSON files read and its status derived. */
export async function listRuns(s3: S3Client, bucket: string, source: string, opts: ListRunsOptions = {}): Promise<RunRecord[]> {
  const listed = await listRunObjects(s3, bucket, sourcePrefix(source), opts.pageSize);
  let runIds = [...listed.keys()];
  if (opts.newestFirst) runIds.reverse();
  if (opts.limit !== undefined) runIds = runIds.slice(0, Math.max(0, opts.limit));
  return mapLimit(runIds, opts.concurrency ?? DEFAULT_CONCURRENCY, (runId) =>
    readListedRun(s3, bucket, source, runId, listed.get(runId) ?? []));
}

/**
 * The newest verified run whose slot is at or before `at`, or undefined when there is none.
 * Walks newest first and stops at the first verified run; runs the listing already shows to
 * lack a manifest or a verification are skipped without a read, and a failed verdict is
 * recognised from verification.json alone.
 */
export async function latestVerifiedRun(
  s3: S3Client,
  bucket: string,
  source: string,
  opts: LatestVerifiedRunOptions = {},
): Promise<RunRecord | undefined> {
  const at = (opts.at ?? new Date()).getTime();
  const listed = await listRunObjects(s3, bucket, sourcePrefix(source), opts.pageSize);
  const candidates = [...listed.keys()]
    .filter((runId) => (runIdToDate(runId)?.getTime() ?? Infinity) <= at)
    .filter((runId) => hasFile(listed.get(runId), MANIFEST) && hasFile(listed.get(runId), VERIFICATION))
    .reverse();
  for (const runId of candidates) {
    const verification = await readJson(s3, bucket, verificationKey(source, runId), parseVerification);
    if (verification.value?.verdict !== 'ok') continue;
    const record = await readListedRun(s3, bucket, source, runId, listed.get(runId) ?? [], verification);
    if (record.status === 'verified') return record;
  }
  return undefined;
}

/** One run, whatever its state; a run with no object at all is `unverified` with an empty `objects`. */
export async function readRun(s3: S3Client, bucket: string, source: string, runId: string): Promise<RunRecord> {
  const listed = await listRunObjects(s3, bucket, runPrefix(source, runId));
  return readListedRun(s3, bucket, source, runId, listed.get(runId) ?? []);
}

/**
 * Why a verification does not vouch for a manifest: the same run, and every artifact (and the
 * globals, when the verification lists them) with the same byte count and SHA-256. Empty when
 * they agree. Used by the catalog and by the Commit step.
 */
export function verificationMismatches(manifest: Manifest, verification: Verification): string[] {
  const problems: string[] = [];
  if (verification.source !== manifest.source || verification.runId !== manifest.runId) {
    problems.push(`verification is for ${verification.source}/${verification.runId}, the manifest for ${manifest.source}/${manifest.runId}`);
  }
  const verified = new Map(verification.artifacts.map((artifact) => [artifact.key, artifact]));
  const expected = [...manifest.artifacts, ...(manifest.globals ? [manifest.globals] : [])];
  for (const artifact of manifest.artifacts) {
    const seen = verified.get(artifact.key);
    if (!seen) problems.push(`${artifact.key} was not verified`);
  }
  for (const [key, seen] of verified) {
    const wanted = expected.find((artifact) => artifact.key === key);
    if (!wanted) {
      problems.push(`${key} was verified but is not in the manifest`);
      continue;
    }
    if (seen.sha256 !== wanted.sha256) problems.push(`${key}: sha256 ${seen.sha256} verified, ${wanted.sha256} in the manifest`);
    if (seen.bytes !== wanted.bytes) problems.push(`${key}: ${seen.bytes} bytes verified, ${wanted.bytes} in the manifest`);
    const failedChecks = seen.checks.filter((check) => !check.ok).map((check) => check.name);
    if (failedChecks.length > 0) problems.push(`${key}: check(s) ${failedChecks.join(', ')} failed`);
  }
  return problems;
}

/** Objects under `prefix` grouped by run id, in run id (= time) order. Keys that are not `<runId>/<name>` are ignored. */
async function listRunObjects(s3: S3Client, bucket: string, prefix: string, pageSize?: number): Promise<Map<string, CatalogObject[]>> {
  const base = prefix.slice(0, prefix.indexOf('/', RUNS_PREFIX.length) + 1);
  const runs = new Map<string, CatalogObject[]>();
  const pages = paginateListObjectsV2({ client: s3, pageSize }, { Bucket: bucket, Prefix: prefix });
  for await (const page of pages) {
    for (const object of page.Contents ?? []) {
      if (!object.Key) continue;
      const rest = object.Key.slice(base.length);
      const slash = rest.indexOf('/');
      if (slash <= 0 || slash === rest.length - 1) continue;
      const runId = rest.slice(0, slash);
      if (!isRunId(runId)) continue;
      let objects = runs.get(runId);
      if (!objects) runs.set(runId, (objects = []));
      objects.push({ key: object.Key, bytes: object.Size ?? 0, lastModified: object.LastModified });
    }
  }
  // S3 lists in key order, and run ids sort by time; sort anyway for servers that do not.
  return new Map([...runs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function hasFile(objects: readonly CatalogObject[] | undefined, name: string): boolean {
  return (objects ?? []).some((object) => object.key.endsWith(`/${name}`) && object.key.split('/').length === 4);
}

interface JsonRead<T> {
  value?: T;
  /** Set when the file exists but cannot be used. */
  problem?: string;
  /** SHA-256 of the bytes read. */
  sha256?: string;
}

async function readListedRun(
  s3: S3Client,
  bucket: string,
  source: string,
  runId: string,
  objects: CatalogObject[],
  knownVerification?: JsonRead<Verification>,
): Promise<RunRecord> {
  const absent = <T>(): Promise<JsonRead<T>> => Promise.resolve({});
  const [verification, offsite] = await Promise.all([
    knownVerification ??
      (hasFile(objects, VERIFICATION) ? readJson(s3, bucket, verificationKey(source, runId), parseVerification) : absent<Verification>()),
    hasFile(objects, OFFSITE) ? readJson(s3, bucket, offsiteKey(source, runId), parseOffsite) : absent<OffsiteConfirmation>(),
  ]);
  // The verdict names the manifest version it judged: that version is the run, whatever a
  // later write at the key would hold (the bucket refuses such writes; the check holds anyway).
  const verified = verification.value?.manifest;
  const manifest = hasFile(objects, MANIFEST)
    ? await readJson(s3, bucket, manifestKey(source, runId), parseManifest, verified?.versionId)
    : await absent<Manifest>();
  if (verified && manifest.sha256 !== undefined && manifest.sha256 !== verified.sha256) {
    manifest.problem = `manifest.json${verified.versionId ? ` (version ${verified.versionId})` : ''} is not the manifest the verdict is about (SHA-256 differs)`;
    delete manifest.value;
  }
  const record: RunRecord = { source, runId, status: 'unverified', objects };
  if (manifest.value) record.manifest = manifest.value;
  if (verification.value) record.verification = verification.value;
  if (offsite.value) record.offsite = offsite.value;
  const derived = deriveStatus(source, runId, manifest, verification);
  const missing = derived.status === 'verified' && manifest.value ? missingArtifacts(manifest.value, objects) : [];
  const { status, reason } = missing.length > 0
    // A replica bucket gets each object on its own: the documents can be there before the
    // artifacts (replication still running), and a run without its artifacts restores nothing.
    ? { status: 'unverified' as const, reason: `not restorable from s3://${bucket}/: ${missing.slice(0, 3).join('; ')}${missing.length > 3 ? `; and ${missing.length - 3} more` : ''}` }
    : derived;
  record.status = status;
  const offsiteNote = offsite.problem ? `offsite confirmation unreadable: ${offsite.problem}` : undefined;
  const combined = [reason, offsiteNote].filter(Boolean).join('; ');
  if (combined) record.reason = combined;
  return record;
}

/**
 * The artifacts (and globals) of a manifest whose key the listing does not show: absent from
 * this bucket. Empty when all are there. The listing shows the current version only, so a
 * present key says nothing of the version the manifest names (a later write at the key is
 * ignored by readers, who read that version; one gone is named when it is read).
 */
export function missingArtifacts(manifest: Manifest, objects: readonly CatalogObject[]): string[] {
  const listed = new Set(objects.map((object) => object.key));
  return [...manifest.artifacts, ...(manifest.globals ? [manifest.globals] : [])]
    // A PITR run's artifact is in its pgBackRest repository (pitr/<source>/), not under the run:
    // its presence is pgbackrest verify's (and AwaitOffsite's) to judge.
    .filter((artifact) => manifest.pitr === undefined || artifact.key.startsWith(RUNS_PREFIX))
    .filter((artifact) => !listed.has(artifact.key))
    .map((artifact) => `${artifact.key} is not in the bucket`);
}

function deriveStatus(
  source: string,
  runId: string,
  manifest: JsonRead<Manifest>,
  verification: JsonRead<Verification>,
): { status: RunStatus; reason?: string } {
  if (manifest.problem) return { status: 'unverified', reason: manifest.problem };
  if (!manifest.value) return { status: 'unverified', reason: 'no manifest.json: the run was interrupted (or is still running)' };
  if (manifest.value.source !== source || manifest.value.runId !== runId) {
    return { status: 'unverified', reason: `manifest.json describes ${manifest.value.source}/${manifest.value.runId}, not ${source}/${runId}` };
  }
  if (verification.problem) return { status: 'unverified', reason: verification.problem };
  if (!verification.value) return { status: 'unverified', reason: 'not verified: no verification.json' };
  if (verification.value.verdict === 'failed') {
    const error = verification.value.error;
    return { status: 'failed', reason: error ? `verification failed: ${error.name}: ${error.message}` : 'verification failed' };
  }
  const mismatches = verificationMismatches(manifest.value, verification.value);
  if (mismatches.length > 0) {
    return { status: 'unverified', reason: `verification.json does not match manifest.json: ${mismatches.slice(0, 3).join('; ')}` };
  }
  return { status: 'verified' };
}

/** Reads and parses one JSON file; a missing file is absent, an unreadable or invalid one is a problem, never a throw. */
async function readJson<T>(s3: S3Client, bucket: string, key: string, parse: (text: string, key: string) => T, versionId?: string): Promise<JsonRead<T>> {
  let text: string;
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    text = await (object.Body as { transformToString(): Promise<string> }).transformToString();
  } catch (error) {
    // Listed a moment ago, gone now: the pruner removed the run meanwhile.
    if ((error as Error).name === 'NoSuchKey') return {};
    if ((error as Error).name === 'NoSuchVersion') return { problem: `${key}: version ${versionId} does not exist` };
    throw error;
  }
  const sha256 = createHash('sha256').update(text).digest('hex');
  try {
    return { value: parse(text, key), sha256 };
  } catch (error) {
    return { problem: (error as Error).message.startsWith(key) ? (error as Error).message : `${key}: ${(error as Error).message}`, sha256 };
  }
}
