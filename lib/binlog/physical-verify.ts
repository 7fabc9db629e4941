/**
 * Verification of a physical backup run (lib/binlog/physical.ts), in a Fargate task
 * (worker/binlog-physical-verify-main.ts) after the host's backup:
 *
 * 1. the three objects the host writes must be there (`ArtifactMissing` otherwise: an upload
 *    that failed or was killed stored no stream, so nothing is described, nothing counts);
 * 2. the manifest is written once (If-None-Match), its `physical` block from the host's
 *    checkpoints and info, `dependsOn` the chain back to the full;
 * 3. the chain is read back: each stream downloaded (its SHA-256 against its manifest; the new
 *    run's is the one just computed) and unpacked with `mbstream -x` / `xbstream -x`, then
 *    `--prepare` of the full and of each incremental in order. A failure names the step and the
 *    tool's last lines (`ArchiveCorrupt`, `ChecksumMismatch`).
 *
 * The verdict goes out as `$.verification` for the run's Commit, like every run's.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { listRuns } from '../catalog/catalog';
import { DigestMeter } from '../util/digest-meter';
import { lifeboatError } from '../domain/errors';
import { manifestKey, pitrCatalogName } from '../domain/layout';
import { MANIFEST_SCHEMA_VERSION, parseManifest, serializeManifest, type Manifest, type ManifestArtifact, type ObjectLock } from '../domain/manifest';
import { LIFEBOAT_VERSION } from '../domain/version';
import { VERIFICATION_SCHEMA_VERSION, type Verification, type VerificationCheck } from '../domain/verification';
import { objectLockParams } from '../steps/state';
import {
  extractArgv, majorOf, parseBackupInfo, parseCheckpoints, physicalChain, physicalManifestBlock, physicalObjectKey, prepareSteps,
  PHYSICAL_CHECKPOINTS_OBJECT, PHYSICAL_FORMATS, PHYSICAL_INFO_OBJECT, PHYSICAL_STREAM_OBJECT,
  type PhysicalRunRef, type PhysicalType,
} from './physical';

/** How many of a tool's last output lines an error carries. */
const TAIL_LINES = 12;

export interface ToolRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Its last lines of stdout and stderr together. */
  readonly tail: string;
}

/** Runs a tool (argv, no shell), optionally feeding `stdin`; resolves when it exited and its input was consumed or refused. */
export async function runTool(command: string, argv: readonly string[], opts: { stdin?: Readable; signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {}): Promise<ToolRun> {
  const child = spawn(command, argv, { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], signal: opts.signal, env: opts.env ?? process.env });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-16_384);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (error) => {
      keep(Buffer.from(`\n${command}: ${error.message}`));
      resolve({ code: 127, signal: null });
    });
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  let feed: Promise<void> = Promise.resolve();
  if (opts.stdin && child.stdin) {
    // A tool that exits early (EPIPE) fails by its exit code; the pipe's error is not the story.
    feed = pipeline(opts.stdin, child.stdin).catch((error: Error) => {
      if ((error as NodeJS.ErrnoException).code !== 'EPIPE' && (error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw error;
    });
  }
  const [exit] = await Promise.all([exited, feed]);
  return { ...exit, tail: output.trim().split('\n').slice(-TAIL_LINES).join('\n') };
}

function describeExit(run: ToolRun): string {
  return run.signal ? `signal ${run.signal}` : `exit ${run.code}`;
}

export interface StreamRef {
  readonly key: string;
  readonly versionId?: string;
  /** The SHA-256 its manifest names; absent for the run being verified (computed here). */
  readonly sha256?: string;
}

/** Downloads one stream and unpacks it into `dir` as it arrives; its bytes and SHA-256. */
export async function extractStream(
  deps: { s3: S3Client; bucket: string; streamTool: string; signal?: AbortSignal }, stream: StreamRef, dir: string,
): Promise<{ bytes: number; sha256: string; versionId?: string; parts: number }> {
  mkdirSync(dir, { recursive: true });
  const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: stream.key, ...(stream.versionId ? { VersionId: stream.versionId } : {}) }), { abortSignal: deps.signal });
  const counting = new DigestMeter();
  const body = object.Body as Readable;
  const { command, argv } = extractArgv(deps.streamTool, dir);
  const run = await runTool(command, argv, { stdin: body.pipe(counting), signal: deps.signal });
  const { bytes } = counting;
  const sha256 = counting.sha256();
  if (stream.sha256 && sha256 !== stream.sha256) {
    throw lifeboatError('ChecksumMismatch', `s3://${deps.bucket}/${stream.key}: sha256 ${sha256} read (${bytes} bytes), ${stream.sha256} in its manifest`);
  }
  if (run.code !== 0) {
    throw lifeboatError('ArchiveCorrupt', `${command} -x of s3://${deps.bucket}/${stream.key} (${bytes} bytes) failed (${describeExit(run)}): ${run.tail}`);
  }
  const parts = Number(/-(\d+)"?$/.exec(object.ETag ?? '')?.[1] ?? 1);
  return { bytes, sha256, ...(object.VersionId ? { versionId: object.VersionId } : {}), parts };
}

