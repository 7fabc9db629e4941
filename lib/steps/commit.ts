/**
 * Commit: the moment a run becomes a backup, and the one writer of verification.json (the
 * bucket policy denies every other role). Writes the verifier's verdict with `If-None-Match: *`
 * and the run's Object Lock, after checking it vouches for the manifest it names (that exact
 * version: same run, same bytes and SHA-256 per artifact).
 *
 * An ok verdict commits the run. A failed verdict is recorded as evidence the same way, and
 * then thrown as its error (ChecksumMismatch, …): the run fails, and status shows why.
 *
 * Idempotent: a retried invocation (Lambda service error after the write) finds its own
 * verdict already there and succeeds. Any other verification.json at the key means the run
 * was already committed (or judged) by someone else: `AlreadyCommitted`, nothing overwritten.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { verificationMismatches } from '../catalog/catalog';
import { isVerifyErrorName, verifyError } from '../verify/errors';
import { manifestKey, verificationKey } from '../domain/layout';
import { parseManifest, type Manifest } from '../domain/manifest';
import { parseVerification, serializeVerification, type Verification } from '../domain/verification';
import { dumpSummarySchema, isNotFound, isPreconditionFailed, objectLockParams, parseInput, stepError, verificationFromResult, type DumpSummary } from './state';

export interface CommitDeps {
  readonly s3: S3Client;
  /** The primary bucket (LIFEBOAT_BUCKET); a summary naming another bucket is refused. */
  readonly bucket: string;
}

/** `$.commit` */
export interface CommitResult {
  readonly committed: true;
  readonly source: string;
  readonly runId: string;
  readonly verificationKey: string;
  /** true when this exact verdict was already there (a retried invocation). */
  readonly alreadyCommitted: boolean;
}

const commitInputSchema = z.looseObject({ dump: dumpSummarySchema, verification: z.unknown() });

/** Input `{ dump, verification }`: the manifest summary and the verifier's result. */
export async function commit(input: unknown, deps: CommitDeps): Promise<CommitResult> {
  const { dump, verification: result } = parseInput(commitInputSchema, input, 'Commit');
  const run = `${dump.source}/${dump.runId}`;
  if (dump.bucket !== deps.bucket) {
    throw stepError('InvalidInput', `Commit: the dump of ${run} names bucket ${dump.bucket}, this function commits to ${deps.bucket}`);
  }
  const { verification, problem } = verificationFromResult(result);
  if (!verification) throw stepError('NotVerified', `${run} is not committed: ${problem}`);
  if (verification.source !== dump.source || verification.runId !== dump.runId) {
    throw stepError('NotVerified', `${run} is not committed: the verdict is about ${verification.source}/${verification.runId}`);
  }

  const manifest = await readManifest(deps, dump, verification.manifest, dump.manifestVersionId);
  const problems = verification.verdict === 'ok'
    ? [...summaryMismatches(dump, manifest), ...verificationMismatches(manifest, verification)]
    : summaryMismatches(dump, manifest);
  if (problems.length > 0) {
    throw stepError('NotVerified', `${run} is not committed: the verification does not match manifest.json: ${problems.slice(0, 5).join('; ')}`);
  }

  const key = verificationKey(dump.source, dump.runId);
  const base = { committed: true as const, source: dump.source, runId: dump.runId, verificationKey: key };
  const written = await writeVerdict(deps, key, verification, manifest);
  if (verification.verdict !== 'ok') {
    const error = verification.error ?? { name: 'ArchiveCorrupt', message: `${run} failed verification` };
    const note = written === 'conflict' ? ` (s3://${deps.bucket}/${key} already held another verdict, left as it is)` : ` (recorded in s3://${deps.bucket}/${key})`;
    throw verifyError(isVerifyErrorName(error.name) ? error.name : 'ArchiveCorrupt', `${error.message}${note}`);
  }
  if (written === 'written') return { ...base, alreadyCommitted: false };
  const existing = await readExisting(deps, key);
  if (existing.verification && isDeepStrictEqual(existing.verification, verification)) return { ...base, alreadyCommitted: true };
  const what = existing.verification
    ? `verdict ${existing.verification.verdict} from ${existing.verification.verifiedAt} (${existing.verification.verifiedBy})`
    : `a file that is not a valid verification (${existing.problem})`;
  throw stepError('AlreadyCommitted', `${run} already has s3://${deps.bucket}/${key}: ${what}; a committed run is never overwritten`);
}

