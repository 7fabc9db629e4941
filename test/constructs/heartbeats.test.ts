import { CfnWaitConditionHandle, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Heartbeats } from '../../lib/constructs/heartbeats';
import { testApp } from '../fixtures/cdk-app';

const URLS = ['https://hc-ping.com/0b1f2c3d-aaaa-bbbb-cccc-000000000001', 'https://oneuptime.example.com/heartbeat/abc123'];
const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:111111111111:stateMachine:lifeboat-backup-run';

function heartbeatsStack(app = testApp(), heartbeatUrls: readonly string[] = URLS): Stack {
  const stack = new Stack(app, 'HeartbeatsTest', { env: { account: '111111111111', region: 'eu-west-1' } });
  new Heartbeats(stack, 'Heartbeats', { heartbeatUrls });
  return stack;
}
const template = Template.fromStack(heartbeatsStack());
const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
const idsOf = (type: string) => Object.keys(json.Resources).filter((id) => json.Resources[id].Type === type);
const idOf = (type: string, prefix: string) => idsOf(type).find((id) => id.startsWith(prefix)) as string;
const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });

interface RuleTarget {
  Arn: unknown;
  InputTransformer: { InputPathsMap: Record<string, string>; InputTemplate: string };
  RetryPolicy: unknown;
  DeadLetterConfig: unknown;
}
const ruleTargets = (prefix: string) => (json.Resources[idOf('AWS::Events::Rule', prefix)].Properties.Targets as RuleTarget[]);

/** The body EventBridge would POST: the template with each placeholder replaced by the JSON value at its path. */
function render(target: RuleTarget, event: unknown): unknown {
  const { InputPathsMap, InputTemplate } = target.InputTransformer;
  const text = InputTemplate.replace(/<([^<>]+)>/g, (_, name: string) => {
    const value = InputPathsMap[name].slice(2).split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], event);
    return JSON.stringify(value ?? null);
  });
  return JSON.parse(text);
}

test('per URL an API-key connection (a placeholder header: the URL is the credential) and a POST API destination at 5/s', () => {
  template.resourceCountIs('AWS::Events::Connection', 2);
  template.resourceCountIs('AWS::Events::ApiDestination', 2);
  URLS.forEach((url, index) => {
    const connection = idOf('AWS::Events::Connection', `HeartbeatsConnection${index}`);
    expect(json.Resources[connection].Properties).toMatchObject({
      AuthorizationType: 'API_KEY',
      AuthParameters: { ApiKeyAuthParameters: { ApiKeyName: 'x-lifeboat-heartbeat', ApiKeyValue: 'none' } },
    });
    template.hasResourceProperties('AWS::Events::ApiDestination', {
      ConnectionArn: arnOf(connection),
      InvocationEndpoint: url,
      HttpMethod: 'POST',
      InvocationRateLimitPerSecond: 5,
    });
  });
});

test('three rules on the default bus: lifeboat\'s Backup Started, Backup Verified, Backup Failed', () => {
  template.resourceCountIs('AWS::Events::Rule', 3);
  expect(json.Resources[idOf('AWS::Events::Rule', 'HeartbeatsRunStarted')].Properties.EventPattern).toEqual({ 'source': ['lifeboat'], 'detail-type': ['Backup Started'] });
  expect(json.Resources[idOf('AWS::Events::Rule', 'HeartbeatsBackupVerified')].Properties.EventPattern).toEqual({ 'source': ['lifeboat'], 'detail-type': ['Backup Verified'] });
  expect(json.Resources[idOf('AWS::Events::Rule', 'HeartbeatsBackupFailed')].Properties.EventPattern).toEqual({ 'source': ['lifeboat'], 'detail-type': ['Backup Failed'] });
  for (const id of idsOf('AWS::Events::Rule')) expect(json.Resources[id].Properties.EventBusName).toBeUndefined();
});

test.each(['HeartbeatsRunStarted', 'HeartbeatsBackupVerified', 'HeartbeatsBackupFailed'])('%s targets every destination with 3 retries, 15 minutes max age and the dead-letter queue', (rule) => {
  const targets = ruleTargets(rule);
  const destinations = idsOf('AWS::Events::ApiDestination').map(arnOf);
  expect(targets.map((target) => target.Arn)).toEqual(destinations);
  for (const target of targets) {
    expect(target.RetryPolicy).toEqual({ MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 900 });
    expect(target.DeadLetterConfig).toEqual({ Arn: arnOf(idOf('AWS::SQS::Queue', 'HeartbeatsDeadLetters')) });
  }
});