/**
 * `--prepare` of a chain unpacked into `fullDir` and `incrementalDirs` (in order). A failure
 * names the step and the tool's last lines.
 */
export async function prepareChain(tool: string, fullDir: string, incrementalDirs: readonly string[], opts: { signal?: AbortSignal; log?: (line: string) => void } = {}): Promise<string[]> {
  const done: string[] = [];
  for (const { step, command, argv } of prepareSteps(tool, fullDir, incrementalDirs)) {
    opts.log?.(`${step}: ${command} ${argv.join(' ')}`);
    const run = await runTool(command, argv, { signal: opts.signal });
    if (run.code !== 0) {
      throw lifeboatError('ArchiveCorrupt', `${step} failed (${command} ${describeExit(run)}) after ${done.length === 0 ? 'no step' : done.join(', ')}: ${run.tail}`);
    }
    done.push(step);
  }
  return done;
}

/** The chain of physical runs that ends at `runId`, read from the catalog. */
export async function readPhysicalRuns(s3: S3Client, bucket: string, source: string): Promise<PhysicalRunRef[]> {
  const runs = await listRuns(s3, bucket, pitrCatalogName(source));
  return runs.map((run) => ({
    runId: run.runId,
    ...(run.manifest ? { manifest: run.manifest } : {}),
    ...(run.status === 'verified' ? { verdict: 'ok' as const } : run.status === 'failed' ? { verdict: 'failed' as const } : {}),
  }));
}

/**
 * Downloads, unpacks and prepares the chain `chain` (full first) under `workDir`; returns the
 * prepared directory. Every stream is checked against its manifest's SHA-256.
 */
export async function prepareChainFromBucket(
  deps: { s3: S3Client; bucket: string; tool: string; streamTool: string; signal?: AbortSignal; log?: (line: string) => void },
  chain: readonly { runId: string; stream: StreamRef }[], workDir: string,
): Promise<{ preparedDir: string; streams: { runId: string; bytes: number; sha256: string }[]; steps: string[] }> {
  const dirs: string[] = [];
  const streams: { runId: string; bytes: number; sha256: string }[] = [];
  for (const [index, link] of chain.entries()) {
    const dir = join(workDir, index === 0 ? 'full' : `incr${index}`);
    rmSync(dir, { recursive: true, force: true });
    const read = await extractStream(deps, link.stream, dir);
    deps.log?.(`${link.runId}: ${read.bytes} bytes, sha256 ${read.sha256}, unpacked into ${dir}`);
    streams.push({ runId: link.runId, bytes: read.bytes, sha256: read.sha256 });
    dirs.push(dir);
  }
  const [full, ...incrementals] = dirs;
  if (!full) throw lifeboatError('InvalidInput', 'an empty chain has nothing to prepare');
  const steps = await prepareChain(deps.tool, full, incrementals, deps);
  return { preparedDir: full, streams, steps };
}

/** The stream artifact of a physical run's manifest. */
export function streamOf(manifest: Manifest): ManifestArtifact {
  const stream = manifest.artifacts.find((artifact) => artifact.format === PHYSICAL_FORMATS[PHYSICAL_STREAM_OBJECT]);
  if (!stream) throw lifeboatError('InvalidManifest', `the manifest of ${manifest.source}/${manifest.runId} lists no ${PHYSICAL_STREAM_OBJECT} artifact`);
  return stream;
}

export interface PhysicalRunInput {
  readonly source: string;
  /** `mariadb` or `mysql`: the manifest's engine. */
  readonly engine: string;
  readonly tier: string;
  readonly runId: string;
  readonly type: PhysicalType;
  /** The incremental's prior run (Lifeboat passed its to_lsn to the host). */
  readonly prior?: string;
}

