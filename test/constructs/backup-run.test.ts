import { Match } from 'aws-cdk-lib/assertions';
import { StateMachine } from 'aws-local-stepfunctions';
import { RUN_ID_FROM_SCHEDULED_TIME } from '../../lib/constructs/backup-run-states';
import { flexibleWindowFor, scheduleFor } from '../../lib/constructs/backup-schedules';
import { dumpDeadlineSeconds } from '../../lib/constructs/dump-task';
import { createStacks } from '../../lib/stacks';
import { stateMachineDefinition } from '../../local/definition';
import { validateAsl } from '../../local/validate-asl';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';
import { jobFromEnv } from '../../worker/job';
import { primaryWithShards } from '../fixtures/primary-template';

const { primary } = createStacks(testApp(), testConfig);
// The per-source resources live in the source shards (nested stacks): the parent's template with theirs.
const template = primaryWithShards(primary);
const definition = stateMachineDefinition(template.toJSON() as never) as { StartAt: string; States: Record<string, Record<string, unknown>> };
const states = definition.States;
/** A worker environment without a run id: the worker names the run from the slot time. */
const WORKER_ENV = {
  LIFEBOAT_SOURCE: 'orders', LIFEBOAT_ENGINE: 'postgres', LIFEBOAT_TIER: 'tier1', LIFEBOAT_DB_HOST: 'db.internal',
  LIFEBOAT_DB_NAMES: 'orders', LIFEBOAT_DB_USER: 'backup', LIFEBOAT_BUCKET: 'primary', AWS_REGION: 'eu-west-1',
};

type Statement = { Effect: string; Action: string | string[]; Resource: unknown };
/** Every Allow statement of the policies attached to the role of a Lambda function whose logical id starts with `prefix`. */
/** The Allow statements of a Lambda function's role (by the function's logical id prefix) or of a role (by its own). */
function allowedActions(prefix: string): { actions: string[]; resources: string; putTargets: string[] } {
  const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
  const fnId = Object.keys(json.Resources).find((id) => id.startsWith(prefix) && json.Resources[id].Type === 'AWS::Lambda::Function');
  const roleId = fnId
    ? (json.Resources[fnId].Properties.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0]
    : Object.keys(json.Resources).find((id) => id.startsWith(prefix) && json.Resources[id].Type === 'AWS::IAM::Role');
  const roleRef = JSON.stringify(roleId);
  const statements = Object.values(json.Resources)
    .filter((resource) => resource.Type === 'AWS::IAM::Policy' && JSON.stringify(resource.Properties.Roles).includes(roleRef))
    .flatMap((resource) => (resource.Properties.PolicyDocument as { Statement: Statement[] }).Statement)
    .filter((statement) => statement.Effect === 'Allow');
  return {
    actions: statements.flatMap((statement) => [statement.Action].flat()),
    resources: JSON.stringify(statements.map((s) => s.Resource)),
    putTargets: statements.filter((s) => [s.Action].flat().includes('s3:PutObject')).map((s) => JSON.stringify(s.Resource)),
  };
}

