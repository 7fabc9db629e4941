import type { S3Client } from '@aws-sdk/client-s3';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parseArgs } from 'node:util';
import { createS3Client } from '../lib/aws/s3-client';
import { listRuns, type RunRecord } from '../lib/catalog/catalog';
import { listDrillIds } from '../lib/catalog/drills';
import { DEFAULT_CONFIG_FILE, formatDuration, formatSize, loadConfig } from '../lib/config';
import { parseDrillReport, type DrillReport } from '../lib/domain/drill-report';
import { drillReportKey } from '../lib/domain/layout';
import { renderTable } from '../lib/format/table';
import { primaryBucketFromStack } from './status';

export const LIST_USAGE = `Usage: lifeboat list SOURCE [--config FILE] [--bucket BUCKET] [--region REGION] [--endpoint URL] [--limit N] [--local]

The runs of SOURCE, newest first: verdict, size, offsite copy, the drills that restored it,
and why a run does not count when it does not. Reads the bucket only. Without --bucket, the
primary bucket's name is read from the <appName>-Primary stack's outputs; --local reads the
local stack of \`lifeboat local up\`.

  --limit N   the newest N runs (default 20)
`;

/**
 * The drills of a source by the run they restored, newest drill first; a report that cannot be
 * read is skipped. Only drills from `since` on (a drill restores a run made before it).
 */
export async function drillsByRun(s3: S3Client, bucket: string, source: string, since = ''): Promise<Map<string, DrillReport[]>> {
  const byRun = new Map<string, DrillReport[]>();
  for (const id of (await listDrillIds(s3, bucket, source)).filter((drillId) => drillId >= since).reverse()) {
    let report: DrillReport;
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: drillReportKey(source, id) }));
      report = parseDrillReport(await (object.Body as { transformToString(): Promise<string> }).transformToString(), drillReportKey(source, id));
    } catch (error) {
      if ((error as Error).name !== 'NoSuchKey' && (error as Error).name !== 'InvalidDrillReport') throw error;
      continue;
    }
    byRun.set(report.runId, [...(byRun.get(report.runId) ?? []), report]);
  }
  return byRun;
}

/** One line per run: the table `lifeboat list` prints. */
export function renderRuns(runs: readonly RunRecord[], drills: ReadonlyMap<string, readonly DrillReport[]>): string {
  const rows = runs.map((run) => {
    const bytes = run.manifest
      ? run.manifest.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0)
      : run.objects.reduce((sum, object) => sum + object.bytes, 0);
    const offsite = run.offsite
      ? `confirmed (${run.offsite.region}, lag ${formatDuration(run.offsite.lagSeconds)})`
      : run.status === 'verified' ? 'not confirmed' : '-';
    const drilled = drills.get(run.runId) ?? [];
    const drill = drilled.length === 0
      ? '-'
      : `${drilled[0].verdict === 'ok' ? 'ok' : 'FAILED'} ${drilled[0].drillId} (${drilled[0].from}, RTO ${drilled[0].measuredRtoSeconds.toFixed(1)}s)${drilled.length > 1 ? ` +${drilled.length - 1}` : ''}`;
    return [run.runId, run.status, run.manifest ? formatSize(bytes) : `${formatSize(bytes)} (partial)`, offsite, drill, run.reason ?? ''];
  });
  return renderTable(['RUN', 'STATUS', 'SIZE', 'OFFSITE', 'DRILL', 'NOTE'], rows);
}

export interface ListDeps {
  readonly s3?: S3Client;
  readonly log?: (line: string) => void;
}

/** `lifeboat list`: 0 when the source has a verified run, 1 when it has none, 2 invalid arguments. */
export async function listCommand(argv: readonly string[], env: NodeJS.ProcessEnv, deps: ListDeps = {}): Promise<number> {
  const log = deps.log ?? ((line: string) => console.log(line));
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', default: DEFAULT_CONFIG_FILE }, bucket: { type: 'string' }, region: { type: 'string' },
      endpoint: { type: 'string' }, limit: { type: 'string', default: '20' },
    },
  });
  const config = loadConfig(values.config as string);
  const source = config.sources.find((candidate) => candidate.name === positionals[0]);
  const limit = Number(values.limit);
  const problems: string[] = [];
  if (positionals.length !== 1 || !source) {
    problems.push(`SOURCE: ${positionals.length === 1 ? `unknown source "${positionals[0]}"` : 'give one source'} (known: ${config.sources.map((candidate) => candidate.name).join(', ')})`);
  }
  if (!/^\d+$/.test(values.limit as string) || limit < 1) problems.push(`--limit: "${values.limit}" is not valid (valid: a whole number of at least 1)`);
  if (problems.length > 0 || !source) {
    log(`lifeboat list: invalid arguments:\n  - ${problems.join('\n  - ')}\n${LIST_USAGE}`);
    return 2;
  }
  const region = values.region ?? env.AWS_REGION ?? config.primary.region;
  const bucket = values.bucket ?? env.LIFEBOAT_BUCKET ?? (await primaryBucketFromStack(config, region));
  const s3 = deps.s3 ?? createS3Client({ region, endpoint: values.endpoint, env });
  try {
    const runs = await listRuns(s3, bucket, source.name, { newestFirst: true, limit });
    const drills = await drillsByRun(s3, bucket, source.name, runs.at(-1)?.runId);
    log(`Runs of ${source.name} (${source.engine}, ${source.tier.name}: RPO ${formatDuration(source.tier.rpoSeconds)}, RTO ${formatDuration(source.tier.rtoSeconds)}) in s3://${bucket}/runs/${source.name}/, newest first`);
    if (runs.length === 0) {
      log('  no runs yet');
      return 1;
    }
    log(renderRuns(runs, drills));
    return runs.some((run) => run.status === 'verified') ? 0 : 1;
  } finally {
    if (!deps.s3) s3.destroy();
  }
}
