import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Source } from '../../lib/config/types';
import { LifeboatAlarms } from '../../lib/constructs/alarms';
import { LifeboatDashboard } from '../../lib/constructs/dashboard';
import { acknowledgeWildcardResource } from '../../lib/constructs/nag';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';

const OFFSITE_BUCKET = 'lifeboat-offsite-111111111111';
const RULE_ID = 'offsite-copy';
const DEAD_LETTER_NAMES = ['BackupSchedules', 'DrillSchedules', 'Pruner'];

interface Built { readonly stack: Stack; readonly alarms: LifeboatAlarms; readonly dashboard: LifeboatDashboard }

function alarmsStack(options: {
  app?: ReturnType<typeof testApp>;
  sources?: readonly Source[];
  deadLetterNames?: readonly string[];
  sourcesPerDashboard?: number;
  sourceAlarms?: (stack: Stack, alarms: LifeboatAlarms) => Record<string, cloudwatch.IAlarm[]>;
} = {}): Built {
  const sources = options.sources ?? testConfig.sources;
  const stack = new Stack(options.app ?? testApp(), 'AlarmsTest', { env: { account: '111111111111', region: 'eu-west-1' } });
  const key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
  const stateMachine = (id: string) => {
    const machine = new sfn.StateMachine(stack, id, {
      definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(stack, `${id}Pass`)),
      tracingEnabled: true,
      logs: { destination: new logs.LogGroup(stack, `${id}Logs`), level: sfn.LogLevel.ALL },
    });
    acknowledgeWildcardResource(machine.role, '*', 'Step Functions log delivery and X-Ray APIs do not support resource-level permissions.');
    return machine;
  };
  const deadLetterQueues = (options.deadLetterNames ?? DEAD_LETTER_NAMES).map((name, index) => {
    const queue = new sqs.Queue(stack, `Queue${index}`, { encryptionMasterKey: key, enforceSSL: true });
    Validations.of(queue).acknowledge({ id: 'AwsSolutions-SQS3', reason: 'The queue is itself a dead-letter queue (of a schedule in the stack).' });
    return { name, queue };
  });
  const bucket = new s3.Bucket(stack, 'Bucket', {
    encryptionKey: key, enforceSSL: true, versioned: true, blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL, serverAccessLogsPrefix: 'logs/',
  });
  const topic = new sns.Topic(stack, 'Topic', { masterKey: key, enforceSSL: true });
  const alarms = new LifeboatAlarms(stack, 'Alarms', {
    backupStateMachine: stateMachine('BackupRun'),
    drillStateMachine: stateMachine('RestoreDrill'),
    deadLetterQueues,
    primaryBucket: bucket,
    replicationRuleId: RULE_ID,
    offsiteBucketName: OFFSITE_BUCKET,
    alarmTopic: topic,
    sources,
  });
  const dashboard = new LifeboatDashboard(stack, 'Dashboard', {
    sources,
    alarms: alarms.alarms,
    sourceAlarms: options.sourceAlarms?.(stack, alarms),
    sourcesPerDashboard: options.sourcesPerDashboard,
  });
  return { stack, alarms, dashboard };
}

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;
const template = Template.fromStack(alarmsStack().stack);
const resources = (template.toJSON() as { Resources: Resources }).Resources;
const idOf = (type: string, prefix: string) => {
  const found = Object.keys(resources).filter((id) => resources[id].Type === type && id.startsWith(prefix));
  expect(found).toHaveLength(1);
  return found[0];
};
const ofType = (type: string) => Object.entries(resources).filter(([, resource]) => resource.Type === type);
const topic = { Ref: idOf('AWS::SNS::Topic', 'Topic') };

/** The alarm whose construct id is `id` (logical ids are `Alarms<id><hash>`). */
function alarmProps(id: string): Record<string, unknown> {
  return resources[idOf('AWS::CloudWatch::Alarm', `Alarms${id.replace(/-/g, '')}`)].Properties;
}

const common = { EvaluationPeriods: 1, Period: 300, TreatMissingData: 'notBreaching', AlarmActions: [topic], OKActions: [topic] };

test.each([
  ['BackupRunFailed', 'BackupRun', 'ExecutionsFailed'],
  ['BackupRunTimedOut', 'BackupRun', 'ExecutionsTimedOut'],
  ['BackupRunAborted', 'BackupRun', 'ExecutionsAborted'],
  ['DrillFailed', 'RestoreDrill', 'ExecutionsFailed'],
])('%s: %s state machine %s ≥ 1 in 5 minutes', (id, machine, metricName) => {
  expect(alarmProps(id)).toMatchObject({
    ...common,
    Namespace: 'AWS/States',
    MetricName: metricName,
    Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: idOf('AWS::StepFunctions::StateMachine', machine) } }],
    Statistic: 'Sum',
    Threshold: 1,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
  });
});