describe('schedules', () => {
  test.each([
    [900, 'UTC', 'cron(0/15 * * * ? *)', 'UTC'],
    [3600, 'Europe/Berlin', 'cron(0 0/1 * * ? *)', 'Europe/Berlin'],
    [6 * 3600, 'UTC', 'cron(0 0/6 * * ? *)', 'UTC'],
    [86_400, 'Europe/Dublin', 'cron(0 3 * * ? *)', 'Europe/Dublin'],
    [7 * 86_400, 'UTC', 'cron(0 3 ? * SUN *)', 'UTC'],
    [90 * 60, 'UTC', 'rate(90 minutes)', undefined],
    [2 * 86_400, 'UTC', 'rate(2 days)', undefined],
  ])('an interval of %d s in %s is %s', (scheduleSeconds, timezone, expression, zone) => {
    expect(scheduleFor({ scheduleSeconds, timezone })).toEqual({ expression, timezone: zone });
  });

  test.each([[900, 3], [3600, 12], [86_400, 15], [300, 1]])('a %d s schedule gets a %d minute flexible window', (scheduleSeconds, minutes) => {
    expect(flexibleWindowFor({ scheduleSeconds }).toMinutes()).toBe(minutes);
  });

  test('one schedule per source: cadence, timezone, flexible window, bounded retries, dead-letter queue, the slot time as input', () => {
    for (const source of testConfig.sources) {
      const spec = scheduleFor(source.tier);
      template.hasResourceProperties('AWS::Scheduler::Schedule', {
        ScheduleExpression: spec.expression,
        ScheduleExpressionTimezone: spec.timezone,
        FlexibleTimeWindow: { Mode: 'FLEXIBLE', MaximumWindowInMinutes: flexibleWindowFor(source.tier).toMinutes() },
        Target: Match.objectLike({
          RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: Match.anyValue() },
          DeadLetterConfig: { Arn: Match.anyValue() },
          Input: Match.objectLike({ 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(`"source":"${source.name}","scheduledTime":"<aws.scheduler.scheduled-time>"`)])] }),
        }),
      });
    }
    // The restore drills have schedules of their own (test/constructs/drill.test.ts).
    const backupSchedules = Object.values(template.findResources('AWS::Scheduler::Schedule')).filter((schedule) => String(schedule.Properties.Description).startsWith('Lifeboat: back up'));
    expect(backupSchedules).toHaveLength(testConfig.sources.length);
    // SQS-managed encryption: the schedules' roles deliver without KMS, and nobody needs the backup key to read a dead letter.
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, KmsMasterKeyId: Match.absent(), MessageRetentionPeriod: 14 * 86_400 });
    expect(Object.values(template.findResources('AWS::SQS::Queue')).filter((queue) => queue.Properties.KmsMasterKeyId !== undefined)).toEqual([]);
  });
});

