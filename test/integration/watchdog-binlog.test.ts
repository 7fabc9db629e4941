/**
 * The watchdog watching MySQL/MariaDB sources' binary-log archives (issue 15), IAM-true: real
 * archiver state documents, index keys and verified logical runs (with binlog coordinates) in the
 * local S3 server holding the synthesized primary bucket; the watchdog handler run as the role the
 * templates give it (every S3 call evaluated against the synthesized policies); what it publishes
 * evaluated against the synthesized binlog alarms as CloudWatch would. `lifeboat status` reads the
 * same archive as the operator role.
 */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { serializeBinlogState, serializeBinlogIndexEntry, type BinlogState } from '../../lib/binlog/documents';
import { describeBinlogStatus, binlogStatus } from '../../lib/binlog/status';
import type { Source } from '../../lib/config';
import { binlogAgeAlarmThresholdSeconds, watchdogAlarmNames } from '../../lib/constructs/watchdog';
import { binlogFileKey, binlogIndexKey, binlogPartialKey, binlogStateKey } from '../../lib/domain/layout';
import { formatRunId } from '../../lib/domain/run-id';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { asPrincipal } from '../../local/iam';
import { synthApp, type SynthesizedApp } from '../../local/synth';
import { binlogConfig } from '../fixtures/binlog-config';
import { buildRun, sha256, writeRun } from '../fixtures/runs';

type Emf = Record<string, unknown> & { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] } };
interface AlarmProperties {
  readonly AlarmName: string; readonly Namespace: string; readonly MetricName: string; readonly Dimensions: readonly { Name: string; Value: string }[];
  readonly Statistic: string; readonly Unit?: string; readonly Period: number; readonly EvaluationPeriods: number; readonly Threshold: number;
  readonly ComparisonOperator: string; readonly TreatMissingData: string;
}

/** The state an alarm of one period takes from the EMF documents published in it (as in watchdog-pitr.test.ts). */
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
  const breaches: Record<string, (v: number) => boolean> = { GreaterThanThreshold: (v) => v > alarm.Threshold, GreaterThanOrEqualToThreshold: (v) => v >= alarm.Threshold };
  if (!breaches[alarm.ComparisonOperator]) throw new Error(`${alarm.AlarmName}: ${alarm.ComparisonOperator} is not evaluated here`);
  return breaches[alarm.ComparisonOperator](value) ? 'ALARM' : 'OK';
}

const shop = binlogConfig.sources.find((source) => source.name === 'shop') as Source;
let app: SynthesizedApp;
let aws: LocalAws;
let bucket: string;
let watchdogRole: string;
let handler: (event: unknown, context: Context) => Promise<unknown>;
const alarms: Record<'shopRpo' | 'shopGap' | 'ledgerRpo' | 'ledgerGap', AlarmProperties> = {} as never;
const original = { ...process.env };
const admin = () => aws.services.s3;
const put = (key: string, body: string) => admin().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
const iso = (date: Date) => new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString();

