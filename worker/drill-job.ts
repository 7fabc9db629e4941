/**
 * One restore drill of one source, from the environment the drill task definition
 * (lib/constructs/drill-task.ts) and the drill state machine's overrides set. Pure: no SDK,
 * so the construct can import the variable names without pulling the worker in.
 */
import type { Source } from '../lib/config/types';
import { lifeboatError } from '../lib/domain/errors';

export const DRILL_ENV = {
  bucket: 'LIFEBOAT_BUCKET',
  offsiteBucket: 'LIFEBOAT_OFFSITE_BUCKET',
  offsiteRegion: 'LIFEBOAT_OFFSITE_REGION',
  /** The resolved Source as JSON: identifiers, tier, drill checks; nothing secret. */
  sourceConfig: 'LIFEBOAT_SOURCE_CONFIG',
  /** `primary` or `offsite` (the execution input's `from`). */
  from: 'LIFEBOAT_DRILL_FROM',
  taskToken: 'LIFEBOAT_TASK_TOKEN',
  /** A run id to restore instead of the latest verified run (operators). */
  runId: 'LIFEBOAT_RUN_ID',
  s3Endpoint: 'LIFEBOAT_S3_ENDPOINT',
} as const;

export type DrillFrom = 'primary' | 'offsite';

export interface DrillJob {
  /** The primary bucket: read by primary drills, and where every drill report is written. */
  readonly bucket: string;
  readonly offsiteBucket?: string;
  readonly offsiteRegion?: string;
  readonly source: Source;
  readonly from: DrillFrom;
  readonly runId?: string;
  readonly taskToken?: string;
  readonly s3Endpoint?: string;
  readonly region?: string;
}

/** Reads the job, reporting every missing or invalid variable at once (`InvalidInput`). */
export function drillJobFromEnv(env: Record<string, string | undefined>): DrillJob {
  const problems: string[] = [];
  const value = (name: string) => env[name]?.trim() || undefined;
  const bucket = value(DRILL_ENV.bucket);
  if (!bucket) problems.push(`${DRILL_ENV.bucket}: required`);
  const fromText = value(DRILL_ENV.from) ?? 'primary';
  if (fromText !== 'primary' && fromText !== 'offsite') {
    problems.push(`${DRILL_ENV.from}: "${fromText}" is not valid (valid: primary, offsite)`);
  }
  const from = fromText as DrillFrom;
  const offsiteBucket = value(DRILL_ENV.offsiteBucket);
  const offsiteRegion = value(DRILL_ENV.offsiteRegion);
  if (from === 'offsite' && !offsiteBucket) problems.push(`${DRILL_ENV.offsiteBucket}: required for a drill from offsite`);
  if (from === 'offsite' && !offsiteRegion) problems.push(`${DRILL_ENV.offsiteRegion}: required for a drill from offsite`);
  const source = parseSource(value(DRILL_ENV.sourceConfig), problems);
  if (problems.length > 0) throw lifeboatError('InvalidInput', `invalid drill environment:\n  - ${problems.join('\n  - ')}`);
  return {
    bucket: bucket as string,
    offsiteBucket,
    offsiteRegion,
    source: source as Source,
    from,
    runId: value(DRILL_ENV.runId),
    taskToken: value(DRILL_ENV.taskToken),
    s3Endpoint: value(DRILL_ENV.s3Endpoint),
    region: value('AWS_REGION') ?? value('AWS_DEFAULT_REGION'),
  };
}

/** The resolved source the construct serialized; checked for what a drill reads. */
function parseSource(text: string | undefined, problems: string[]): Source | undefined {
  const name = DRILL_ENV.sourceConfig;
  if (!text) {
    problems.push(`${name}: required`);
    return undefined;
  }
  let parsed: Partial<Source>;
  try {
    parsed = JSON.parse(text) as Partial<Source>;
  } catch {
    problems.push(`${name}: not valid JSON`);
    return undefined;
  }
  if (typeof parsed?.name !== 'string' || !/^[a-z0-9-]+$/.test(parsed.name)) problems.push(`${name}.name: a source name (a-z, 0-9 and "-") is required`);
  if (!['postgres', 'mysql', 'mariadb'].includes(String(parsed?.engine))) problems.push(`${name}.engine: "${String(parsed?.engine)}" is not valid (valid: postgres, mysql, mariadb)`);
  if (typeof parsed?.tier?.rtoSeconds !== 'number' || !(parsed.tier.rtoSeconds > 0)) problems.push(`${name}.tier.rtoSeconds: a positive number is required`);
  if (!Array.isArray(parsed?.connection?.databases) || parsed.connection.databases.length === 0) problems.push(`${name}.connection.databases: at least one database is required`);
  if (!Array.isArray(parsed?.drillChecks)) problems.push(`${name}.drillChecks: a list is required`);
  return parsed as Source;
}
