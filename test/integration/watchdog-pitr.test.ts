/**
 * The watchdog watching a PITR source's WAL archive, on real components and IAM-true: PostgreSQL
 * 15 archiving with pgBackRest into the synthesized primary bucket (test/harness/pitr.ts, through
 * the TLS front that simulates the host's S3 outage), the watchdog handler run as the role the
 * templates give it (every S3 call evaluated against the synthesized policies, local/iam), and
 * the metrics it publishes evaluated against the synthesized alarms of the source's shard.
 *
 * The acceptance faults of issue 13: the archive's S3 failing for a while (the WAL queues on the
 * host, the archive-age alarm fires; when S3 returns the archive catches up and no gap appears);
 * a segment removed from the archive (ArchiveGaps ≥ 1, the gap alarm fires, the window to the
 * newest point is gone and status shows it broken at the segment).
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { parseConfig, type LifeboatConfig, type Source } from '../../lib/config';
import { archiveAgeAlarmThresholdSeconds, watchdogAlarmNames } from '../../lib/constructs/watchdog';
import { listArchivedSegments, type ArchivedSegment } from '../../lib/pitr/archive-state';
import type { BackupSet } from '../../lib/pitr/pgbackrest';
import { describePitrStatus, pitrStatus } from '../../lib/pitr/pitr-status';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { asPrincipal, IamModel } from '../../local/iam';
import { synthApp, type SynthesizedApp } from '../../local/synth';
import { startPitrStack, type PitrStack } from '../harness/pitr';
import { delay } from '../harness/processes';
import { TEST_CREDENTIALS } from '../harness/s3';

// The shortest RPO method 'pitr' takes (archive_timeout a minute): the outage need last only minutes.
const config: LifeboatConfig = parseConfig({
  appName: 'Lifeboat',
  primary: { region: 'eu-west-1', account: '111111111111' },
  offsite: { region: 'eu-central-1', account: '222222222222' },
  tiers: { fast: { rpo: '3m', rto: '1h', schedule: '2m', retention: '1d', drill: '1d' } },
  sources: [
    ['ledger', 'pitr'],
    // Both methods, never set up on a host: nothing in its repository, nothing read but its listing.
    ['billing', ['logical', 'pitr']],
  ].map(([name, method]) => ({
    name, engine: 'postgres', tier: 'fast', method,
    pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/srv/pg' },
    connection: { host: `${name as string}.example.internal`, database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:ledger-AbCdEf' },
    network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d4e5f60718'], securityGroupIds: ['sg-0a1b2c3d4e5f60718'] },
  })),
});
const ledger = config.sources[0] as Source;

type Emf = Record<string, unknown> & { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] } };
interface AlarmProperties {
  readonly AlarmName: string;
  readonly Namespace: string;
  readonly MetricName: string;
  readonly Dimensions: readonly { Name: string; Value: string }[];
  readonly Statistic: string;
  readonly Unit?: string;
  readonly Period: number;
  readonly EvaluationPeriods: number;
  readonly Threshold: number;
  readonly ComparisonOperator: string;
  readonly TreatMissingData: string;
}

/**
 * The state an alarm of one evaluation period takes from the EMF documents published in that
 * period: the datapoints CloudWatch extracts for its metric (namespace, exactly its dimensions,
 * its unit), its statistic, its comparison, and its treatment of a period without data.
 */
function alarmState(alarm: AlarmProperties, documents: readonly Emf[]): 'ALARM' | 'OK' {
  expect(alarm).toMatchObject({ EvaluationPeriods: 1, Statistic: 'Maximum', Period: 300 });
  const names = alarm.Dimensions.map((dimension) => dimension.Name).sort().join(',');
  const values = documents.flatMap((document) => document._aws.CloudWatchMetrics
    .filter((directive) => directive.Namespace === alarm.Namespace
      && directive.Dimensions.some((set) => [...set].sort().join(',') === names)
      && alarm.Dimensions.every((dimension) => document[dimension.Name] === dimension.Value)
      && directive.Metrics.some((metric) => metric.Name === alarm.MetricName && (alarm.Unit === undefined || metric.Unit === alarm.Unit)))
    .map(() => document[alarm.MetricName] as number));
  if (values.length === 0) {
    if (alarm.TreatMissingData === 'breaching') return 'ALARM';
    if (alarm.TreatMissingData === 'notBreaching') return 'OK';
    throw new Error(`${alarm.AlarmName}: TreatMissingData ${alarm.TreatMissingData} is not evaluated here`);
  }
  const value = Math.max(...values);
  const breaches: Record<string, (v: number) => boolean> = {
    GreaterThanThreshold: (v) => v > alarm.Threshold,
    GreaterThanOrEqualToThreshold: (v) => v >= alarm.Threshold,
  };
  if (!breaches[alarm.ComparisonOperator]) throw new Error(`${alarm.AlarmName}: ${alarm.ComparisonOperator} is not evaluated here`);
  return breaches[alarm.ComparisonOperator](value) ? 'ALARM' : 'OK';
}

