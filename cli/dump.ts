import { parseArgs } from 'node:util';
import { DEFAULT_TIERS, formatDuration, formatSize, parseDuration, parseSize, type Engine } from '../lib/config';
import { lifeboatError } from '../lib/domain/errors';
import { engineOf, engineOfUrl } from '../lib/engines/registry';
import { isRunId, slotRunId } from '../lib/domain/run-id';
import { tlsFromUrl, type TlsOptions } from '../lib/domain/tls';
import type { BackupJob } from '../worker/job';
import { EXIT, manifestSummary, runJob, type WorkerDeps } from '../worker/main';

export const DUMP_USAGE = `Usage: lifeboat dump --source-url URL --source NAME --bucket BUCKET [options]

Runs the worker once, outside Step Functions: dumps the database into the bucket under the
commit protocol and prints the manifest summary. The password is read from the environment
(LIFEBOAT_DB_PASSWORD, or PGPASSWORD / MYSQL_PWD), never from the command line.

  --source-url URL        postgres://user@host:port/db or mysql://… / mariadb://… (no password);
                          TLS: ?sslmode=verify-full|require|prefer|disable&sslrootcert=/path/ca.pem
                          (default verify-full: the RDS bundle for RDS endpoints, the public CAs
                          otherwise; prefer for 127.0.0.1, ::1 and localhost)
  --databases A,B         databases to dump (default: the URL's path)
  --source NAME           source name, the runs/<source>/ prefix
  --bucket BUCKET         primary bucket
  --endpoint URL          S3-compatible endpoint (default: AWS; or LIFEBOAT_S3_ENDPOINT)
  --region REGION         (default: AWS_REGION)
  --tier NAME             tier1..tier4 (default tier3); gives the run id's slot and retention
  --run-id ID             slot to write, e.g. 20261126T030000Z (default: the current slot)
  --retention DURATION    Object Lock retention, e.g. 30d (default: the tier's; "none" for no lock)
  --object-lock-mode M    governance | compliance (default governance)
  --compression SPEC      e.g. gzip:1, zstd:3 (default: the engine's)
  --size-hint SIZE        expected size, e.g. 20GB (sizes the upload parts)
`;


