/**
 * The verifier: reads every byte of every artifact of a run once, and from that one read
 * checks the size and SHA-256 against the manifest, reads the archive to its end with the
 * engine's own tools (the checks of the artifact's format, lib/engines/verify-contract.ts), and
 * compares the tables inside with the manifest's. Used by the Verify
 * Lambda, the Fargate verifier and the CLI; its dependencies are passed in.
 *
 * `verifyRun` returns the verdict (ok or failed) and throws only when it could not judge
 * (S3 unreachable, pg_restore missing or too old, aborted). It writes nothing: the Commit step
 * is the one writer of verification.json, for either verdict (docs/backup-run.md).
 *
 * Exact versions: the manifest is read at the version the worker wrote (`manifestVersionId`),
 * each artifact at the version the manifest names; the verdict records both, so every later
 * reader reads exactly what was verified.
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { lifeboatError } from '../domain/errors';
import { manifestKey } from '../domain/layout';
import { parseManifest, type Manifest, type ManifestArtifact } from '../domain/manifest';
import { VERIFICATION_SCHEMA_VERSION, type Verification, type VerificationCheck } from '../domain/verification';
import { LIFEBOAT_VERSION } from '../domain/version';
import { artifactFormats, ENGINE_NAMES, engineNamed, engineOfFormat } from '../engines/registry';
import type { ArtifactVerifier, Finding } from '../engines/verify-contract';
import { VERIFY_ERROR_PRIORITY } from './errors';
import { fanOut, type Consumer } from './fan-out';
import { DEFAULT_SUSPICIOUS_SHRINK, judgeSize } from './size';

export interface VerifyRunOptions {
  /** Built with lib/aws/s3-client's createS3Client. */
  readonly s3: S3Client;
  readonly bucket: string;
  readonly source: string;
  readonly runId: string;
  /**
   * The version of manifest.json to verify (the one the worker wrote).
   * @default - the current version
   */
  readonly manifestVersionId?: string;
  /**
   * Total artifact bytes of the source's previous verified runs, newest first: the suspicious
   * size rule compares this run with their trailing median.
   * @default - none: the size rule does not judge
   */
  readonly previousVerifiedSizes?: readonly number[];
  /**
   * A run smaller than (1 - suspiciousShrink) × the trailing median is `SuspiciousSize`.
   * @default 0.5
   */
  readonly suspiciousShrink?: number;
  /** Where the verifier runs (`cli`: `lifeboat verify`, on demand); recorded in the verdict. */
  readonly verifiedBy: 'lambda' | 'fargate' | 'cli';
  /** @default - the clock */
  readonly now?: () => Date;
  /**
   * Directory with pg_restore.
   * @default - `LIFEBOAT_PG_BIN_DIR` from `env`, else PATH
   */
  readonly pgBinDir?: string;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Stops the read and the checks' processes. */
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
  /** Bytes read so far across the run's objects (heartbeats). */
  readonly onProgress?: (bytesRead: number) => void;
}

type ArtifactReport = Verification['artifacts'][number];

interface Judged {
  readonly report: ArtifactReport;
  readonly findings: readonly Finding[];
}