export interface PhysicalVerifyDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  /** `mariadb-backup` / `xtrabackup` and `mbstream` / `xbstream` of the verifier's image. */
  readonly tool: string;
  readonly streamTool: string;
  /** A scratch directory the chain is unpacked under (removed afterwards). */
  readonly scratch: string;
  readonly objectLock?: { readonly mode: ObjectLock['mode']; readonly retentionSeconds: number };
  readonly verifiedBy: string;
  readonly now?: () => Date;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** The `$.dump` summary of a physical run: the fields Commit, AwaitOffsite and Record read. */
export interface PhysicalRunSummary {
  readonly source: string;
  readonly runId: string;
  readonly engine: string;
  readonly method: 'pitr';
  readonly bucket: string;
  readonly manifestKey: string;
  readonly manifestVersionId?: string;
  readonly artifacts: { readonly key: string; readonly bytes: number; readonly sha256: string; readonly versionId?: string }[];
  readonly bytes: number;
  readonly durationSeconds: number;
  readonly physical: { readonly type: PhysicalType; readonly toLsn: string; readonly chain: string[] };
}

export interface PhysicalRunResult {
  readonly dump: PhysicalRunSummary;
  readonly verification: Verification;
}

async function readSmall(deps: PhysicalVerifyDeps, key: string): Promise<{ text: string; bytes: number; sha256: string; versionId?: string }> {
  let object;
  try {
    object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }), { abortSignal: deps.signal });
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if ((error as Error).name === 'NoSuchKey' || status === 404) {
      throw lifeboatError('ArtifactMissing',
        `s3://${deps.bucket}/${key} is missing: the host's backup did not finish (its stream, checkpoints and info are written only when the tool and the upload succeeded); nothing of this run counts`, error);
    }
    throw error;
  }
  const body = Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  return { text: body.toString('utf8'), bytes: body.length, sha256: createHash('sha256').update(body).digest('hex'), ...(object.VersionId ? { versionId: object.VersionId } : {}) };
}