test('start: source, runId, slot time and execution of the Backup Started event the run puts before its dump', () => {
  const event = {
    'source': 'lifeboat',
    'detail-type': 'Backup Started',
    'detail': {
      source: 'orders', runId: '20250101T000000Z', scheduledTime: '2025-01-01T00:00:00Z',
      execution: '0d6f', executionArn: `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:0d6f`,
    },
  };
  for (const target of ruleTargets('HeartbeatsRunStarted')) {
    expect(render(target, event)).toEqual({
      event: 'start', source: 'orders', runId: '20250101T000000Z', status: 'running', durationSeconds: null,
      scheduledTime: '2025-01-01T00:00:00Z', execution: '0d6f', executionArn: 'arn:aws:states:eu-west-1:111111111111:execution:lifeboat-backup-run:0d6f',
    });
  }
});

test('success: source, runId, duration and bytes of the Backup Verified event', () => {
  const event = {
    'source': 'lifeboat',
    'detail-type': 'Backup Verified',
    'detail': { source: 'orders', runId: '20250101T000000Z-ab12', bytes: 1024, durationSeconds: 42, bucket: 'b', manifestKey: 'k', offsite: null },
  };
  for (const target of ruleTargets('HeartbeatsBackupVerified')) {
    expect(render(target, event)).toEqual({ event: 'success', source: 'orders', runId: '20250101T000000Z-ab12', status: 'verified', durationSeconds: 42, bytes: 1024 });
  }
});

test('failure: source, runId, failed state, error and RPO breach of the Backup Failed event (the cause stays out)', () => {
  const event = {
    'source': 'lifeboat',
    'detail-type': 'Backup Failed',
    'detail': { source: 'orders', runId: null, failedState: 'Dump', error: 'DumpFailed', cause: 'pg_dump: "quoted"', lastVerifiedRunId: null, lastVerifiedAgeSeconds: null, rpoSeconds: 900, rpoBreached: true },
  };
  for (const target of ruleTargets('HeartbeatsBackupFailed')) {
    expect(target.InputTransformer.InputTemplate).not.toContain('cause');
    expect(render(target, event)).toEqual({ event: 'failure', source: 'orders', runId: null, status: 'failed', durationSeconds: null, failedState: 'Dump', error: 'DumpFailed', rpoBreached: true });
  }
});

test('the dead-letter queue is encrypted, TLS-only, kept 14 days, and only the three rules may send to it', () => {
  template.resourceCountIs('AWS::SQS::Queue', 1);
  template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
  const statements = (Object.values(json.Resources).find((resource) => resource.Type === 'AWS::SQS::QueuePolicy')?.Properties.PolicyDocument as { Statement: { Sid?: string; Effect: string; Condition?: Record<string, Record<string, unknown>> }[] }).Statement;
  const senders = statements.filter((statement) => statement.Effect === 'Allow').map((statement) => statement.Condition?.ArnEquals['aws:SourceArn']);
  expect(senders).toEqual(idsOf('AWS::Events::Rule').map(arnOf));
  expect(statements.some((statement) => statement.Effect === 'Deny' && statement.Condition?.Bool['aws:SecureTransport'] === 'false')).toBe(true);
});

test('each destination role may invoke only its own API destination', () => {
  template.resourceCountIs('AWS::IAM::Role', 2);
  for (const id of idsOf('AWS::Events::ApiDestination')) {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: [{ Action: 'events:InvokeApiDestination', Effect: 'Allow', Resource: arnOf(id) }] },
    });
  }
});

test('no URLs: no resources at all (the stack holds only a sentinel: CloudFormation refuses an empty one)', () => {
  const stack = heartbeatsStack(testApp(), []);
  new CfnWaitConditionHandle(stack, 'Sentinel');
  const heartbeats = stack.node.findChild('Heartbeats') as Heartbeats;
  expect(heartbeats.node.children).toHaveLength(0);
  expect(heartbeats.destinations).toHaveLength(0);
  expect(heartbeats.deadLetterQueue).toBeUndefined();
  expect(Object.keys(Template.fromStack(stack).toJSON().Resources as object)).toEqual(['Sentinel']);
});

test('cdk-nag AwsSolutions: no unacknowledged findings', () => {
  const app = testApp();
  heartbeatsStack(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  expect(() => app.synth()).not.toThrow();
});
