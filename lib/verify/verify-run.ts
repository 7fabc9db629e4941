/**
 * The verifier: reads every byte of every artifact of a run once, and from that one read
 * checks the size and SHA-256 against the manifest, reads the archive to its end with the
 * engine's own tools, and compares the tables inside with the manifest's. Used by the Verify
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
import { pgClientTooOldHint } from '../domain/versions';
import { VERIFY_ERROR_PRIORITY, type VerifyErrorName } from './errors';
import { fanOut, type Consumer } from './fan-out';
import { PG_BIN_DIR_ENV, pgRestoreMajor, resolvePgRestore, startPgArchiveChecks } from './postgres';
import { DEFAULT_SUSPICIOUS_SHRINK, judgeSize } from './size';
import { compressionMethod, startSqlArtifactChecks } from './sql-checks';
import { diffTableSets, pgDisplayName, summarizeToc, type QualifiedName } from './toc';

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

interface Finding {
  readonly name: VerifyErrorName;
  readonly message: string;
}

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

  const needsPgRestore = manifest.artifacts.some((artifact) => artifact.format === 'pg_dump-custom');
  const pgRestore = needsPgRestore ? await choosePgRestore(options, manifest) : undefined;
  let bytesBefore = 0;
  const progress = (bytes: number) => options.onProgress?.(bytesBefore + bytes);
  const reports: ArtifactReport[] = [];
  const findings: Finding[] = [];
  for (const artifact of manifest.artifacts) {
    log(`verifying s3://${options.bucket}/${artifact.key} (${artifact.bytes} bytes, ${artifact.format}, ${artifact.compression})`);
    const judged = await verifyArtifact(options, manifest, artifact, pgRestore, progress);
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

async function choosePgRestore(options: VerifyRunOptions, manifest: Manifest): Promise<string> {
  const env = options.env ?? process.env;
  const path = resolvePgRestore(options.pgBinDir ?? (env[PG_BIN_DIR_ENV] || undefined), env.PATH ?? process.env.PATH);
  const major = await pgRestoreMajor(path);
  // An archive from a newer pg_dump has a header version this pg_restore refuses: that says
  // nothing about the backup, so it is not a verdict.
  if (manifest.client.major > major) {
    throw lifeboatError(
      'ClientTooOld',
      `run ${manifest.source}/${manifest.runId} was dumped by ${manifest.client.tool} ${manifest.client.version}; ` +
        `${path} is version ${major} and cannot read it; ${pgClientTooOldHint('pg_restore', major, manifest.client.major)} ` +
        `(or set ${PG_BIN_DIR_ENV} to a PostgreSQL ${manifest.client.major} or newer bin directory)`,
    );
  }
  return path;
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
  pgRestore: string | undefined,
  onProgress: (bytes: number) => void,
): Promise<Judged> {
  const expectedTables = manifest.tables
    .filter((table) => table.database === artifact.database)
    .map(({ schema, name, rows }) => ({ schema, name, rows }));
  if (artifact.format === 'sql' && compressionMethod(artifact.compression) === undefined) {
    return {
      report: { key: artifact.key, bytes: 0, sha256: '', checks: [] },
      findings: [{ name: 'InvalidManifest', message: `${artifact.key}: unknown compression "${artifact.compression}" (known: zstd, gzip, none)` }],
    };
  }
  const body = await getBody(options, artifact.key, artifact.versionId);
  if (body === undefined) {
    return missingReport(artifact.key, `${artifact.key}${artifact.versionId ? ` (version ${artifact.versionId})` : ''} is listed in the manifest but not in the bucket`);
  }

  if (artifact.format === 'pg_dump-custom') {
    const checks = startPgArchiveChecks(pgRestore as string);
    const onAbort = () => checks.kill();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const read = await readThrough(options, artifact, body, checks.consumers, onProgress, () => checks.kill());
      const archive = await checks.result();
      const judged = judgePgArchive(artifact, expectedTables, archive);
      return {
        report: { ...read.report, checks: [...read.report.checks, ...judged.checks], ...(judged.objectCounts ? { objectCounts: judged.objectCounts } : {}) },
        findings: [...read.findings, ...judged.findings],
      };
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  const checks = startSqlArtifactChecks(artifact.compression);
  const read = await readThrough(options, artifact, body, [checks.consumer], onProgress, () => undefined);
  const judged = judgeSqlArtifact(artifact, expectedTables, await checks.result());
  return { report: { ...read.report, checks: [...read.report.checks, ...judged.checks] }, findings: [...read.findings, ...judged.findings] };
}

interface EngineJudgement {
  readonly checks: VerificationCheck[];
  readonly findings: Finding[];
  readonly objectCounts?: Record<string, number>;
}

type ExpectedTable = QualifiedName & { readonly rows: number };

const MAX_NAMES = 10;
function nameList(names: readonly string[]): string {
  return names.length <= MAX_NAMES ? names.join(', ') : `${names.slice(0, MAX_NAMES).join(', ')} and ${names.length - MAX_NAMES} more`;
}

function tableSetCheck(
  artifact: ManifestArtifact,
  expected: readonly QualifiedName[],
  found: readonly QualifiedName[],
  display: (table: QualifiedName) => string,
  note: string,
): { check: VerificationCheck; finding?: Finding } {
  const diff = diffTableSets(expected, found);
  const ok = diff.missing.length === 0 && diff.unexpected.length === 0;
  const detail = ok
    ? `${expected.length} tables in the manifest, the same ${found.length} in the artifact${note}`
    : `manifest ${expected.length} tables, artifact ${found.length}` +
      (diff.missing.length > 0 ? `; missing from the artifact: ${nameList(diff.missing.map(display))}` : '') +
      (diff.unexpected.length > 0 ? `; not in the manifest: ${nameList(diff.unexpected.map(display))}` : '');
  return {
    check: { name: 'table-set', ok, detail },
    ...(ok ? {} : { finding: { name: 'TableSetMismatch' as const, message: `${artifact.key} (database ${artifact.database}): ${detail}` } }),
  };
}

/** From the two pg_restore runs to checks and findings. */
export function judgePgArchive(
  artifact: ManifestArtifact,
  expected: readonly ExpectedTable[],
  archive: { listing?: string; tocError?: string; fullReadError?: string },
): EngineJudgement {
  const checks: VerificationCheck[] = [];
  const findings: Finding[] = [];
  let objectCounts: Record<string, number> | undefined;

  if (archive.listing === undefined) {
    const detail = archive.tocError ?? 'pg_restore --list failed';
    checks.push({ name: 'toc', ok: false, detail });
    findings.push({ name: 'ArchiveCorrupt', message: `${artifact.key}: the archive's table of contents cannot be read (${detail})` });
  } else {
    const toc = summarizeToc(archive.listing, expected.map((table) => table.schema));
    objectCounts = toc.objectCounts;
    const counts = Object.entries(toc.objectCounts).sort(([a], [b]) => a.localeCompare(b)).map(([desc, n]) => `${n} ${desc}`).join(', ');
    const dbname = /^;\s+dbname: (.*)$/m.exec(archive.listing)?.[1];
    checks.push({ name: 'toc', ok: true, detail: `${toc.entries.length} entries${dbname !== undefined ? ` of database ${dbname}` : ''}: ${counts}` });

    // Partitioned tables hold no rows of their own: a definition without a data entry is
    // present when the manifest counted 0 rows for it.
    const emptyInManifest = new Set(expected.filter((table) => table.rows === 0).map((table) => JSON.stringify([table.schema, table.name])));
    const withoutData = toc.tablesWithoutData.filter((table) => emptyInManifest.has(JSON.stringify([table.schema, table.name])));
    const note =
      (withoutData.length > 0 ? `, ${withoutData.length} of them without rows of their own (partitioned)` : '') +
      (toc.extensionData.length > 0 ? `; ${toc.extensionData.length} extension configuration table(s) not compared` : '');
    const tableSet = tableSetCheck(artifact, expected, [...toc.dataTables, ...withoutData], pgDisplayName, note);
    if (dbname !== undefined && dbname !== artifact.database) {
      checks.push({ name: 'database', ok: false, detail: `manifest database ${artifact.database}, archive of database ${dbname}` });
      findings.push({ name: 'TableSetMismatch', message: `${artifact.key} is an archive of database ${dbname}, the manifest says ${artifact.database}` });
    }
    checks.push(tableSet.check);
    if (tableSet.finding) findings.push(tableSet.finding);
  }

  if (archive.fullReadError !== undefined) {
    checks.push({ name: 'full-read', ok: false, detail: archive.fullReadError });
    findings.push({ name: 'ArchiveCorrupt', message: `${artifact.key} cannot be read to its end by pg_restore (${archive.fullReadError})` });
  } else {
    checks.push({ name: 'full-read', ok: true, detail: 'pg_restore --file=/dev/null read every entry to the end of the archive' });
  }
  return { checks, findings, ...(objectCounts ? { objectCounts } : {}) };
}