/** Judges a run without writing anything. Throws only when it cannot judge. */
export async function verifyRun(options: VerifyRunOptions): Promise<Verification> {
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const run = `run ${options.source}/${options.runId}`;
  let manifestRef: Verification['manifest'];
  const verdict = (artifacts: ArtifactReport[], findings: readonly Finding[]): Verification => {
    const primary = [...findings].sort((a, b) => VERIFY_ERROR_PRIORITY.indexOf(a.name) - VERIFY_ERROR_PRIORITY.indexOf(b.name))[0];
    const others = findings.filter((finding) => finding !== primary);
    return {
      schemaVersion: VERIFICATION_SCHEMA_VERSION,
      lifeboatVersion: LIFEBOAT_VERSION,
      source: options.source,
      runId: options.runId,
      verdict: primary ? 'failed' : 'ok',
      verifiedAt: now().toISOString(),
      durationMs: Math.max(0, Math.round(Date.now() - started)),
      verifiedBy: options.verifiedBy,
      ...(manifestRef ? { manifest: manifestRef } : {}),
      artifacts,
      ...(primary
        ? {
            error: {
              name: primary.name,
              message:
                `${run}: ${primary.message}` +
                (others.length > 0 ? ` (also: ${others.map((finding) => `${finding.name}: ${finding.message}`).join('; ')})` : ''),
            },
          }
        : {}),
    };
  };

  const manifestAt = manifestKey(options.source, options.runId);
  const read = await readText(options, manifestAt, options.manifestVersionId);
  const manifestText = read?.text;
  if (read) {
    const versionId = read.versionId ?? options.manifestVersionId;
    manifestRef = { key: manifestAt, ...(versionId ? { versionId } : {}), sha256: createHash('sha256').update(read.text).digest('hex') };
  }
  if (manifestText === undefined) {
    return verdict([], [{ name: 'ArtifactMissing', message: `manifest.json is missing (s3://${options.bucket}/${manifestAt}): the dump never committed this run` }]);
  }
  let manifest: Manifest;
  try {
    manifest = parseManifest(manifestText, `s3://${options.bucket}/${manifestAt}`);
  } catch (error) {
    return verdict([], [{ name: 'InvalidManifest', message: (error as Error).message }]);
  }
  if (manifest.source !== options.source || manifest.runId !== options.runId) {
    return verdict([], [{
      name: 'InvalidManifest',
      message: `s3://${options.bucket}/${manifestAt} describes run ${manifest.source}/${manifest.runId}, not this one`,
    }]);
  }

  // The manifest's engine must be one Lifeboat knows, and read each artifact's format.
  const engine = engineNamed(manifest.engine);
  if (!engine) {
    return verdict([], [{ name: 'InvalidManifest', message: `s3://${options.bucket}/${manifestAt}: unknown engine "${manifest.engine}" (known: ${ENGINE_NAMES.join(', ')})` }]);
  }
  const foreign = manifest.artifacts.filter((artifact) => !engine.verify.formats.includes(artifact.format));
  if (foreign.length > 0) {
    return verdict([], [{
      name: 'InvalidManifest',
      message: `s3://${options.bucket}/${manifestAt}: a ${manifest.engine} run with artifacts of format ${[...new Set(foreign.map((a) => a.format))].join(', ')} ` +
        `(${engine.label} writes ${engine.verify.formats.join(', ')})`,
    }]);
  }
  // Each format's tools are found and checked once, before the first byte is read.
  const verifiers = new Map<string, ArtifactVerifier | undefined>();
  for (const format of new Set(manifest.artifacts.map((artifact) => artifact.format))) {
    const engine = engineOfFormat(format);
    verifiers.set(format, engine && (await engine.verify.prepare(manifest, { env: options.env ?? process.env, pgBinDir: options.pgBinDir })));
  }
  let bytesBefore = 0;
  const progress = (bytes: number) => options.onProgress?.(bytesBefore + bytes);
  const reports: ArtifactReport[] = [];
  const findings: Finding[] = [];
  for (const artifact of manifest.artifacts) {
    log(`verifying s3://${options.bucket}/${artifact.key} (${artifact.bytes} bytes, ${artifact.format}, ${artifact.compression})`);
    const judged = await verifyArtifact(options, manifest, artifact, verifiers.get(artifact.format), progress);
    bytesBefore += judged.report.bytes;
    reports.push(judged.report);
    findings.push(...judged.findings);
  }
  if (manifest.globals) {
    const judged = await verifyPlainObject(options, manifest.globals, progress);
    bytesBefore += judged.report.bytes;
    reports.push(judged.report);
    findings.push(...judged.findings);
  }

  // The size rule looks at the run's artifacts (as the manifest summary's `bytes` does).
  const runBytes = reports.slice(0, manifest.artifacts.length).reduce((sum, report) => sum + report.bytes, 0);
  const size = judgeSize(runBytes, options.previousVerifiedSizes ?? [], options.suspiciousShrink ?? DEFAULT_SUSPICIOUS_SHRINK);
  // A run-level check: recorded with the run's first artifact.
  const first = reports[0];
  if (first) reports[0] = { ...first, checks: [...first.checks, { name: 'size', ok: size.ok, detail: size.detail }] };
  if (!size.ok) findings.push({ name: 'SuspiciousSize', message: `suspicious size: ${size.detail}` });

  const result = verdict(reports, findings);
  log(`${run}: ${result.verdict}${result.error ? ` (${result.error.name})` : ''} in ${result.durationMs} ms`);
  return result;
}

/** The object's text and version, or undefined when it does not exist. */
async function readText(options: VerifyRunOptions, key: string, versionId?: string): Promise<{ text: string; versionId?: string } | undefined> {
  const object = await getObject(options, key, versionId);
  if (object === undefined) return undefined;
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of object.body) chunks.push(Buffer.from(chunk));
  } catch (error) {
    throw readFailure(options, key, error);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), versionId: object.versionId };
}

/** The body stream of `key` (at `versionId` when given), or undefined when it does not exist. */
async function getBody(options: VerifyRunOptions, key: string, versionId?: string): Promise<AsyncIterable<Uint8Array> | undefined> {
  return (await getObject(options, key, versionId))?.body;
}

async function getObject(options: VerifyRunOptions, key: string, versionId?: string): Promise<{ body: AsyncIterable<Uint8Array>; versionId?: string } | undefined> {
  try {
    const object = await options.s3.send(new GetObjectCommand({ Bucket: options.bucket, Key: key, VersionId: versionId }), { abortSignal: options.signal });
    return { body: object.Body as unknown as AsyncIterable<Uint8Array>, versionId: object.VersionId };
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if ((error as Error).name === 'NoSuchKey' || (error as Error).name === 'NoSuchVersion' || status === 404) return undefined;
    throw readFailure(options, key, error);
  }
}