/** Builds a job from the command line and the environment; every problem at once. */
export function dumpJobFromArgs(argv: readonly string[], env: NodeJS.ProcessEnv, now: Date): BackupJob {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'source-url': { type: 'string' }, databases: { type: 'string' }, source: { type: 'string' },
      bucket: { type: 'string' }, endpoint: { type: 'string' }, region: { type: 'string' },
      tier: { type: 'string', default: 'tier3' }, 'run-id': { type: 'string' }, retention: { type: 'string' },
      'object-lock-mode': { type: 'string', default: 'governance' }, compression: { type: 'string' },
      'size-hint': { type: 'string' },
    },
  });
  const problems: string[] = [];
  let url: URL | undefined;
  try {
    url = new URL(values['source-url'] ?? '');
  } catch {
    problems.push(`--source-url: ${values['source-url'] === undefined ? 'required' : 'not a URL'} (valid: postgres://user@host:5432/db)`);
  }
  const engine = url ? engineOfUrl(url)?.name : undefined;
  if (url && !engine) problems.push(`--source-url: unknown scheme "${url.protocol}" (valid: postgres://, mysql://, mariadb://)`);
  if (url?.password) {
    // Report without echoing the URL: it holds the password.
    problems.push('--source-url: contains a password; put it in LIFEBOAT_DB_PASSWORD instead (command lines are visible to every user of the machine)');
  }
  let tls: TlsOptions = { mode: 'verify-full' };
  if (url) {
    const parsed = tlsFromUrl(url, '--source-url');
    tls = parsed.tls;
    problems.push(...parsed.problems);
  }
  const databases = (values.databases ?? decodeURIComponent(url?.pathname.replace(/^\//, '') ?? ''))
    .split(',').map((name) => name.trim()).filter(Boolean);
  if (url && databases.length === 0) problems.push('--databases: required when the URL names no database (valid: a,b)');
  if (!values.source) problems.push('--source: required (valid: a-z, 0-9 and "-")');
  else if (!/^[a-z0-9-]+$/.test(values.source)) problems.push(`--source: "${values.source}" is not valid (valid: a-z, 0-9 and "-")`);
  if (!values.bucket) problems.push('--bucket: required');
  const tier = DEFAULT_TIERS[values.tier as string];
  if (!tier) problems.push(`--tier: unknown tier "${values.tier}" (known: ${Object.keys(DEFAULT_TIERS).join(', ')})`);
  const runId = values['run-id'] ?? (tier ? slotRunId(now, parseDuration(tier.schedule) as number) : undefined);
  if (runId !== undefined && !isRunId(runId)) problems.push(`--run-id: "${runId}" is not valid (valid: a UTC slot time such as 20261126T030000Z)`);
  const retentionText = values.retention ?? tier?.retention;
  const retentionSeconds = retentionText === 'none' || retentionText === undefined ? undefined : parseDuration(retentionText);
  if (retentionText !== undefined && retentionText !== 'none' && retentionSeconds === undefined) {
    problems.push(`--retention: "${retentionText}" is not valid (valid: a duration such as 30d, or none)`);
  }
  const lockMode = (values['object-lock-mode'] as string).toUpperCase();
  if (lockMode !== 'GOVERNANCE' && lockMode !== 'COMPLIANCE') {
    problems.push(`--object-lock-mode: "${values['object-lock-mode']}" is not valid (valid: governance, compliance)`);
  }
  const sizeHintBytes = values['size-hint'] ? parseSize(values['size-hint']) : undefined;
  if (values['size-hint'] && sizeHintBytes === undefined) problems.push(`--size-hint: "${values['size-hint']}" is not valid (valid: e.g. 500MB, 20GB)`);
  const facts = engine ? engineOf(engine) : undefined;
  const port = url?.port ? Number(url.port) : facts?.defaultPort;
  if (problems.length > 0) throw lifeboatError('InvalidInput', `lifeboat dump: invalid arguments:\n  - ${problems.join('\n  - ')}`);

  const password = env.LIFEBOAT_DB_PASSWORD || (facts ? env[facts.passwordEnv] : undefined) || undefined;
  return {
    source: values.source as string,
    engine: engine as Engine,
    tier: values.tier as string,
    runId: runId as string,
    target: {
      host: (url as URL).hostname,
      port: port as number,
      databases,
      username: decodeURIComponent((url as URL).username) || (facts as NonNullable<typeof facts>).defaultUser,
      password,
      tls,
    },
    bucket: values.bucket as string,
    s3Endpoint: values.endpoint ?? env.LIFEBOAT_S3_ENDPOINT,
    region: values.region ?? env.AWS_REGION ?? 'us-east-1',
    retentionSeconds,
    objectLockMode: lockMode as BackupJob['objectLockMode'],
    sizeHintBytes,
    compression: values.compression,
    excludeTables: [],
  };
}

/** `lifeboat dump`: returns the exit code (0 committed, 1 failed, 2 invalid arguments). */
export async function dumpCommand(argv: readonly string[], env: NodeJS.ProcessEnv, deps: WorkerDeps = {}): Promise<number> {
  const log = deps.log ?? ((line: string) => console.log(line));
  let job: BackupJob;
  try {
    job = dumpJobFromArgs(argv, env, (deps.now ?? (() => new Date()))());
  } catch (error) {
    log((error as Error).message);
    log(DUMP_USAGE);
    return EXIT.invalidInput;
  }
  const outcome = await runJob(job, { ...deps, log });
  if (outcome.manifest) {
    const summary = manifestSummary(outcome.manifest, job.bucket, outcome.manifestVersionId);
    log(`committed ${summary.source}/${summary.runId}: ${formatSize(summary.bytes)} in ${formatDuration(summary.durationSeconds)}, ` +
      `${summary.tables} tables, ${summary.rows} rows`);
    for (const artifact of summary.artifacts) log(`  s3://${job.bucket}/${artifact.key}  ${artifact.bytes} bytes  sha256 ${artifact.sha256}`);
    log(`  s3://${job.bucket}/${summary.manifestKey}`);
  }
  return outcome.code;
}