let app: SynthesizedApp;
let aws: LocalAws;
let stack: PitrStack;
let full: BackupSet;
let watchdogRole: string;
let handler: (event: unknown, context: Context) => Promise<unknown>;
let ageAlarm: AlarmProperties;
let gapAlarm: AlarmProperties;
/** The two segments archived after the full, before the outage. */
let beforeOutage: string[];
const original = { ...process.env };

/** One watchdog invocation as its role: the EMF document it published for `source`. */
async function runWatchdog(source = 'ledger'): Promise<Emf> {
  const lines: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    return true;
  });
  try {
    await asPrincipal(watchdogRole, () => handler({}, { functionName: 'watchdog', awsRequestId: 'request-1', getRemainingTimeInMillis: () => 60_000 } as unknown as Context));
  } finally {
    spy.mockRestore();
  }
  const document = lines.map((line) => JSON.parse(line) as Emf).find((candidate) => candidate._aws && candidate.source === source);
  if (!document) throw new Error(`the watchdog published nothing for ${source}: ${lines.join('\n')}`);
  return document;
}

const location = () => ({ s3: stack.s3.client(), bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza });
async function segments(): Promise<ArchivedSegment[]> {
  const where = location();
  try {
    return await listArchivedSegments(where);
  } finally {
    where.s3.destroy();
  }
}
const archiver = async () => {
  const [failed, last] = (await stack.source.psql('SELECT failed_count, coalesce(last_archived_wal, \'\') FROM pg_stat_archiver')).trim().split('|');
  return { failed: Number(failed), last };
};
/** Committed writes, each closing its segment: WAL to archive. */
async function writeSegments(count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    await stack.source.psql('INSERT INTO entries SELECT g, md5(g::text) FROM generate_series(1, 2000) g;', 'shop');
    names.push((await stack.source.psql('SELECT pg_walfile_name(pg_switch_wal())')).trim());
  }
  return names;
}
/** Until PostgreSQL has archived `name` (or a later segment of the timeline: archive_timeout may have switched one more). */
async function archivedUpTo(name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await archiver()).last < name) {
    if (Date.now() > deadline) throw new Error(`the archive never reached ${name} (archiver: ${JSON.stringify(await archiver())})`);
    await delay(500);
  }
}

beforeAll(async () => {
  app = synthApp(config);
  const model = IamModel.fromApp(app);
  const primary = [...model.buckets.values()].find((bucket) => bucket.account === app.primary.account && bucket.objectLockEnabled && bucket.keyArn && bucket.origin.startsWith(`${app.primary.stackName}/`));
  if (!primary) throw new Error('no primary backup bucket in the synthesized templates');
  // The host archives into the primary bucket under the name the templates give it, as in AWS.
  stack = await startPitrStack({ bucket: primary.name, stanza: ledger.pitr!.stanza, settings: { archive_timeout: String(ledger.pitr!.plan.archiveTimeoutSeconds) } });
  expect(stack.repository.path).toBe('/pitr/ledger');
  aws = await startLocalAws({ config, app, s3Endpoint: stack.s3.endpoint });

  const alarm = (name: string) => {
    const [logicalId] = Object.entries(app.primary.template.Resources).find(([id, resource]) =>
      resource.Type === 'AWS::CloudWatch::Alarm' && app.primary.properties(id).AlarmName === name) ?? [];
    if (!logicalId) throw new Error(`no alarm ${name} in the synthesized templates`);
    return app.primary.properties(logicalId) as unknown as AlarmProperties;
  };
  const names = watchdogAlarmNames(config.appName, 'ledger', ['pitr']);
  ageAlarm = alarm(names.archiveRpo!);
  gapAlarm = alarm(names.archiveGap!);

  // The watchdog function as deployed: its role, and its environment from the template.
  watchdogRole = aws.roles.lambda('watchdog');
  const fn = [...aws.model.functions.values()].find((candidate) => candidate.roleArn === watchdogRole)!;
  const environment = (app.primary.properties(fn.logicalId).Environment as { Variables: Record<string, string> }).Variables;
  Object.assign(process.env, environment, {
    AWS_REGION: config.primary.region,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
    LIFEBOAT_S3_ENDPOINT: stack.s3.endpoint,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  });
  // In this module registry (not jest.isolateModules): its SDK clients are the ones local/iam intercepts.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  handler = (require('../../lambdas/watchdog/handler') as { handler: typeof handler }).handler;

  await stack.seed('CREATE TABLE entries (id int, item text);');
  full = await stack.runner.backup({ type: 'full' });
  beforeOutage = await writeSegments(2);
  await archivedUpTo(beforeOutage[1], 60_000);
}, 240_000);