describe('the backup-run state machine', () => {
  test('is a Standard workflow on JSONPath with logging and tracing, named for the task-token grant', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'Lifeboat-backup-run',
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL' }),
    });
    expect(definition).not.toHaveProperty('QueryLanguage', 'JSONata');
    expect(validateAsl(definition)).toEqual({ isValid: true, errors: [] });
  });

  test('Dump → ChooseVerifier → Verify | VerifyOnFargate → Verdict? → Commit → AwaitOffsite ⟲ WaitForOffsite → Record', () => {
    expect(definition.StartAt).toBe('Start');
    expect(states.Start.Next).toBe('Slot time given?');
    expect(states.Dump.Next).toBe('ChooseVerifier');
    expect(states.ChooseVerifier).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.dump.bytes', NumericGreaterThan: 20e9, Next: 'VerifyOnFargate' }],
      Default: 'Verify',
    });
    expect(states.Verify).toMatchObject({ InputPath: '$.dump', Next: 'Verdict?' });
    expect(states.VerifyOnFargate.Next).toBe('Verdict?');
    // The verifier returns its verdict; Commit writes it, ok or failed (a failed one fails the run at Verify).
    expect(states['Verdict?']).toMatchObject({
      Type: 'Choice', Choices: [{ Variable: '$.verification.verdict', StringEquals: 'ok', Next: 'Commit' }], Default: 'RecordFailedVerdict',
    });
    expect(states.RecordFailedVerdict).toMatchObject({
      Resource: states.Commit.Resource,
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Verify failed' }],
      Next: 'Verdict failed',
    });
    expect(states['Verdict failed']).toEqual({ Type: 'Fail', ErrorPath: '$.verification.error.name', CausePath: '$.verification.error.message' });
    expect(states.Commit.Next).toBe('AwaitOffsite');
    expect(states.AwaitOffsite.Next).toBe('OffsiteCopied?');
    expect(states['OffsiteCopied?']).toMatchObject({
      Choices: [{ Variable: '$.offsite.present', BooleanEquals: true, Next: 'Record' }], Default: 'WaitForOffsite',
    });
    expect(states.WaitForOffsite).toMatchObject({ Type: 'Wait', Seconds: 60, Next: 'AwaitOffsite' });
    expect(states.Record.Next).toBe('Backed up');
  });

  test('before the dump, the start heartbeat: Backup Started with the source, the slot\'s run id and the execution; never a reason to stop', () => {
    expect(states['Slot time given?']).toMatchObject({
      Type: 'Choice',
      Choices: [{ And: expect.arrayContaining([
        { Variable: '$.scheduledTime', StringMatches: '*-*-*T*:*:*Z' },
        { Not: { Variable: '$.scheduledTime', StringMatches: '*.*' } },
      ]), Next: 'NameRun' }],
      Default: 'Dump',
    });
    expect(states.NameRun).toMatchObject({ Type: 'Pass', Parameters: { 'runId.$': RUN_ID_FROM_SCHEDULED_TIME }, ResultPath: '$.run', Next: 'AnnounceStart' });
    expect(states.AnnounceStart).toMatchObject({
      Resource: 'arn:aws:states:::events:putEvents',
      Parameters: { Entries: [{ Source: 'lifeboat', DetailType: 'Backup Started', Detail: {
        'source.$': '$.source', 'runId.$': '$.run.runId', 'scheduledTime.$': '$.scheduledTime', 'execution.$': '$$.Execution.Name', 'executionArn.$': '$$.Execution.Id',
      } }] },
      ResultPath: null,
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.announceError', Next: 'Dump' }],
      Next: 'Dump',
    });
    // The state machine's role may put events on the default bus only.
    const { actions, resources } = allowedActions('BackupRunStateMachineRole');
    expect(actions).toContain('events:PutEvents');
    expect(resources).toContain(':event-bus/default');
  });

  test.each([
    ['2026-11-26T03:00:00Z'],
    ['2026-01-01T00:15:07Z'],
    ['1999-12-31T23:59:59Z'],
  ])('the run id NameRun computes from %s is the one the worker names the run by', async (scheduledTime) => {
    const machine = new StateMachine({
      StartAt: 'NameRun',
      States: { NameRun: { Type: 'Pass', Parameters: { 'runId.$': RUN_ID_FROM_SCHEDULED_TIME }, ResultPath: '$.run', End: true } },
    } as never);
    const output = await machine.run({ scheduledTime } as never).result as { run: { runId: string } };
    const job = jobFromEnv({ ...WORKER_ENV, LIFEBOAT_SCHEDULED_TIME: scheduledTime });
    expect(output.run.runId).toBe(job.runId);
  });

  test('Dump runs the source\'s task on Fargate with a task token, a heartbeat timeout and a backstop timeout', () => {
    expect(states.Dump).toMatchObject({
      Resource: 'arn:aws:states:::ecs:runTask.waitForTaskToken',
      HeartbeatSeconds: 300,
      TimeoutSeconds: 86_400,
      ResultPath: '$.dump',
      Parameters: {
        'TaskDefinition.$': '$.target.taskDefinitionArn',
        LaunchType: 'FARGATE',
        NetworkConfiguration: { AwsvpcConfiguration: { 'Subnets.$': '$.target.subnets', 'SecurityGroups.$': '$.target.securityGroups', AssignPublicIp: 'DISABLED' } },
        Overrides: { ContainerOverrides: [{ Name: 'Worker', Environment: [
          { Name: 'LIFEBOAT_TASK_TOKEN', 'Value.$': '$$.Task.Token' },
          { Name: 'LIFEBOAT_SCHEDULED_TIME', 'Value.$': '$.scheduledTime' },
        ] }] },
      },
    });
    // The worker's own deadline is the tier's schedule interval (at least 15 minutes).
    expect(dumpDeadlineSeconds({ scheduleSeconds: 900 })).toBe(900);
    expect(dumpDeadlineSeconds({ scheduleSeconds: 300 })).toBe(900);
    expect(dumpDeadlineSeconds({ scheduleSeconds: 86_400 })).toBe(86_400);
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      Family: 'lifeboat-dump-orders',
      ContainerDefinitions: [Match.objectLike({ Environment: Match.arrayWith([{ Name: 'LIFEBOAT_DEADLINE_SECONDS', Value: '900' }]) })],
    });
  });

  test('retries only named transient errors; a committed slot ends quietly; every other failure is caught', () => {
    expect(states.Dump.Retry).toEqual([{ ErrorEquals: ['SourceUnreachable', 'DumpFailed', 'UploadFailed', 'ECS.AmazonECSException'], IntervalSeconds: 60, MaxAttempts: 2, BackoffRate: 2 }]);
    expect(states.Dump.Catch).toEqual([
      { ErrorEquals: ['AlreadyCommitted'], ResultPath: '$.failure', Next: 'Slot already committed' },
      { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Dump failed' },
    ]);
    for (const name of ['Verify', 'Commit', 'AwaitOffsite']) {
      const retry = states[name].Retry as { ErrorEquals: string[] }[];
      expect(retry.flatMap((r) => r.ErrorEquals).every((error) => error.startsWith('Lambda.'))).toBe(true);
    }
    for (const name of ['Dump', 'Verify', 'VerifyOnFargate', 'Commit', 'AwaitOffsite', 'Record']) {
      expect(states[name].Catch).toEqual(expect.arrayContaining([{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: `${name} failed` }]));
      expect(states[`${name} failed`]).toMatchObject({ Type: 'Pass', Result: name, ResultPath: '$.failedState', Next: 'RecordFailure' });
    }
    expect(states.Verify).toMatchObject({ TimeoutSeconds: 900 });
  });

  test('every failure ends RecordFailure → NotifyFailure (SNS) → Failed, with the error and cause', () => {
    expect(states.RecordFailure).toMatchObject({ ResultPath: '$.notification', Next: 'NotifyFailure' });
    expect(states.NotifyFailure).toMatchObject({
      Resource: 'arn:aws:states:::sns:publish',
      Parameters: { TopicArn: expect.stringMatching(/^arn:aws:sns:/), 'Message.$': '$.notification.message', 'Subject.$': '$.notification.subject' },
      Next: 'Failed',
      // A failed publish keeps $.failure: the execution still fails with the run's own error.
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.notifyError', Next: 'Failed' }],
    });
    expect(states.Failed).toEqual({ Type: 'Fail', ErrorPath: '$.failure.Error', CausePath: '$.failure.Cause' });
  });
});