/**
 * Writes the verdict once, locked like the run's other objects (the manifest's Object Lock).
 * `conflict`: something is already at the key (a retry of ours, or another verdict).
 */
async function writeVerdict(deps: CommitDeps, key: string, verification: Verification, manifest: Manifest): Promise<'written' | 'conflict'> {
  try {
    await deps.s3.send(new PutObjectCommand({
      Bucket: deps.bucket,
      Key: key,
      Body: serializeVerification(verification),
      ContentType: 'application/json',
      IfNoneMatch: '*',
      ...objectLockParams(manifest),
    }));
    return 'written';
  } catch (error) {
    if (!isPreconditionFailed(error)) throw error;
    return 'conflict';
  }
}

/** The manifest the verdict is about: that version, and (when the verdict says) those bytes. */
async function readManifest(deps: CommitDeps, dump: DumpSummary, verified: Verification['manifest'], fallbackVersionId: string | undefined): Promise<Manifest> {
  const key = manifestKey(dump.source, dump.runId);
  const run = `${dump.source}/${dump.runId}`;
  const versionId = verified?.versionId ?? fallbackVersionId;
  let text: string;
  try {
    const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key, VersionId: versionId }));
    text = await (object.Body as { transformToString(): Promise<string> }).transformToString();
  } catch (error) {
    if (isNotFound(error)) throw stepError('NotVerified', `${run} is not committed: s3://${deps.bucket}/${key}${versionId ? ` (version ${versionId})` : ''} does not exist`);
    throw error;
  }
  if (verified && createHash('sha256').update(text).digest('hex') !== verified.sha256) {
    throw stepError('NotVerified', `${run} is not committed: s3://${deps.bucket}/${key} is not the manifest that was verified (SHA-256 differs)`);
  }
  try {
    return parseManifest(text, key);
  } catch (error) {
    throw stepError('NotVerified', `${run} is not committed: ${(error as Error).message}`);
  }
}

/** The worker's summary must describe the manifest in the bucket: a difference means one of them is not what was verified. */
function summaryMismatches(dump: DumpSummary, manifest: Manifest): string[] {
  const problems: string[] = [];
  if (manifest.source !== dump.source || manifest.runId !== dump.runId) {
    problems.push(`manifest.json is for ${manifest.source}/${manifest.runId}`);
  }
  const inManifest = new Map(manifest.artifacts.map((artifact) => [artifact.key, artifact]));
  for (const artifact of dump.artifacts) {
    const listed = inManifest.get(artifact.key);
    if (!listed) problems.push(`${artifact.key} is in the dump summary but not in manifest.json`);
    else if (listed.sha256 !== artifact.sha256 || listed.bytes !== artifact.bytes) {
      problems.push(`${artifact.key}: the dump summary says ${artifact.bytes} bytes sha256 ${artifact.sha256}, manifest.json ${listed.bytes} bytes sha256 ${listed.sha256}`);
    }
  }
  if (dump.artifacts.length !== manifest.artifacts.length) {
    problems.push(`the dump summary lists ${dump.artifacts.length} artifact(s), manifest.json ${manifest.artifacts.length}`);
  }
  return problems;
}

async function readExisting(deps: CommitDeps, key: string): Promise<{ verification?: Verification; problem?: string }> {
  const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
  const text = await (object.Body as { transformToString(): Promise<string> }).transformToString();
  try {
    return { verification: parseVerification(text, key) };
  } catch (error) {
    return { problem: (error as Error).message };
  }
}