/** One watchdog invocation as its role: the EMF document it published for `source`. */
async function runWatchdog(source = 'shop'): Promise<Emf> {
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

/** A completed file of shop's archive: the file and its index entry, as the archiver stores them. */
async function archiveFile(file: string, runId: string): Promise<void> {
  const body = `binlog fixture ${file}`;
  await put(binlogFileKey('shop', file), body);
  const sequence = Number(file.split('.')[1]);
  await put(binlogIndexKey('shop', file), serializeBinlogIndexEntry({
    schemaVersion: 1, source: 'shop', file, sequence, key: binlogFileKey('shop', file), archivedAt: new Date().toISOString(), runId,
    facts: { bytes: body.length, sha256: sha256(body), events: 3, endPosition: body.length, ends: 'rotate', next: `binlog.${String(sequence + 1).padStart(6, '0')}` },
  }));
}

/** An archiver run's state document: complete as of `completeAsOf`, its partial the file after `through`. */
async function archiverRun(runAt: Date, completeAsOf: Date, through: string, partial: string, gap?: BinlogState['gap']): Promise<string> {
  const runId = formatRunId(runAt);
  const body = `partial ${partial} ${runId}`;
  await put(binlogPartialKey('shop', partial, runId), body);
  await put(binlogStateKey('shop', runId), serializeBinlogState({
    schemaVersion: 1, source: 'shop', engine: 'mariadb', runId, startedAt: iso(runAt), finishedAt: iso(new Date(runAt.getTime() + 5000)),
    serverFiles: [{ file: through, bytes: 100 }, { file: partial, bytes: body.length }], stored: [through], archivedThrough: through,
    partial: { file: partial, key: binlogPartialKey('shop', partial, runId), facts: { bytes: body.length, sha256: sha256(body), events: 2, endPosition: body.length, ends: 'none' } },
    newestEventAt: iso(completeAsOf), completeAsOf: iso(completeAsOf), ...(gap ? { gap } : {}), outcome: gap ? 'BinlogGap' : 'ok',
  }));
  return runId;
}

/** A verified dump of shop whose artifact carries binlog coordinates: a base. */
async function base(runAt: Date, file: string, position: number): Promise<{ runId: string; finishedAt: string }> {
  const runId = formatRunId(runAt);
  const run = buildRun('shop', runId);
  const manifest = { ...run.manifest, engine: 'mariadb', artifacts: run.manifest.artifacts.map((artifact) => ({ ...artifact, binlog: { file, position } })) };
  await writeRun(admin(), bucket, { manifest, objects: run.objects });
  return { runId, finishedAt: manifest.finishedAt };
}

beforeAll(async () => {
  app = synthApp(binlogConfig);
  aws = await startLocalAws({ config: binlogConfig, app });
  bucket = aws.services.primaryBucket;
  const alarm = (name: string) => {
    const [logicalId] = Object.entries(app.primary.template.Resources).find(([id, resource]) =>
      resource.Type === 'AWS::CloudWatch::Alarm' && app.primary.properties(id).AlarmName === name) ?? [];
    if (!logicalId) throw new Error(`no alarm ${name} in the synthesized templates`);
    return app.primary.properties(logicalId) as unknown as AlarmProperties;
  };
  const shopNames = watchdogAlarmNames(binlogConfig.appName, 'shop', shop.methods, 'binlog');
  const ledgerNames = watchdogAlarmNames(binlogConfig.appName, 'ledger', shop.methods, 'binlog');
  Object.assign(alarms, { shopRpo: alarm(shopNames.binlogRpo!), shopGap: alarm(shopNames.binlogGap!), ledgerRpo: alarm(ledgerNames.binlogRpo!), ledgerGap: alarm(ledgerNames.binlogGap!) });

  watchdogRole = aws.roles.lambda('watchdog');
  const fn = [...aws.model.functions.values()].find((candidate) => candidate.roleArn === watchdogRole)!;
  const environment = (app.primary.properties(fn.logicalId).Environment as { Variables: Record<string, string> }).Variables;
  Object.assign(process.env, environment, {
    AWS_REGION: binlogConfig.primary.region,
    AWS_ACCESS_KEY_ID: aws.services.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.services.credentials.secretAccessKey,
    LIFEBOAT_S3_ENDPOINT: aws.services.endpoint,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  });
  // In this module registry: its SDK clients are the ones local/iam intercepts.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  handler = (require('../../lambdas/watchdog/handler') as { handler: typeof handler }).handler;
}, 180_000);

afterAll(async () => {
  process.env = original;
  await aws?.stop();
});

test('the synthesized alarms: the archive\'s age above the tier\'s RPO, missing data breaching; a gap from one, missing data not breaching', () => {
  expect(alarms.shopRpo).toMatchObject({ MetricName: 'BinlogArchiveAgeSeconds', Unit: 'Seconds', Threshold: binlogAgeAlarmThresholdSeconds(shop.binlog!.plan), TreatMissingData: 'breaching' });
  expect(alarms.shopRpo.Threshold).toBe(900);
  expect(alarms.shopGap).toMatchObject({ MetricName: 'BinlogGaps', Unit: 'Count', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
});

test('before any archiver run: no age (the RPO alarm breaches on missing data), no gap, no window', async () => {
  const measured = await runWatchdog('ledger');
  expect(measured).not.toHaveProperty('BinlogArchiveAgeSeconds');
  expect(measured).toMatchObject({ binlogState: 'never', BinlogGaps: 0, BinlogRestorableWindowSeconds: 0 });
  expect(alarmState(alarms.ledgerRpo, [measured])).toBe('ALARM');
  expect(alarmState(alarms.ledgerGap, [measured])).toBe('OK');
});

test('a healthy archive, then a file missing from it (the window broken, the gap alarm, status naming the file), then a base after the gap clears it; an archive older than the RPO raises the RPO alarm', async () => {
  const now = Date.now();
  const first = await base(new Date(now - 3_600_000), 'binlog.000002', 4);
  const archiverRunId = formatRunId(new Date(now - 3_000_000));
  for (const file of ['binlog.000001', 'binlog.000002', 'binlog.000003', 'binlog.000004']) await archiveFile(file, archiverRunId);
  const completeAsOf = new Date(now - 60_000);
  await archiverRun(new Date(now - 65_000), completeAsOf, 'binlog.000004', 'binlog.000005');

  const healthy = await runWatchdog();
  expect(healthy).toMatchObject({ binlogState: 'fresh', BinlogGaps: 0, binlogNewestFile: 'binlog.000004', binlogRestorableFrom: first.finishedAt, binlogRestorableTo: iso(completeAsOf) });
  expect(healthy.BinlogArchiveAgeSeconds as number).toBeGreaterThanOrEqual(59);
  expect(healthy.BinlogArchiveAgeSeconds as number).toBeLessThan(alarms.shopRpo.Threshold);
  expect(healthy.BinlogRestorableWindowSeconds).toBe(Math.round((Date.parse(iso(completeAsOf)) - Date.parse(first.finishedAt)) / 1000));
  expect(alarmState(alarms.shopRpo, [healthy])).toBe('OK');
  expect(alarmState(alarms.shopGap, [healthy])).toBe('OK');

  // binlog.000003 gone from the archive (its index entry deleted): no replay from the base crosses it.
  await admin().send(new DeleteObjectCommand({ Bucket: bucket, Key: binlogIndexKey('shop', 'binlog.000003') }));
  const broken = await runWatchdog();
  expect(broken).toMatchObject({ BinlogGaps: 1, binlogMissingFiles: 'binlog.000003', BinlogRestorableWindowSeconds: 0 });
  expect(broken).not.toHaveProperty('binlogRestorableFrom');
  expect(alarmState(alarms.shopGap, [broken])).toBe('ALARM');
  expect(alarmState(alarms.shopRpo, [broken])).toBe('OK');
  const status = await asPrincipal(aws.roles.operator, () => binlogStatus(aws.services.s3, bucket, shop, new Date()));
  expect(status.problems).toContain('binlog gap: binlog.000003 missing (1 file(s))');
  expect(describeBinlogStatus(shop, status).join('\n')).toContain('restorable window: - to -, broken: binlog.000003 missing (1 file(s))');

  // A dump after the gap (its coordinates in binlog.000004) is a base the archive reaches from: the gap no longer matters.
  const second = await base(new Date(now - 600_000), 'binlog.000004', 120);
  const healed = await runWatchdog();
  expect(healed).toMatchObject({ BinlogGaps: 0, binlogRestorableFrom: second.finishedAt });
  expect(alarmState(alarms.shopGap, [healed])).toBe('OK');

  // The newest run recorded that the server had purged files never archived, past the newest base: a gap again.
  await archiverRun(new Date(now - 30_000), new Date(now - 30_000), 'binlog.000004', 'binlog.000008',
    { missing: ['binlog.000005', 'binlog.000006', 'binlog.000007'], after: 'binlog.000004', firstOnServer: 'binlog.000008' });
  const purged = await runWatchdog();
  expect(purged).toMatchObject({ BinlogGaps: 1, binlogMissingFiles: 'binlog.000005,binlog.000006,binlog.000007', BinlogRestorableWindowSeconds: 0 });
  expect(alarmState(alarms.shopGap, [purged])).toBe('ALARM');

  // The archiver stops: the newest run's point ages past the RPO.
  await archiverRun(new Date(now - 20_000), new Date(now - (alarms.shopRpo.Threshold + 120) * 1000), 'binlog.000004', 'binlog.000005');
  const stale = await runWatchdog();
  expect(stale).toMatchObject({ binlogState: 'stale' });
  expect(alarmState(alarms.shopRpo, [stale])).toBe('ALARM');
  expect(aws.evaluator?.denials).toEqual([]);
}, 120_000);

test('IAM-true: the watchdog listed the states and the index and read the newest state only; a binary log, a partial, an index entry or another listing is denied', async () => {
  const allowed = aws.evaluator!.decisions.filter((decision) => decision.request.principal === watchdogRole && decision.allowed);
  const asked = new Set(allowed.map((decision) => `${decision.request.action} ${decision.request.resource.replace(/^arn:aws:s3:::[^/]+/, '‹bucket›')} ${decision.request.context?.['s3:prefix'] ?? ''}`.trim()));
  expect([...asked]).toEqual(expect.arrayContaining([
    's3:ListBucket ‹bucket› binlog/shop/state/',
    's3:ListBucket ‹bucket› binlog/shop/index/',
    's3:ListBucket ‹bucket› binlog/ledger/state/',
    expect.stringMatching(/^s3:GetObject ‹bucket›\/binlog\/shop\/state\/\d{8}T\d{6}Z\.json$/),
  ]));
  expect([...asked].filter((request) => /binlog\/[a-z]+\/(files|partial|index\/binlog)/.test(request))).toEqual([]);

  const listed = await admin().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'binlog/shop/partial/' }));
  const partialKey = listed.Contents![0].Key as string;
  const denied = aws.evaluator!.denials.length;
  const attempts: [string, () => Promise<unknown>][] = [
    ['a binary log', () => aws.services.s3.send(new GetObjectCommand({ Bucket: bucket, Key: binlogFileKey('shop', 'binlog.000001') }))],
    ['a partial', () => aws.services.s3.send(new GetObjectCommand({ Bucket: bucket, Key: partialKey }))],
    ['an index entry', () => aws.services.s3.send(new GetObjectCommand({ Bucket: bucket, Key: binlogIndexKey('shop', 'binlog.000001') }))],
    ['the listing of the files', () => aws.services.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'binlog/shop/files/' }))],
    ['a write of a state', () => aws.services.s3.send(new PutObjectCommand({ Bucket: bucket, Key: binlogStateKey('shop', '20261204T000000Z'), Body: '{}' }))],
  ];
  for (const [what, attempt] of attempts) {
    await expect(asPrincipal(watchdogRole, attempt)).rejects.toMatchObject({ name: 'AccessDenied', message: expect.stringContaining(watchdogRole) });
    expect({ what, denied: aws.evaluator!.denials.length > denied }).toEqual({ what, denied: true });
  }
  expect(aws.evaluator!.denials.slice(denied).map((decision) => decision.request.action)).toEqual(['s3:GetObject', 's3:GetObject', 's3:GetObject', 's3:ListBucket', 's3:PutObject']);
}, 60_000);