afterAll(async () => {
  process.env = original;
  await aws?.stop();
  await stack?.stop();
});

test('the synthesized alarms: the archive age above the tier\'s RPO, missing data breaching; a gap from one, missing data not breaching', () => {
  expect(ageAlarm).toMatchObject({ MetricName: 'ArchiveAgeSeconds', Unit: 'Seconds', Threshold: archiveAgeAlarmThresholdSeconds(ledger.pitr!.plan), TreatMissingData: 'breaching' });
  expect(ageAlarm.Threshold).toBe(180);
  expect(gapAlarm).toMatchObject({ MetricName: 'ArchiveGaps', Unit: 'Count', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
});

test('an S3 outage: the WAL queues on the host and the archive-age alarm fires; when S3 returns the archive catches up, the alarm clears and no gap appears', async () => {
  const before = await runWatchdog();
  expect(before).toMatchObject({ archiveState: 'fresh', ArchiveGaps: 0 });
  const newestBefore = before.archiveNewestSegment as string;
  expect(newestBefore >= beforeOutage[1]).toBe(true);
  expect(alarmState(ageAlarm, [before])).toBe('OK');
  expect(alarmState(gapAlarm, [before])).toBe('OK');
  const lastArrival = (await segments()).find((segment) => segment.name === newestBefore)!.archivedAt;

  stack.front.outage(true);
  const failedBefore = (await archiver()).failed;
  const duringOutage = await writeSegments(3);
  // Each invocation is one alarm period: OK while the archive's age is within the threshold, ALARM once past it.
  let during = await runWatchdog();
  const deadline = lastArrival.getTime() + (ageAlarm.Threshold + 120) * 1000;
  while ((during.ArchiveAgeSeconds as number) <= ageAlarm.Threshold) {
    expect(alarmState(ageAlarm, [during])).toBe('OK');
    if (Date.now() > deadline) throw new Error(`the archive's age stayed at ${String(during.ArchiveAgeSeconds)} s during the outage`);
    await delay(10_000);
    during = await runWatchdog();
  }
  expect(alarmState(ageAlarm, [during])).toBe('ALARM');
  // Nothing new arrived; nothing is lost either: the WAL waits on the host, and there is no gap.
  expect(during).toMatchObject({ archiveNewestSegment: newestBefore, ArchiveGaps: 0, archiveState: 'stale' });
  expect(alarmState(gapAlarm, [during])).toBe('OK');
  expect((await archiver()).failed).toBeGreaterThan(failedBefore);
  const ready = (await stack.source.psql("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'")).trim();
  expect(Number(ready)).toBeGreaterThanOrEqual(3);

  stack.front.outage(false);
  // PostgreSQL retries on its own (within a minute after its third failure); the backlog goes in order.
  await archivedUpTo(duringOutage[2], 120_000);
  const after = await runWatchdog();
  expect(after).toMatchObject({ archiveState: 'fresh', ArchiveGaps: 0, restorableFrom: full.stopTime.toISOString() });
  expect((after.archiveNewestSegment as string) >= duringOutage[2]).toBe(true);
  expect(after.ArchiveAgeSeconds as number).toBeLessThan(ageAlarm.Threshold);
  expect(after.RestorableWindowSeconds as number).toBeGreaterThan(ageAlarm.Threshold);
  expect(alarmState(ageAlarm, [after])).toBe('OK');
  expect(alarmState(gapAlarm, [after])).toBe('OK');
  const names = (await segments()).map((segment) => segment.name);
  expect(names).toEqual(expect.arrayContaining([...beforeOutage, ...duringOutage]));
  expect(aws.evaluator?.denials).toEqual([]);
}, 480_000);

test('a WAL segment removed from the archive: ArchiveGaps 1 once settled, the gap alarm fires, no window reaches the newest point, status shows it broken there', async () => {
  const [removed, next] = beforeOutage;
  const admin = stack.s3.client();
  try {
    const listed = await admin.send(new ListObjectsV2Command({ Bucket: stack.bucket, Prefix: 'pitr/ledger/archive/ledger/' }));
    const key = listed.Contents!.map((object) => object.Key as string).find((candidate) => candidate.includes(`/${removed}-`));
    await admin.send(new DeleteObjectCommand({ Bucket: stack.bucket, Key: key }));
  } finally {
    admin.destroy();
  }
  // A hole counts once the segment after it has been there for the settle time (5 minutes):
  // pgBackRest's asynchronous push may land a later segment first.
  const nextArrived = (await segments()).find((segment) => segment.name === next)!.archivedAt.getTime();
  let measured: Emf;
  let measuredAt: number;
  do {
    measuredAt = Date.now();
    measured = await runWatchdog();
    // Margins of 5 s: LastModified has whole seconds.
    if (measuredAt - nextArrived < 295_000) expect(measured.ArchiveGaps).toBe(0);
    if (measuredAt - nextArrived < 305_000) await delay(Math.max(0, Math.min(15_000, nextArrived + 305_000 - Date.now())));
  } while (measuredAt - nextArrived < 305_000);
  // Keep the archive fresh meanwhile: this is about the gap, not the age.
  const [newest] = await writeSegments(1);
  await archivedUpTo(newest, 60_000);
  measured = await runWatchdog();
  expect(measured).toMatchObject({ ArchiveGaps: 1, archiveFirstMissingSegment: removed, RestorableWindowSeconds: 0 });
  expect((measured.archiveNewestSegment as string) >= newest).toBe(true);
  expect(measured).not.toHaveProperty('restorableFrom');
  expect(alarmState(gapAlarm, [measured])).toBe('ALARM');
  expect(alarmState(ageAlarm, [measured])).toBe('OK');

  const status = await pitrStatus(aws.services.s3, stack.bucket, ledger, new Date());
  expect(status.problems).toContain(`archive gap at ${removed} (1 segment(s))`);
  expect(describePitrStatus(ledger, status).join('\n')).toContain(`, broken at ${removed}`);
  expect(aws.evaluator?.denials).toEqual([]);
}, 480_000);

test('IAM-true: the watchdog\'s reads were allowed by the synthesized policy; a read outside what it needs is denied', async () => {
  const allowed = aws.evaluator!.decisions.filter((decision) => decision.request.principal === watchdogRole && decision.allowed);
  const asked = new Set(allowed.map((decision) => `${decision.request.action} ${decision.request.resource.replace(/^arn:aws:s3:::[^/]+/, '‹bucket›')} ${decision.request.context?.['s3:prefix'] ?? ''}`.trim()));
  expect([...asked]).toEqual(expect.arrayContaining([
    's3:ListBucket ‹bucket› pitr/ledger/archive/ledger/',
    's3:GetObject ‹bucket›/pitr/ledger/backup/ledger/backup.info',
    's3:ListBucket ‹bucket› pitr/billing/archive/billing/',
  ]));
  // billing has no repository yet: its listing is empty, and nothing of it is read.
  expect([...asked].filter((request) => request.includes('pitr/billing/backup'))).toEqual([]);

  const admin = stack.s3.client();
  const listed = await admin.send(new ListObjectsV2Command({ Bucket: stack.bucket, Prefix: 'pitr/ledger/' }));
  admin.destroy();
  const keys = listed.Contents!.map((object) => object.Key as string);
  const walKey = keys.find((key) => /\/[0-9A-F]{24}-[0-9a-f]{40}/.test(key))!;
  const manifest = keys.find((key) => key.startsWith(`pitr/ledger/backup/ledger/${full.label}/`))!;
  const denied = aws.evaluator!.denials.length;
  const attempts: [string, () => Promise<unknown>][] = [
    ['a WAL segment', () => aws.services.s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: walKey }))],
    ['a set\'s files', () => aws.services.s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: manifest }))],
    ['archive.info', () => aws.services.s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: 'pitr/ledger/archive/ledger/archive.info' }))],
    ['the listing of pitr/', () => aws.services.s3.send(new ListObjectsV2Command({ Bucket: stack.bucket, Prefix: 'pitr/' }))],
    ['the listing of the sets', () => aws.services.s3.send(new ListObjectsV2Command({ Bucket: stack.bucket, Prefix: 'pitr/ledger/backup/ledger/' }))],
    ['a write of backup.info', () => aws.services.s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: 'pitr/ledger/backup/ledger/backup.info', Body: 'x' }))],
  ];
  for (const [what, attempt] of attempts) {
    await expect(asPrincipal(watchdogRole, attempt)).rejects.toMatchObject({ name: 'AccessDenied', message: expect.stringContaining(watchdogRole) });
    expect({ what, denied: aws.evaluator!.denials.length > denied }).toEqual({ what, denied: true });
  }
  expect(aws.evaluator!.denials.slice(denied).map((decision) => decision.request.action))
    .toEqual(['s3:GetObject', 's3:GetObject', 's3:GetObject', 's3:ListBucket', 's3:ListBucket', 's3:PutObject']);
}, 60_000);