test.each(DEAD_LETTER_NAMES.map((name, index) => [name, index]))('dead-letter queue of %s: visible messages > 0', (name, index) => {
  expect(alarmProps(`DeadLetters-${name}`)).toMatchObject({
    ...common,
    Namespace: 'AWS/SQS',
    MetricName: 'ApproximateNumberOfMessagesVisible',
    Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [idOf('AWS::SQS::Queue', `Queue${index}`), 'QueueName'] } }],
    Statistic: 'Maximum',
    Threshold: 0,
    ComparisonOperator: 'GreaterThanThreshold',
  });
  expect(alarmProps(`DeadLetters-${name}`).AlarmDescription).toContain(`dead-letter queue of ${name}`);
});

test.each([
  ['ReplicationFailed', 'OperationsFailedReplication', 'Sum', 0],
  ['ReplicationLatency', 'ReplicationLatency', 'Maximum', 900],
])('%s: AWS/S3 %s (%s) above %d for the rule to the offsite bucket', (id, metricName, statistic, threshold) => {
  const props = alarmProps(id);
  expect(props).toMatchObject({
    ...common, Namespace: 'AWS/S3', MetricName: metricName, Statistic: statistic, Threshold: threshold, ComparisonOperator: 'GreaterThanThreshold',
  });
  expect(props.Dimensions).toEqual(expect.arrayContaining([
    { Name: 'SourceBucket', Value: { Ref: idOf('AWS::S3::Bucket', 'Bucket') } },
    { Name: 'DestinationBucket', Value: OFFSITE_BUCKET },
    { Name: 'RuleId', Value: RULE_ID },
  ]));
  expect(props.Dimensions).toHaveLength(3);
});

test('exactly these alarms, none per source; each sends ALARM and OK to the topic and says what to check first', () => {
  const alarms = ofType('AWS::CloudWatch::Alarm');
  expect(alarms).toHaveLength(7 + DEAD_LETTER_NAMES.length);
  for (const [, alarm] of alarms) {
    expect(alarm.Properties).toMatchObject({ AlarmActions: [topic], OKActions: [topic] });
    const description = alarm.Properties.AlarmDescription as string;
    expect(description).toMatch(/^Lifeboat: /);
    expect(description).toContain('First check:');
    expect(description.length).toBeLessThanOrEqual(1024);
    for (const source of testConfig.sources) expect(JSON.stringify(alarm.Properties.Dimensions ?? [])).not.toContain(source.name);
  }
});

test('the drill alarm says that a measured RTO above target is a failed drill, and where the report is', () => {
  expect(alarmProps('DrillFailed').AlarmDescription).toEqual(expect.stringMatching(/RtoExceeded[\s\S]*drills\/<source>\/<drillId>\/report\.json/));
});

/** DashboardBody as JSON: a `Fn::Join` whose tokens become `{Ref:X}` / `{GetAtt:X.Attr}` text. */
function dashboardBody(properties: Record<string, unknown>): { widgets: { type: string; width: number; properties: Record<string, unknown> }[] } {
  const body = properties.DashboardBody as string | { 'Fn::Join': [string, unknown[]] };
  const text = typeof body === 'string' ? body : body['Fn::Join'][1].map((part) => {
    if (typeof part === 'string') return part;
    const token = part as { Ref?: string; 'Fn::GetAtt'?: string[] };
    return token.Ref ? `{Ref:${token.Ref}}` : `{GetAtt:${(token['Fn::GetAtt'] as string[]).join('.')}}`;
  }).join('');
  return JSON.parse(text) as ReturnType<typeof dashboardBody>;
}

describe('the dashboard', () => {
  const dashboards = ofType('AWS::CloudWatch::Dashboard');
  const body = dashboardBody(dashboards[0][1].Properties);
  const metricsOf = (widget: { properties: Record<string, unknown> }) => (widget.properties.metrics ?? []) as unknown[][];

  test('one dashboard for two sources', () => {
    expect(dashboards).toHaveLength(1);
  });

  test('starts with the status of every alarm passed in', () => {
    const status = body.widgets[0];
    expect(status.type).toBe('alarm');
    const alarmIds = ofType('AWS::CloudWatch::Alarm').map(([id]) => `{GetAtt:${id}.Arn}`);
    expect([...(status.properties.alarms as string[])].sort()).toEqual([...alarmIds].sort());
  });

  test('says where drill reports are, since drills publish no metric', () => {
    const text = body.widgets.find((widget) => widget.type === 'text');
    expect(text?.properties.markdown).toContain('drills/<source>/<drillId>/report.json');
    expect(text?.properties.markdown).toContain('lifeboat status');
  });

  test.each(testConfig.sources.map((source) => [source.name, source]))('%s: age vs RPO, artifact size, run duration, offsite lag, drill RTO vs target', (name, source) => {
    const graphs = body.widgets.filter((widget) => widget.type === 'metric' && (widget.properties.title as string).startsWith(`${name}: `));
    expect(graphs).toHaveLength(5);
    const [age, size, duration, lag, rto] = graphs.map(metricsOf);
    expect(age).toEqual([
      ['Lifeboat', 'SecondsSinceVerifiedBackup', 'source', name, expect.objectContaining({ stat: 'Maximum' })],
      ['Lifeboat', 'SecondsSinceOffsiteBackup', 'source', name, expect.objectContaining({ stat: 'Maximum' })],
    ]);
    expect(graphs[0].properties.annotations).toEqual({ horizontal: [expect.objectContaining({ value: (source as Source).tier.rpoSeconds })] });
    // Record's metrics carry the Powertools service dimension next to source.
    expect(size).toEqual([['Lifeboat', 'BackupBytes', 'service', 'lifeboat-record', 'source', name, expect.objectContaining({ stat: 'Maximum' })]]);
    expect(duration).toEqual([['Lifeboat', 'BackupDurationSeconds', 'service', 'lifeboat-record', 'source', name, expect.anything()]]);
    expect(lag).toEqual([['Lifeboat', 'OffsiteLagSeconds', 'service', 'lifeboat-record', 'source', name, expect.anything()]]);
    // Published by the drill state machine's RecordDrill step, with only the source dimension.
    expect(rto).toEqual([['Lifeboat', 'MeasuredRtoSeconds', 'source', name, expect.objectContaining({ stat: 'Maximum' })]]);
    expect(graphs[4].properties.annotations).toEqual({ horizontal: [expect.objectContaining({ value: (source as Source).tier.rtoSeconds })] });
  });
});

