import type { S3Client } from '@aws-sdk/client-s3';
import { parseArgs } from 'node:util';
import { createS3Client } from '../lib/aws/s3-client';
import { ConfigError, DEFAULT_CONFIG_FILE, loadConfig, type LifeboatConfig } from '../lib/config';
import type { DrillReport } from '../lib/domain/drill-report';
import { formatSeconds } from '../lib/drill/checks';
import { runDrill, type DrillError } from '../lib/drill/run-drill';
import type { DrillServerFactory } from '../lib/drill/servers';
import { TEST_CREDENTIALS } from '../local/servers/s3';

export const DRILL_USAGE = `Usage: lifeboat drill SOURCE --local [options]

Restores the latest verified run of SOURCE (or --run) into a throwaway server on this machine,
checks it against its manifest (tables, exact row counts, extensions, the source's drill
checks) and the measured RTO against the tier's, and writes drills/<source>/<drillId>/report.json.

  --config FILE           (default ${DEFAULT_CONFIG_FILE})
  --from primary|offsite  which copy to restore from (default primary)
  --bucket BUCKET         (default lifeboat-primary, or lifeboat-offsite with --from offsite)
  --report-bucket BUCKET  where drills/<source>/<drillId>/report.json goes (default: the primary
                          bucket: lifeboat-primary, or --bucket when restoring from primary)
  --endpoint URL          S3-compatible endpoint (default LIFEBOAT_S3_ENDPOINT)
  --run ID                that run instead of the latest verified one

Exit status: 0 the drill passed, 1 it failed (or could not run), 2 invalid arguments.
`;

export const DRILL_EXIT = { ok: 0, failed: 1, invalidInput: 2 } as const;

export interface DrillCommandDeps {
  readonly s3?: S3Client;
  /** Instead of reading --config. */
  readonly config?: LifeboatConfig;
  readonly startServer?: DrillServerFactory;
  readonly now?: () => Date;
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

const LOCAL_BUCKETS = { primary: 'lifeboat-primary', offsite: 'lifeboat-offsite' } as const;

/** `lifeboat drill`: returns the exit code (see DRILL_USAGE). */
export async function drillCommand(argv: readonly string[], env: NodeJS.ProcessEnv, deps: DrillCommandDeps = {}): Promise<number> {
  const log = deps.log ?? ((line: string) => console.log(line));
  let values: { config: string; local?: boolean; bucket?: string; 'report-bucket'?: string; endpoint?: string; from: string; run?: string };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        config: { type: 'string', default: DEFAULT_CONFIG_FILE }, local: { type: 'boolean' }, bucket: { type: 'string' }, 'report-bucket': { type: 'string' },
        endpoint: { type: 'string' }, from: { type: 'string', default: 'primary' }, run: { type: 'string' },
      },
    }) as { values: typeof values; positionals: string[] });
  } catch (error) {
    log(`lifeboat drill: ${(error as Error).message}`);
    log(DRILL_USAGE);
    return DRILL_EXIT.invalidInput;
  }
  const problems: string[] = [];
  if (positionals.length !== 1) problems.push(`give exactly one source (got ${positionals.length})`);
  if (!values.local) problems.push('--local: required (in AWS, drills are run by the drill state machine on the tier\'s schedule)');
  if (values.from !== 'primary' && values.from !== 'offsite') problems.push(`--from: "${values.from}" is not valid (valid: primary, offsite)`);
  let config: LifeboatConfig | undefined = deps.config;
  if (!config && problems.length === 0) {
    try {
      config = loadConfig(values.config);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push((error as Error).message);
    }
  }
  const source = config?.sources.find((candidate) => candidate.name === positionals[0]);
  if (config && positionals.length === 1 && !source) {
    problems.push(`unknown source "${positionals[0]}" (known: ${config.sources.map((candidate) => candidate.name).join(', ') || 'none'})`);
  }
  if (problems.length > 0 || !source) {
    log(`lifeboat drill: invalid arguments:\n  - ${problems.join('\n  - ')}`);
    log(DRILL_USAGE);
    return DRILL_EXIT.invalidInput;
  }

  const from = values.from as 'primary' | 'offsite';
  const bucket = values.bucket ?? LOCAL_BUCKETS[from];
  // As in AWS: a drill from the offsite copy reports in the primary bucket, with the others.
  const reportBucket = values['report-bucket'] ?? (from === 'primary' ? bucket : LOCAL_BUCKETS.primary);
  // --local: the local S3-compatible server accepts any credentials; real ones win when set.
  const s3 = deps.s3 ?? createS3Client({
    endpoint: values.endpoint ?? env.LIFEBOAT_S3_ENDPOINT,
    region: env.AWS_REGION ?? 'us-east-1',
    credentials: env.AWS_ACCESS_KEY_ID ? undefined : TEST_CREDENTIALS,
    env,
  });
  try {
    const report = await runDrill({ s3, bucket, reportBucket, source, from, runId: values.run, startServer: deps.startServer, now: deps.now, log, signal: deps.signal });
    printReport(report, bucket, log);
    return DRILL_EXIT.ok;
  } catch (error) {
    const report = (error as DrillError).report;
    if (report) printReport(report, bucket, log);
    else log(`drill ${source.name}: ${(error as Error).name}: ${(error as Error).message}`);
    return DRILL_EXIT.failed;
  } finally {
    if (!deps.s3) s3.destroy();
  }
}

function printReport(report: DrillReport, bucket: string, log: (line: string) => void): void {
  const server = report.server ? `${report.engine} ${report.server.version}` : report.engine;
  log(`drill ${report.source}: run ${report.runId} from ${report.from} (s3://${bucket}/) restored into a throwaway ${server}`);
  for (const check of report.checks) log(`  ${check.ok ? 'ok    ' : 'FAILED'} ${check.name}: ${check.detail}`);
  const { downloadSeconds, restoreSeconds, checkSeconds } = report.timings;
  log(`  timings: download ${formatSeconds(downloadSeconds)}, restore ${formatSeconds(restoreSeconds)}, checks ${formatSeconds(checkSeconds)}`);
  log(`  measured RTO ${formatSeconds(report.measuredRtoSeconds)} (target ${formatSeconds(report.rtoTargetSeconds)})`);
  if (report.error) log(`  ${report.error.name}: ${report.error.message}`);
  log(`drill ${report.verdict === 'ok' ? 'passed' : 'FAILED'}: drills/${report.source}/${report.drillId}/report.json`);
}