/** From the decompressed SQL scan to checks and findings. */
export function judgeSqlArtifact(
  artifact: ManifestArtifact,
  expected: readonly QualifiedName[],
  result: { scan: { tables: readonly { database: string; name: string }[]; completed: boolean; bytes: number }; decompressError?: string; method: string },
): EngineJudgement {
  const checks: VerificationCheck[] = [];
  const findings: Finding[] = [];
  if (result.decompressError !== undefined) {
    checks.push({ name: 'decompress', ok: false, detail: result.decompressError });
    findings.push({ name: 'ArchiveCorrupt', message: `${artifact.key} does not decompress to its end (${result.decompressError})` });
  } else {
    checks.push({
      name: 'decompress',
      ok: true,
      detail: result.method === 'none' ? `uncompressed, ${result.scan.bytes} bytes of SQL` : `${result.method}: ${result.scan.bytes} bytes of SQL`,
    });
  }
  if (result.scan.completed) {
    checks.push({ name: 'completion-marker', ok: true, detail: 'ends with the dump client\'s "-- Dump completed" line' });
  } else {
    const detail = 'no "-- Dump completed" line at the end: the dump client did not finish writing this dump';
    checks.push({ name: 'completion-marker', ok: false, detail });
    findings.push({ name: 'IncompleteDump', message: `${artifact.key}: ${detail}` });
  }
  const found = result.scan.tables.map((table) => ({ schema: table.database, name: table.name }));
  const display = (table: QualifiedName) => {
    const quote = (part: string) => (/^[A-Za-z0-9_$]+$/.test(part) ? part : `\`${part.replaceAll('`', '``')}\``);
    return table.schema === '' ? quote(table.name) : `${quote(table.schema)}.${quote(table.name)}`;
  };
  const tableSet = tableSetCheck(artifact, expected, found, display, '');
  checks.push(tableSet.check);
  if (tableSet.finding) findings.push(tableSet.finding);
  return { checks, findings };
}