describe('200 sources', () => {
  const many: Source[] = Array.from({ length: 200 }, (_, index) => ({ ...testConfig.sources[index % 2], name: `db${index}` }));
  const built = alarmsStack({
    sources: many,
    // Stand-ins for the watchdog's two alarms per source.
    sourceAlarms: (_stack, alarms) => Object.fromEntries(many.map((source) => [source.name, [alarms.backupRunFailed, alarms.drillFailed]])),
  });
  const manyJson = Template.fromStack(built.stack).toJSON() as { Resources: Resources };
  const count = (type: string) => Object.values(manyJson.Resources).filter((resource) => resource.Type === type).length;

  test('the same alarms as for two sources, and one dashboard per 50 sources', () => {
    expect(count('AWS::CloudWatch::Alarm')).toBe(7 + DEAD_LETTER_NAMES.length);
    expect(count('AWS::CloudWatch::Dashboard')).toBe(4);
    expect(built.dashboard.dashboards).toHaveLength(4);
  });

  test('each dashboard body stays under 2.5 KB of template per source (the 1 MB template limit)', () => {
    const sizes = Object.values(manyJson.Resources).filter((resource) => resource.Type === 'AWS::CloudWatch::Dashboard')
      .map((resource) => JSON.stringify(resource.Properties.DashboardBody).length);
    expect(Math.max(...sizes)).toBeLessThan(50 * 2_500);
  });

  test('each dashboard holds its 50 sources and their alarms, at most 100 per status widget', () => {
    built.dashboard.dashboards.forEach((dashboard, index) => {
      const body = dashboardBody(manyJson.Resources[built.stack.getLogicalId(dashboard.node.defaultChild as CfnElement)].Properties);
      const titles = body.widgets.filter((widget) => widget.type === 'metric').map((widget) => (widget.properties.title as string).split(':')[0]);
      expect(new Set(titles)).toEqual(new Set(many.slice(index * 50, index * 50 + 50).map((source) => source.name)));
      const status = body.widgets.filter((widget) => widget.type === 'alarm');
      expect(status.map((widget) => (widget.properties.alarms as string[]).length)).toEqual([100, 7 + DEAD_LETTER_NAMES.length + 2 * 50 - 100]);
    });
  });
});

test('fails when a dead-letter queue name is used twice or is not letters and digits', () => {
  expect(() => alarmsStack({ deadLetterNames: ['Pruner', 'Pruner', 'backup schedules'] })).toThrow(
    'LifeboatAlarms: deadLetterQueues[1].name: "Pruner" is used twice; deadLetterQueues[2].name: "backup schedules" must be letters and digits (it is part of a construct id)');
});

test('fails when sourcesPerDashboard is not a whole number of at least 1', () => {
  expect(() => alarmsStack({ sourcesPerDashboard: 0 })).toThrow('LifeboatDashboard: sourcesPerDashboard: 0 must be a whole number of at least 1');
});

test('cdk-nag AwsSolutions: every finding is acknowledged with its reason', () => {
  const app = testApp();
  alarmsStack({ app });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  expect(() => app.synth()).not.toThrow();
});

test('a suspiciously small dump alarms once for every source, through a Metrics Insights query on RecordFailure\'s metric', () => {
  const [, alarm] = ofType('AWS::CloudWatch::Alarm').find(([id]) => id.includes('SuspiciousDumpSize')) ?? [];
  expect(alarm?.Properties).toMatchObject({
    Threshold: 1,
    ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    TreatMissingData: 'notBreaching',
    Metrics: [{ Expression: 'SELECT SUM(SuspiciousDumpSize) FROM SCHEMA("Lifeboat", service, source)', Period: 300, ReturnData: true }],
  });
});