function readFailure(options: VerifyRunOptions, key: string, error: unknown): Error {
  if (options.signal?.aborted) {
    return lifeboatError('Aborted', `verification of run ${options.source}/${options.runId} was stopped while reading ${key}`);
  }
  const failure = new Error(
    `cannot read s3://${options.bucket}/${key}: ${(error as Error).name}: ${(error as Error).message} (nothing was judged; retry)`,
    { cause: error },
  );
  failure.name = (error as Error).name || 'Error';
  return failure;
}

const missingReport = (key: string, detail: string): Judged => ({
  report: { key, bytes: 0, sha256: '', checks: [{ name: 'present', ok: false, detail }] },
  findings: [{ name: 'ArtifactMissing', message: detail }],
});

/** Reads an object once through the hash and `consumers`; the size and SHA-256 checks. */
async function readThrough(
  options: VerifyRunOptions,
  expected: { key: string; bytes: number; sha256: string; versionId?: string },
  body: AsyncIterable<Uint8Array>,
  consumers: readonly Consumer[],
  onProgress: (bytes: number) => void,
  onReadFailure: () => void,
): Promise<{ report: ArtifactReport; findings: Finding[] }> {
  let read;
  try {
    read = await fanOut(body, consumers, onProgress);
  } catch (error) {
    onReadFailure();
    throw readFailure(options, expected.key, error);
  }
  const checks: VerificationCheck[] = [];
  const findings: Finding[] = [];
  const sizeOk = read.bytes === expected.bytes;
  checks.push({ name: 'bytes', ok: sizeOk, detail: `manifest ${expected.bytes} bytes, object ${read.bytes} bytes` });
  if (!sizeOk) {
    findings.push({
      name: 'SizeMismatch',
      message: `${expected.key} is ${read.bytes} bytes, the manifest says ${expected.bytes}${read.bytes < expected.bytes ? ' (truncated)' : ''}`,
    });
  }
  const hashOk = read.sha256 === expected.sha256;
  checks.push({ name: 'sha256', ok: hashOk, detail: `manifest ${expected.sha256}, object ${read.sha256}` });
  if (!hashOk) {
    findings.push({ name: 'ChecksumMismatch', message: `${expected.key} has SHA-256 ${read.sha256}, the manifest says ${expected.sha256}` });
  }
  const report = { key: expected.key, ...(expected.versionId ? { versionId: expected.versionId } : {}), bytes: read.bytes, sha256: read.sha256, checks };
  return { report, findings };
}

async function verifyPlainObject(
  options: VerifyRunOptions,
  expected: { key: string; bytes: number; sha256: string; versionId?: string },
  onProgress: (bytes: number) => void,
): Promise<Judged> {
  const body = await getBody(options, expected.key, expected.versionId);
  if (body === undefined) {
    return missingReport(expected.key, `${expected.key}${expected.versionId ? ` (version ${expected.versionId})` : ''} is listed in the manifest but not in the bucket`);
  }
  return readThrough(options, expected, body, [], onProgress, () => undefined);
}

async function verifyArtifact(
  options: VerifyRunOptions,
  manifest: Manifest,
  artifact: ManifestArtifact,
  verifier: ArtifactVerifier | undefined,
  onProgress: (bytes: number) => void,
): Promise<Judged> {
  const expectedTables = manifest.tables
    .filter((table) => table.database === artifact.database)
    .map(({ schema, name, rows }) => ({ schema, name, rows }));
  const refused = verifier
    ? verifier.refuse(artifact)
    : { name: 'InvalidManifest' as const, message: `${artifact.key}: unknown artifact format "${artifact.format}" (known: ${artifactFormats().join(', ')})` };
  if (refused || !verifier) {
    return { report: { key: artifact.key, bytes: 0, sha256: '', checks: [] }, findings: [refused as Finding] };
  }
  const body = await getBody(options, artifact.key, artifact.versionId);
  if (body === undefined) {
    return missingReport(artifact.key, `${artifact.key}${artifact.versionId ? ` (version ${artifact.versionId})` : ''} is listed in the manifest but not in the bucket`);
  }

  const checks = verifier.start(artifact, expectedTables);
  const onAbort = () => checks.kill();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const read = await readThrough(options, artifact, body, checks.consumers, onProgress, () => checks.kill());
    const judged = await checks.result();
    return {
      report: { ...read.report, checks: [...read.report.checks, ...judged.checks], ...(judged.objectCounts ? { objectCounts: judged.objectCounts } : {}) },
      findings: [...read.findings, ...judged.findings],
    };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