describe('least privilege', () => {
  test('the verifier reads runs (exact versions) and writes nothing: it returns its verdict', () => {
    for (const role of ['BackupRunVerify', 'BackupRunVerifyTaskTaskRole']) {
      const { actions, putTargets } = allowedActions(role);
      expect(actions).toEqual(expect.arrayContaining(['s3:GetObject', 's3:GetObjectVersion']));
      expect(actions.filter((action) => /Put|Delete|\*$/.test(action))).toEqual([]);
      expect(putTargets).toEqual([]);
    }
  });

  test('Commit writes only verification.json, with its lock; it reads only manifests and verdicts', () => {
    const { actions, putTargets, resources } = allowedActions('BackupRunCommit');
    expect(actions).toEqual(expect.arrayContaining(['s3:PutObject', 's3:PutObjectRetention', 's3:GetObjectVersion']));
    expect(putTargets).toHaveLength(1);
    expect(putTargets[0]).toMatch(/\/runs\/\*\/verification\.json"\]\]\}$/);
    expect(resources).not.toMatch(/\/runs\/\*"/);
  });

  test('RecordFailure reads only the JSON documents of runs, never an artifact', () => {
    const { actions, resources } = allowedActions('BackupRunRecordFailure');
    expect(actions.filter((action) => /Put|Delete/.test(action) && action.startsWith('s3:'))).toEqual([]);
    const objects = resources.match(/\/runs\/[^"]*"/g) ?? [];
    expect(objects.length).toBeGreaterThan(0);
    for (const resource of objects) expect(resource).toMatch(/^\/runs\/\*\/(manifest|verification|offsite)\.json"$/);
  });

  test('await-offsite writes only offsite.json and reads the offsite bucket', () => {
    const { actions, resources, putTargets } = allowedActions('BackupRunAwaitOffsite');
    expect(actions.filter((action) => /Delete/.test(action))).toEqual([]);
    expect(putTargets).toHaveLength(1);
    expect(putTargets[0]).toMatch(/\/runs\/\*\/offsite\.json"\]\]\}$/);
    expect(resources).toContain('lifeboat-offsite-111111111111-eu-central-1');
  });

  test('no Lambda of the backup run may delete anything', () => {
    for (const prefix of ['BackupRunVerify', 'BackupRunCommit', 'BackupRunAwaitOffsite', 'BackupRunRecord', 'BackupRunRecordFailure']) {
      expect(allowedActions(prefix).actions.filter((action) => /Delete|s3:\*/.test(action))).toEqual([]);
    }
  });

  test('the state machine may run the dump and verify task definitions, in its cluster, and pass their roles', () => {
    const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
    const policies = JSON.stringify(Object.values(json.Resources).filter((r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes('BackupRunStateMachineRole')));
    expect(policies).toContain('"ecs:RunTask"');
    expect(policies).toContain('"ecs:cluster"');
    expect(policies).toContain('"iam:PassRole"');
    expect(policies).not.toMatch(/"Action":"ecs:RunTask","Resource":"\*"/);
  });
});