/** Runs the step; throws `ArtifactMissing` when the host stored no complete backup, `AlreadyCommitted` when the run key holds another one. */
export async function verifyPhysicalRun(input: PhysicalRunInput, deps: PhysicalVerifyDeps): Promise<PhysicalRunResult> {
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? (() => undefined);
  const started = now();
  const catalog = pitrCatalogName(input.source);
  const key = (object: string) => physicalObjectKey(input.source, input.runId, object);
  if (input.type === 'incr' && !input.prior) throw lifeboatError('InvalidInput', `run ${input.runId}: an incremental needs its prior run`);

  // The small files are written after the stream's upload completed: they are the run's "done".
  const checkpointsObject = await readSmall(deps, key(PHYSICAL_CHECKPOINTS_OBJECT));
  const infoObject = await readSmall(deps, key(PHYSICAL_INFO_OBJECT));
  const checkpoints = parseCheckpoints(checkpointsObject.text, key(PHYSICAL_CHECKPOINTS_OBJECT));
  const info = parseBackupInfo(infoObject.text, key(PHYSICAL_INFO_OBJECT));

  const runs = await readPhysicalRuns(deps.s3, deps.bucket, input.source);
  const priorRun = input.prior ? runs.find((run) => run.runId === input.prior) : undefined;
  if (input.prior && (!priorRun?.manifest?.physical || priorRun.verdict !== 'ok')) {
    throw lifeboatError('RunNotVerified', `run ${input.runId}'s prior ${input.prior} is not a verified physical run of ${catalog} (${priorRun ? `verdict: ${priorRun.verdict ?? 'none'}` : 'not found'}): an incremental on it cannot be restored`);
  }
  const block = physicalManifestBlock({
    type: input.type, checkpoints, info, key: key(PHYSICAL_CHECKPOINTS_OBJECT),
    ...(priorRun?.manifest?.physical ? { prior: { runId: priorRun.runId, physical: priorRun.manifest.physical, dependsOn: priorRun.manifest.dependsOn } } : {}),
  });
  const chain = [...(priorRun ? physicalChain(runs, priorRun.runId, { requireVerified: true }) : [])];

  const work = join(deps.scratch, `physical-${input.source}-${input.runId}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    // The chain's earlier streams are checked against their manifests; this run's is read here first.
    const links = chain.map((run) => {
        const stream = streamOf(run.manifest as Manifest);
      return { runId: run.runId, stream: { key: stream.key, ...(stream.versionId ? { versionId: stream.versionId } : {}), sha256: stream.sha256 } };
    });
    const ownDir = join(work, links.length === 0 ? 'full' : `incr${links.length}`);
    const own = await extractStream({ ...deps }, { key: key(PHYSICAL_STREAM_OBJECT) }, ownDir).catch((error: Error) => {
      if ((error as { name?: string }).name === 'NoSuchKey' || /NoSuchKey|404/.test(error.message)) {
        throw lifeboatError('ArtifactMissing', `s3://${deps.bucket}/${key(PHYSICAL_STREAM_OBJECT)} is missing: the host's upload never completed; nothing of this run counts`, error);
      }
      throw error;
    });
    log(`${input.source}/${input.runId}: ${own.bytes} bytes of ${info.toolName} ${info.toolVersion} (${input.type}, LSN ${checkpoints.fromLsn} to ${checkpoints.toLsn}), sha256 ${own.sha256}`);

    const artifacts: ManifestArtifact[] = [
      { database: '*', key: key(PHYSICAL_STREAM_OBJECT), bytes: own.bytes, sha256: own.sha256, format: PHYSICAL_FORMATS[PHYSICAL_STREAM_OBJECT], compression: 'none', parts: own.parts, ...(own.versionId ? { versionId: own.versionId } : {}) },
      { database: '*', key: key(PHYSICAL_CHECKPOINTS_OBJECT), bytes: checkpointsObject.bytes, sha256: checkpointsObject.sha256, format: PHYSICAL_FORMATS[PHYSICAL_CHECKPOINTS_OBJECT], compression: 'none', parts: 1, ...(checkpointsObject.versionId ? { versionId: checkpointsObject.versionId } : {}) },
      { database: '*', key: key(PHYSICAL_INFO_OBJECT), bytes: infoObject.bytes, sha256: infoObject.sha256, format: PHYSICAL_FORMATS[PHYSICAL_INFO_OBJECT], compression: 'none', parts: 1, ...(infoObject.versionId ? { versionId: infoObject.versionId } : {}) },
    ];
    const manifest: Manifest = {
      schemaVersion: MANIFEST_SCHEMA_VERSION,
      lifeboatVersion: LIFEBOAT_VERSION,
      source: catalog,
      engine: input.engine,
      tier: input.tier,
      runId: input.runId,
      startedAt: (info.startTime ?? started).toISOString(),
      finishedAt: (info.endTime ?? started).toISOString(),
      server: { version: info.serverVersion, major: majorOf(info.serverVersion) },
      client: { tool: info.toolName, version: info.toolVersion, major: majorOf(info.toolVersion) },
      databaseSizeBytes: own.bytes,
      artifacts,
      tables: [],
      ...(block.dependsOn ? { dependsOn: block.dependsOn } : {}),
      rowCountConsistency: 'same-snapshot',
      extensions: [],
      ...(deps.objectLock ? { objectLock: { mode: deps.objectLock.mode, retainUntil: new Date(started.getTime() + deps.objectLock.retentionSeconds * 1000).toISOString() } } : {}),
      physical: block.physical,
    };
    const written = await writeManifest(deps, manifest);

    // Then the chain before it, and the prepare of all of it.
    let verdict: { ok: true; steps: string[] } | { ok: false; error: Error };
    try {
      for (const [index, link] of links.entries()) {
        const read = await extractStream(deps, link.stream, join(work, index === 0 ? 'full' : `incr${index}`));
        log(`${link.runId}: ${read.bytes} bytes, sha256 ${read.sha256} as its manifest says`);
      }
      const dirs = [...links.map((_, index) => join(work, index === 0 ? 'full' : `incr${index}`)), ownDir];
      const [full, ...incrementals] = dirs as [string, ...string[]];
      const steps = await prepareChain(deps.tool, full, incrementals, { signal: deps.signal, log });
      verdict = { ok: true, steps };
    } catch (error) {
      if (!['ArchiveCorrupt', 'ChecksumMismatch'].includes((error as Error).name)) throw error;
      verdict = { ok: false, error: error as Error };
    }
    log(`${input.source}/${input.runId}: ${verdict.ok ? `prepared (${verdict.steps.join(', ')})` : `${verdict.error.name}: ${verdict.error.message}`}`);
    const chainIds = [...chain.map((run) => run.runId), input.runId];
    const checks: VerificationCheck[] = [
      { name: 'sha256', ok: true, detail: `${PHYSICAL_STREAM_OBJECT} read whole: ${own.bytes} bytes, sha256 ${own.sha256}` },
      { name: 'extract', ok: true, detail: `${deps.streamTool} -x unpacked it` },
      { name: 'chain', ok: verdict.ok || verdict.error.name !== 'ChecksumMismatch', detail: verdict.ok || verdict.error.name !== 'ChecksumMismatch' ? `chain ${chainIds.join(' → ')}: every earlier stream matches its manifest's sha256` : verdict.error.message },
      { name: 'prepare', ok: verdict.ok, detail: verdict.ok ? `${deps.tool} --prepare of the chain: ${verdict.steps.join(', ')}` : verdict.error.message },
    ];
    const finished = now();
    const verification: Verification = {
      schemaVersion: VERIFICATION_SCHEMA_VERSION,
      lifeboatVersion: LIFEBOAT_VERSION,
      source: catalog,
      runId: input.runId,
      verdict: verdict.ok ? 'ok' : 'failed',
      verifiedAt: finished.toISOString(),
      durationMs: Math.max(0, finished.getTime() - started.getTime()),
      verifiedBy: deps.verifiedBy,
      manifest: { key: written.key, ...(written.versionId ? { versionId: written.versionId } : {}), sha256: written.sha256 },
      artifacts: artifacts.map((artifact, index) => ({
        key: artifact.key, ...(artifact.versionId ? { versionId: artifact.versionId } : {}), bytes: artifact.bytes, sha256: artifact.sha256,
        checks: index === 0 ? checks : [{ name: 'sha256', ok: true, detail: `read whole: ${artifact.bytes} bytes, sha256 ${artifact.sha256}` }, { name: 'parsed', ok: true, detail: index === 1 ? `${checkpoints.backupType}, LSN ${checkpoints.fromLsn} to ${checkpoints.toLsn}` : `binlog ${block.physical.binlog.file}:${block.physical.binlog.position}` }],
      })),
      ...(verdict.ok ? {} : { error: { name: verdict.error.name, message: verdict.error.message } }),
    };
    const startTime = info.startTime ?? started;
    const endTime = info.endTime ?? started;
    return {
      dump: {
        source: catalog, runId: input.runId, engine: input.engine, method: 'pitr', bucket: deps.bucket,
        manifestKey: written.key, ...(written.versionId ? { manifestVersionId: written.versionId } : {}),
        artifacts: artifacts.map((artifact) => ({ key: artifact.key, bytes: artifact.bytes, sha256: artifact.sha256, ...(artifact.versionId ? { versionId: artifact.versionId } : {}) })),
        bytes: own.bytes,
        durationSeconds: Math.max(0, Math.round((endTime.getTime() - startTime.getTime()) / 1000)),
        physical: { type: input.type, toLsn: checkpoints.toLsn, chain: chainIds },
      },
      verification,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Writes manifest.json once (`If-None-Match: *`); a retry finds its own (same stream) and goes on. */
async function writeManifest(deps: PhysicalVerifyDeps, manifest: Manifest): Promise<{ key: string; versionId?: string; sha256: string }> {
  const key = manifestKey(manifest.source, manifest.runId);
  const text = serializeManifest(manifest);
  try {
    const put = await deps.s3.send(new PutObjectCommand({
      Bucket: deps.bucket, Key: key, Body: text, ContentType: 'application/json', IfNoneMatch: '*', ...objectLockParams(manifest),
    }), { abortSignal: deps.signal });
    return { key, sha256: sha256(text), ...(put.VersionId ? { versionId: put.VersionId } : {}) };
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if ((error as Error).name !== 'PreconditionFailed' && status !== 412) throw error;
  }
  const existing = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }), { abortSignal: deps.signal });
  const existingText = await (existing.Body as { transformToString(): Promise<string> }).transformToString();
  let same = false;
  try {
    const found = parseManifest(existingText, key);
    same = found.artifacts[0]?.sha256 === manifest.artifacts[0]?.sha256 && found.physical?.toLsn === manifest.physical?.toLsn;
  } catch {
    same = false;
  }
  if (!same) throw lifeboatError('AlreadyCommitted', `s3://${deps.bucket}/${key} already describes another backup; a run's manifest is never overwritten`);
  return { key, sha256: sha256(existingText), ...(existing.VersionId ? { versionId: existing.VersionId } : {}) };
}
