/**
 * The watchdog of PITR sources in the templates: per source the archive-age alarm (its RPO
 * alarm) and the gap alarm, the logical alarms of a source with both methods named as such, the
 * watchdog's least read of each repository, and the archive's widgets on the source's dashboard.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseConfig, type Source } from '../../lib/config';
import { LifeboatDashboard } from '../../lib/constructs/dashboard';
import { rpoAlarmThresholdSeconds, Watchdog, WatchdogAlarms, watchedSource } from '../../lib/constructs/watchdog';
import { createStacks } from '../../lib/stacks';
import { testApp } from '../fixtures/cdk-app';

const config = parseConfig({
  appName: 'Lifeboat',
  primary: { region: 'eu-west-1', account: '111111111111' },
  offsite: { region: 'eu-central-1', account: '222222222222' },
  tiers: { fast: { rpo: '3m', rto: '1h', schedule: '2m', retention: '1d', drill: '1d' } },
  sources: ([['orders', 'tier1', 'logical'], ['ledger', 'fast', 'pitr'], ['billing', 'tier2', ['logical', 'pitr']]] as const).map(([name, tier, method]) => ({
    name, engine: 'postgres', tier, method,
    ...(method === 'logical' ? {} : { pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/srv/pg' } }),
    connection: { host: `${name}.example.internal`, database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
    network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d4e5f60718'], securityGroupIds: ['sg-0a1b2c3d4e5f60718'] },
  })),
});
const [orders, ledger, billing] = config.sources as Source[];

function watchdogStack(app = testApp()): { stack: Stack; alarms: WatchdogAlarms } {
  const stack = new Stack(app, 'WatchdogPitrTest', { env: { account: '111111111111', region: 'eu-west-1' } });
  const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
  const bucket = new s3.Bucket(stack, 'Bucket', {
    encryptionKey: key, enforceSSL: true, versioned: true, blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL, serverAccessLogsPrefix: 'logs/',
  });
  const topic = new sns.Topic(stack, 'Topic', { masterKey: key, enforceSSL: true });
  new Watchdog(stack, 'Watchdog', { sources: config.sources, bucket, bucketKey: key, alarmTopic: topic, perSourceAlarms: false });
  // As the source shards hold them: named, and on the shard's dashboard.
  const alarms = new WatchdogAlarms(stack, 'Alarms', { sources: config.sources, alarmTopic: topic, alarmNamePrefix: 'Lifeboat' });
  new LifeboatDashboard(stack, 'Dashboard', { sources: config.sources, alarms: [], sourceAlarms: alarms.bySource });
  return { stack, alarms };
}

const built = watchdogStack();
const template = Template.fromStack(built.stack);
type Resource = { Type: string; Properties: Record<string, unknown> };
const json = template.toJSON() as { Resources: Record<string, Resource> };
const ofType = (type: string) => Object.entries(json.Resources).filter(([, resource]) => resource.Type === type);
const alarmNamed = (name: string) => ofType('AWS::CloudWatch::Alarm').find(([, alarm]) => alarm.Properties.AlarmName === name)?.[1].Properties;
const topic = { Ref: ofType('AWS::SNS::Topic')[0][0] };

test('the function is told each source\'s methods and a PITR source\'s stanza; a logical source as before', () => {
  const [[, fn]] = ofType('AWS::Lambda::Function');
  const variables = (fn.Properties.Environment as { Variables: Record<string, string> }).Variables;
  expect(JSON.parse(variables.LIFEBOAT_SOURCES_JSON)).toEqual([
    { name: 'orders', rpoSeconds: 900 },
    { name: 'ledger', rpoSeconds: 180, methods: ['pitr'], stanza: 'ledger' },
    { name: 'billing', rpoSeconds: 3600, methods: ['logical', 'pitr'], stanza: 'billing' },
  ]);
  expect(config.sources.map(watchedSource)).toEqual(JSON.parse(variables.LIFEBOAT_SOURCES_JSON));
});

test('a PITR source\'s RPO alarm is on its WAL archive: ArchiveAgeSeconds above the RPO, missing data breaching', () => {
  expect(alarmNamed('Lifeboat-archive-rpo-ledger')).toEqual(expect.objectContaining({
    Namespace: 'Lifeboat',
    MetricName: 'ArchiveAgeSeconds',
    Dimensions: [{ Name: 'source', Value: 'ledger' }],
    Statistic: 'Maximum',
    Period: 300,
    Unit: 'Seconds',
    EvaluationPeriods: 1,
    // The fast tier's RPO of 3 minutes: archive_timeout 60 s + a minute's push stays below it.
    Threshold: 180,
    ComparisonOperator: 'GreaterThanThreshold',
    TreatMissingData: 'breaching',
    AlarmActions: [topic],
    OKActions: [topic],
    AlarmDescription: expect.stringMatching('^Lifeboat: ledger \\(point-in-time recovery\\) has archived no WAL for longer than its RPO of 3m.*archive_command failing.*pgbackrest --stanza=ledger check'),
  }));
  expect(built.alarms.alarms.ledger).toBe(built.alarms.bySource.ledger[0]);
});

test('a gap alarm: ArchiveGaps at least 1, missing data not breaching (the archive-age alarm pages for that)', () => {
  expect(alarmNamed('Lifeboat-archive-gap-ledger')).toEqual(expect.objectContaining({
    MetricName: 'ArchiveGaps',
    Dimensions: [{ Name: 'source', Value: 'ledger' }],
    Statistic: 'Maximum',
    Period: 300,
    Unit: 'Count',
    Threshold: 1,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    TreatMissingData: 'notBreaching',
    AlarmActions: [topic],
    OKActions: [topic],
    AlarmDescription: expect.stringMatching('^Lifeboat: ledger \\(point-in-time recovery\\) has a gap in its WAL archive.*pitr/ledger/archive/ledger/.*lifeboat status'),
  }));
});

test('a PITR-only source has no logical alarm; a logical source\'s alarms keep their names and words', () => {
  const names = ofType('AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties.AlarmName).sort();
  expect(names).toEqual([
    'Lifeboat-archive-gap-billing', 'Lifeboat-archive-gap-ledger', 'Lifeboat-archive-rpo-billing', 'Lifeboat-archive-rpo-ledger',
    'Lifeboat-logical-offsite-rpo-billing', 'Lifeboat-logical-rpo-billing', 'Lifeboat-offsite-rpo-orders', 'Lifeboat-rpo-orders',
  ]);
  expect(alarmNamed('Lifeboat-rpo-orders')).toEqual(expect.objectContaining({
    MetricName: 'SecondsSinceVerifiedBackup', Threshold: rpoAlarmThresholdSeconds(orders.tier), TreatMissingData: 'breaching',
    AlarmDescription: expect.stringMatching('^Lifeboat: orders has no verified backup within its RPO of 15m'),
  }));
  expect(alarmNamed('Lifeboat-rpo-orders')?.AlarmDescription).not.toMatch(/logical|WAL/);
});

test('both methods: the archive alarm is the RPO alarm, and the logical ones say in name and words that they are about the dumps', () => {
  expect(alarmNamed('Lifeboat-archive-rpo-billing')).toEqual(expect.objectContaining({ MetricName: 'ArchiveAgeSeconds', Threshold: 3600 }));
  expect(alarmNamed('Lifeboat-logical-rpo-billing')).toEqual(expect.objectContaining({
    MetricName: 'SecondsSinceVerifiedBackup',
    Threshold: rpoAlarmThresholdSeconds(billing.tier),
    TreatMissingData: 'breaching',
    AlarmDescription: expect.stringMatching('^Lifeboat: billing has no verified logical backup \\(dump\\) within its RPO of 1h.*about its logical dumps only; its point-in-time recovery \\(WAL archive\\) has alarms of its own'),
  }));
  expect(alarmNamed('Lifeboat-logical-offsite-rpo-billing')).toEqual(expect.objectContaining({
    MetricName: 'SecondsSinceOffsiteBackup',
    AlarmDescription: expect.stringMatching('^Lifeboat: billing has no logical backup \\(dump\\) confirmed in the offsite region'),
  }));
  expect(built.alarms.alarms.billing).toBe(built.alarms.bySource.billing[0]);
  expect(built.alarms.bySource.billing).toHaveLength(4);
  expect(built.alarms.logicalAlarms.billing).toBeDefined();
  expect(built.alarms.offsiteAlarms.ledger).toBeUndefined();
});

test('every description says what broke and what to check first, within CloudWatch\'s 1024 characters', () => {
  for (const [, alarm] of ofType('AWS::CloudWatch::Alarm')) {
    const description = alarm.Properties.AlarmDescription as string;
    expect(description).toMatch(/^Lifeboat: /);
    expect(description).toContain('First check');
    expect(description.length).toBeLessThanOrEqual(1024);
  }
});

test('least read of each PITR repository: the listing of exactly its archive prefix and its backup.info, decryption; nothing else under pitr/', () => {
  const roleRef = JSON.stringify((ofType('AWS::Lambda::Function')[0][1].Properties.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]);
  type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
  const statements = ofType('AWS::IAM::Policy').filter(([, policy]) => JSON.stringify(policy.Properties.Roles).includes(roleRef))
    .flatMap(([, policy]) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  expect(statements.every((statement) => statement.Effect === 'Allow')).toBe(true);
  expect([...new Set(statements.flatMap((statement) => [statement.Action].flat()))].sort()).toEqual(['kms:Decrypt', 's3:GetObject', 's3:GetObjectVersion', 's3:ListBucket']);
  const pitr = statements.filter((statement) => JSON.stringify(statement).includes('pitr/'));
  expect(pitr).toEqual([
    expect.objectContaining({ Action: 's3:ListBucket', Condition: { StringEquals: { 's3:prefix': ['pitr/ledger/archive/ledger/', 'pitr/billing/archive/billing/'] } } }),
    expect.objectContaining({ Action: 's3:GetObject' }),
  ]);
  expect(JSON.stringify(pitr[1].Resource).match(/\/pitr\/[^"]*"/g)?.sort()).toEqual(['/pitr/billing/backup/billing/backup.info"', '/pitr/ledger/backup/ledger/backup.info"']);
});

describe('the dashboard', () => {
  const [[, dashboard]] = ofType('AWS::CloudWatch::Dashboard');
  const body = dashboard.Properties.DashboardBody as { 'Fn::Join': [string, unknown[]] };
  const text = body['Fn::Join'][1].map((part) => (typeof part === 'string' ? part : `{GetAtt:${((part as { 'Fn::GetAtt': string[] })['Fn::GetAtt'])[0]}}`)).join('');
  const widgets = (JSON.parse(text) as { widgets: { type: string; properties: { title?: string; metrics?: unknown[][]; annotations?: unknown } }[] }).widgets;
  const row = (name: string) => widgets.filter((widget) => widget.type === 'metric' && widget.properties.title?.startsWith(`${name}: `));
  const titles = (name: string) => row(name).map((widget) => widget.properties.title?.slice(name.length + 2));

  test.each([
    ['ledger', ['WAL archive age vs RPO', 'WAL archive gaps', 'restorable window', 'drill RTO vs target']],
    ['billing', ['backup age vs RPO', 'artifact size', 'run duration', 'offsite lag', 'WAL archive age vs RPO', 'WAL archive gaps', 'restorable window', 'drill RTO vs target']],
    ['orders', ['backup age vs RPO', 'artifact size', 'run duration', 'offsite lag', 'drill RTO vs target']],
  ])('%s: its graphs', (name, expected) => {
    expect(titles(name)).toEqual(expected);
  });

  test('the archive age against the RPO, its gaps and window, with only the source dimension', () => {
    const [age, gaps, window] = row('ledger');
    expect(age.properties.metrics).toEqual([['Lifeboat', 'ArchiveAgeSeconds', 'source', 'ledger', expect.objectContaining({ stat: 'Maximum' })]]);
    expect(age.properties.annotations).toEqual({ horizontal: [expect.objectContaining({ value: ledger.tier.rpoSeconds, label: 'RPO' })] });
    expect(gaps.properties.metrics).toEqual([['Lifeboat', 'ArchiveGaps', 'source', 'ledger', expect.anything()]]);
    expect(window.properties.metrics).toEqual([['Lifeboat', 'RestorableWindowSeconds', 'source', 'ledger', expect.anything()]]);
  });

  test('the status of every watchdog alarm is on it', () => {
    for (const [id] of ofType('AWS::CloudWatch::Alarm')) expect(text).toContain(`{GetAtt:${id}}`);
  });
});

test('in the app, each source shard holds its sources\' alarms by method and shows them all', () => {
  const app = testApp();
  const { primary } = createStacks(app, config);
  const assembly = app.synth();
  const [shard] = primary.shards;
  const shardTemplate = JSON.parse(readFileSync(path.join(assembly.directory, shard.templateFile), 'utf8')) as { Resources: Record<string, Resource> };
  const alarms = Object.entries(shardTemplate.Resources).filter(([, resource]) => resource.Type === 'AWS::CloudWatch::Alarm');
  expect(alarms.map(([, alarm]) => alarm.Properties.AlarmName).sort()).toEqual(ofType('AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties.AlarmName).sort());
  const dashboardBody = JSON.stringify(Object.values(shardTemplate.Resources).find((resource) => resource.Type === 'AWS::CloudWatch::Dashboard')?.Properties.DashboardBody);
  for (const [id] of alarms) expect(dashboardBody).toContain(`"${id}"`);
  // The overview ranks the PITR sources' archives too.
  const overview = JSON.stringify(Object.values(assembly.getStackArtifact(primary.artifactId).template.Resources as Record<string, Resource>)
    .find((resource) => resource.Type === 'AWS::CloudWatch::Dashboard')?.Properties.DashboardBody);
  expect(overview).toContain('SELECT MAX(ArchiveAgeSeconds) FROM SCHEMA(\\\\\\"Lifeboat\\\\\\", source) GROUP BY source');
  expect(overview).toContain('SELECT MAX(ArchiveGaps) FROM SCHEMA(\\\\\\"Lifeboat\\\\\\", source) GROUP BY source');
});

test('cdk-nag AwsSolutions: every finding is acknowledged with its reason', () => {
  const app = testApp();
  watchdogStack(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  expect(() => app.synth()).not.toThrow();
});
