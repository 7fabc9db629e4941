import type { S3Client } from '@aws-sdk/client-s3';
import { parseArgs } from 'node:util';
import { createS3Client } from '../lib/aws/s3-client';
import { latestVerifiedRun, listRuns, readRun, type RunRecord } from '../lib/catalog/catalog';
import { DEFAULT_CONFIG_FILE, formatSize, loadConfig } from '../lib/config';
import { isRunId } from '../lib/domain/run-id';
import type { Verification } from '../lib/domain/verification';
import { storageNames } from '../lib/stacks/naming';
import { verifyRun } from '../lib/verify/verify-run';
import { previousVerifiedSizes } from '../lib/verify/verify-task';
import { primaryBucketFromStack } from './status';

export const VERIFY_USAGE = `Usage: lifeboat verify SOURCE [--run ID] [--from primary|offsite] [options]

Runs the verifier on demand: reads every byte of a run as the backup run's verifier does
(SHA-256 and size against the manifest, a full read of each archive, the table set) and
compares the verdict with the one recorded when the run was made. Writes nothing.

  --run ID                that run (default: the latest verified run)
  --from primary|offsite  which copy to read (default primary)
  --bucket BUCKET         default: the primary stack's output; the config's offsite bucket for offsite
  --region REGION         default: the config's region of that copy
  --endpoint URL          S3-compatible endpoint
  --config FILE           default ${DEFAULT_CONFIG_FILE}
  --local                 the local stack of \`lifeboat local up\`

Exit status: 0 the run reads back ok, 1 it does not (or there is no run), 2 invalid arguments.
`;

export interface VerifyDeps {
  readonly s3?: S3Client;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** `lifeboat verify`: see VERIFY_USAGE. */
export async function verifyCommand(argv: readonly string[], env: NodeJS.ProcessEnv, deps: VerifyDeps = {}): Promise<number> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', default: DEFAULT_CONFIG_FILE }, run: { type: 'string' }, from: { type: 'string', default: 'primary' },
      bucket: { type: 'string' }, region: { type: 'string' }, endpoint: { type: 'string' },
    },
  });
  const config = loadConfig(values.config as string);
  const source = config.sources.find((candidate) => candidate.name === positionals[0]);
  const problems: string[] = [];
  if (positionals.length !== 1 || !source) {
    problems.push(`SOURCE: ${positionals.length === 1 ? `unknown source "${positionals[0]}"` : 'give one source'} (known: ${config.sources.map((candidate) => candidate.name).join(', ')})`);
  }
  if (values.run !== undefined && !isRunId(values.run)) problems.push(`--run: "${values.run}" is not valid (valid: a run id such as 20261126T030000Z)`);
  if (values.from !== 'primary' && values.from !== 'offsite') problems.push(`--from: "${values.from}" is not valid (valid: primary, offsite)`);
  if (problems.length > 0 || !source) {
    log(`lifeboat verify: invalid arguments:\n  - ${problems.join('\n  - ')}\n${VERIFY_USAGE}`);
    return 2;
  }
  const offsite = values.from === 'offsite';
  const region = values.region ?? (offsite ? config.offsite.region : env.AWS_REGION ?? config.primary.region);
  const bucket = values.bucket ?? (offsite ? storageNames(config).offsiteBucketName : env.LIFEBOAT_BUCKET ?? (await primaryBucketFromStack(config, region)));
  const s3 = deps.s3 ?? createS3Client({ region, endpoint: values.endpoint, env });
  try {
    const run = values.run !== undefined
      ? await readRun(s3, bucket, source.name, values.run)
      : (await latestVerifiedRun(s3, bucket, source.name)) ?? (await listRuns(s3, bucket, source.name, { newestFirst: true, limit: 1 }))[0];
    if (!run || run.objects.length === 0) {
      log(`verify ${source.name}: ${values.run ? `run ${values.run} does not exist` : 'no run'} in s3://${bucket}/runs/${source.name}/`);
      return 1;
    }
    log(`verify ${source.name}/${run.runId} in s3://${bucket}/ (${values.from}): recorded ${recorded(run)}`);
    const verification = await verifyRun({
      s3, bucket, source: source.name, runId: run.runId,
      // The manifest the recorded verdict is about; without one, the current version.
      manifestVersionId: run.verification?.manifest?.versionId,
      previousVerifiedSizes: await previousVerifiedSizes(s3, bucket, source.name, run.runId),
      verifiedBy: 'cli',
      env,
      signal: deps.signal,
    });
    printVerification(verification, log);
    const ok = verification.verdict === 'ok';
    if (!ok && run.status === 'verified') {
      log(`  this run was verified ${run.verification?.verifiedAt ?? ''} and no longer reads back: do not restore from this copy; take another run (lifeboat list ${source.name}) or the other copy (--from ${offsite ? 'primary' : 'offsite'})`);
    }
    log(`verify ${source.name}/${run.runId}: ${ok ? 'ok' : 'FAILED'} (${(verification.durationMs / 1000).toFixed(1)} s; nothing was written)`);
    return ok ? 0 : 1;
  } finally {
    if (!deps.s3) s3.destroy();
  }
}

function recorded(run: RunRecord): string {
  if (run.verification) return `verdict ${run.verification.verdict} at ${run.verification.verifiedAt} (${run.verification.verifiedBy}); status ${run.status}${run.reason ? `: ${run.reason}` : ''}`;
  return `status ${run.status}${run.reason ? `: ${run.reason}` : ''}`;
}

function printVerification(verification: Verification, log: (line: string) => void): void {
  for (const artifact of verification.artifacts) {
    log(`  ${artifact.key} (${formatSize(artifact.bytes)}${artifact.versionId ? `, version ${artifact.versionId}` : ''})`);
    for (const check of artifact.checks) log(`    ${check.ok ? 'ok    ' : 'FAILED'} ${check.name}: ${check.detail}`);
  }
  if (verification.error) log(`  ${verification.error.name}: ${verification.error.message}`);
}
