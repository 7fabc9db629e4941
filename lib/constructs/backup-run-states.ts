/**
 * The backup run's states (docs/backup-run.md): Dump → Verify (Lambda, or Fargate above the
 * threshold) → Commit → AwaitOffsite → Record, every failure caught into RecordFailure →
 * NotifyFailure → Failed; a schedule's slot named first (NameRun) and announced
 * (AnnounceStart). The resources the states call and their grants are BackupWorkflow's
 * (backup-workflow.ts).
 */
import { Duration, Stack } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ENGINE_NAMES, engineOf } from '../engines/registry';
import { BACKUP_STARTED, EVENT_SOURCE } from '../steps/telemetry';
import type { BackupWorkflowProps } from './backup-workflow';

/**
 * Errors worth another attempt: the cause may be gone a minute later. The engines name theirs
 * (a source that did not answer, a dump client that failed); the commit protocol's upload and
 * ECS's own failure to start the task are the run's.
 */
export const TRANSIENT_DUMP_ERRORS = [
  ...new Set(ENGINE_NAMES.flatMap((name) => engineOf(name).retryableErrors)),
  'UploadFailed',
  'ECS.AmazonECSException',
];
const LAMBDA_SERVICE_ERRORS = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];

export interface BackupRunStatesInputs {
  readonly props: BackupWorkflowProps;
  readonly cluster: ecs.CfnCluster;
  /** The verifier on Fargate, for artifacts too large for Lambda. */
  readonly verifyTask: ecs.FargateTaskDefinition;
  readonly functions: {
    readonly verify: lambda.IFunction;
    readonly commit: lambda.IFunction;
    readonly awaitOffsite: lambda.IFunction;
    readonly record: lambda.IFunction;
    readonly recordFailure: lambda.IFunction;
  };
}

export function backupRunStates(parent: Construct, inputs: BackupRunStatesInputs): sfn.IChainable {
  const { props, cluster, verifyTask } = inputs;
  const { verify } = inputs.functions;
  // States live in their own scope: their ids are the state names users read in the
  // console, and several equal the names of the functions behind them.
  const scope = new Construct(parent, 'States');
  const clusterArn = cluster.attrArn;
  const network = {
    AwsvpcConfiguration: { 'Subnets.$': '$.target.subnets', 'SecurityGroups.$': '$.target.securityGroups', AssignPublicIp: 'DISABLED' },
  };
  const { onFailure, lambdaStep, verifyFailed, verdict } = runStates(scope, props, inputs.functions);

  const dump = new sfn.CustomState(scope, 'Dump', {
    stateJson: {
      Type: 'Task',
      Comment: 'The worker dumps the source into the primary bucket and answers the task token with the manifest summary',
      Resource: `arn:${Stack.of(parent).partition}:states:::ecs:runTask.waitForTaskToken`,
      HeartbeatSeconds: (props.dumpHeartbeat ?? Duration.minutes(5)).toSeconds(),
      // The worker enforces its tier's deadline itself (it aborts the upload and reports
      // DumpTimedOut); this is only the backstop for a worker that hangs yet heartbeats.
      TimeoutSeconds: 24 * 3600,
      Parameters: {
        Cluster: clusterArn,
        'TaskDefinition.$': '$.target.taskDefinitionArn',
        LaunchType: 'FARGATE',
        PropagateTags: 'TASK_DEFINITION',
        NetworkConfiguration: network,
        Overrides: {
          ContainerOverrides: [{
            Name: 'Worker',
            Environment: [
              { Name: 'LIFEBOAT_TASK_TOKEN', 'Value.$': '$$.Task.Token' },
              { Name: 'LIFEBOAT_SCHEDULED_TIME', 'Value.$': '$.scheduledTime' },
            ],
          }],
        },
      },
      ResultPath: '$.dump',
    },
  });
  dump.addRetry({ errors: TRANSIENT_DUMP_ERRORS, interval: Duration.minutes(1), maxAttempts: 2, backoffRate: 2 });
  // A retried schedule for a slot that is already committed: nothing to do, nothing wrong.
  dump.addCatch(new sfn.Succeed(scope, 'Slot already committed'), { errors: ['AlreadyCommitted'], resultPath: '$.failure' });
  dump.addCatch(onFailure('Dump'), { errors: ['States.ALL'], resultPath: '$.failure' });

  const verifyState = lambdaStep('Verify', verify, '$.dump', '$.verification', Duration.minutes(15), verifyFailed);

  const verifyOnFargate = new sfn.CustomState(scope, 'VerifyOnFargate', {
    stateJson: {
      Type: 'Task',
      Comment: 'The same verifier as a Fargate task, for artifacts whose full read does not fit in Lambda',
      Resource: `arn:${Stack.of(parent).partition}:states:::ecs:runTask.waitForTaskToken`,
      HeartbeatSeconds: 300,
      TimeoutSeconds: 24 * 3600,
      Parameters: {
        Cluster: clusterArn,
        TaskDefinition: verifyTask.taskDefinitionArn,
        LaunchType: 'FARGATE',
        NetworkConfiguration: network,
        Overrides: {
          ContainerOverrides: [{
            Name: 'Verifier',
            Environment: [
              { Name: 'LIFEBOAT_TASK_TOKEN', 'Value.$': '$$.Task.Token' },
              { Name: 'LIFEBOAT_SOURCE', 'Value.$': '$.dump.source' },
              { Name: 'LIFEBOAT_RUN_ID', 'Value.$': '$.dump.runId' },
              { Name: 'LIFEBOAT_DUMP_SUMMARY', 'Value.$': 'States.JsonToString($.dump)' },
            ],
          }],
        },
      },
      ResultPath: '$.verification',
    },
  });
  verifyOnFargate.addRetry({ errors: ['ECS.AmazonECSException'], interval: Duration.minutes(1), maxAttempts: 2, backoffRate: 2 });
  verifyOnFargate.addCatch(onFailure('VerifyOnFargate'), { errors: ['States.ALL'], resultPath: '$.failure' });

  const threshold = props.fargateVerifyThresholdBytes ?? 20e9;
  const start = offsiteSeed(scope);
  start.next(announceStart(scope, dump));
  dump
    .next(new sfn.Choice(scope, 'ChooseVerifier')
      .when(sfn.Condition.numberGreaterThan('$.dump.bytes', threshold), verifyOnFargate)
      .otherwise(verifyState)
      .afterwards())
    .next(verdict);
  return start;
}

/** `Start`: seeds the offsite poll counter AwaitOffsite counts with. */
export function offsiteSeed(scope: Construct): sfn.Pass {
  return new sfn.Pass(scope, 'Start', {
    comment: 'Seeds the offsite poll counter',
    result: sfn.Result.fromObject({ attempts: 0, present: false }),
    resultPath: '$.offsite',
  });
}

export interface RunStateProps {
  readonly alarmTopic: BackupWorkflowProps['alarmTopic'];
  readonly offsitePollInterval?: Duration;
}

export interface RunFunctions {
  readonly commit: lambda.IFunction;
  readonly awaitOffsite: lambda.IFunction;
  readonly record: lambda.IFunction;
  readonly recordFailure: lambda.IFunction;
}

/** A Lambda step whose result lands at `resultPath` (see `runStates`). */
export type LambdaStep = (name: string, fn: lambda.IFunction, payload: sfn.TaskInput | string, resultPath: string, timeout: Duration, failedState?: sfn.IChainable) => tasks.LambdaInvoke;

/**
 * What every backup run ends with, once `$.dump` (the manifest summary) and `$.verification`
 * (the verifier's proposed verdict) are there: `Verdict?` → Commit (or RecordFailedVerdict) →
 * AwaitOffsite, polled → Record → `Backed up`; and the failure path every state's catch goes
 * through: `<state> failed` → RecordFailure → NotifyFailure → Failed. The logical run
 * (backupRunStates) and the PITR run (pitr-workflow.ts) share them.
 */
export function runStates(scope: Construct, props: RunStateProps, functions: RunFunctions, opts: {
  /**
   * What follows Record instead of `Backed up` (the PITR run's expiry): given `Backed up` and
   * the failure path, returns the first state. @default - `Backed up`
   */
  readonly afterRecord?: (ends: { readonly backedUp: sfn.Succeed; readonly onFailure: (state: string) => sfn.IChainable }) => sfn.IChainable;
} = {}): {
  readonly onFailure: (state: string) => sfn.IChainable;
  readonly lambdaStep: LambdaStep;
  readonly verifyFailed: sfn.IChainable;
  readonly verdict: sfn.IChainable;
} {
  const { commit, awaitOffsite, record, recordFailure } = functions;
  const failed = new sfn.Fail(scope, 'Failed', { errorPath: '$.failure.Error', causePath: '$.failure.Cause' });
  const notifyFailure = new tasks.SnsPublish(scope, 'NotifyFailure', {
    topic: props.alarmTopic,
    subject: sfn.JsonPath.stringAt('$.notification.subject'),
    message: sfn.TaskInput.fromJsonPathAt('$.notification.message'),
    resultPath: sfn.JsonPath.DISCARD,
  });
  const recordFailureState = new tasks.LambdaInvoke(scope, 'RecordFailure', {
    taskTimeout: sfn.Timeout.duration(Duration.minutes(2)),
    lambdaFunction: recordFailure,
    payloadResponseOnly: true,
    resultPath: '$.notification',
    retryOnServiceExceptions: true,
  });
  // If even the explanation fails, the on-call person still gets the raw error.
  recordFailureState.addCatch(new sfn.Pass(scope, 'PlainFailureMessage', {
    parameters: {
      'subject': 'Lifeboat: backup run failed',
      'message.$': "States.Format('Backup run {} failed: {} {}', $$.Execution.Name, $.failure.Error, $.failure.Cause)",
    },
    resultPath: '$.notification',
  }).next(notifyFailure), { resultPath: '$.recordFailureError' });
  recordFailureState.next(notifyFailure);
  // If the message cannot be published, the execution still ends red with the run's own
  // error: $.failure is kept (the publish error goes to $.notifyError).
  notifyFailure.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.notifyError' });
  notifyFailure.next(failed);

  /** Every state's failures go through a Pass that names the state (one per state), then RecordFailure. */
  const failedStates = new Map<string, sfn.IChainable>();
  const onFailure = (state: string) => {
    const existing = failedStates.get(state);
    if (existing) return existing;
    const made = new sfn.Pass(scope, `${state} failed`, { result: sfn.Result.fromString(state), resultPath: '$.failedState' }).next(recordFailureState);
    failedStates.set(state, made);
    return made;
  };

  /**
   * A Lambda step whose result lands at `resultPath`: retried only on Lambda's own service
   * errors (the function's errors are verdicts, not glitches), every failure caught.
   * `payload`: an object of JsonPaths, or a path whose value is the whole payload.
   */
  const lambdaStep: LambdaStep = (name, fn, payload, resultPath, timeout, failedState = onFailure(name)) => {
    const step = new tasks.LambdaInvoke(scope, name, {
      taskTimeout: sfn.Timeout.duration(timeout),
      lambdaFunction: fn,
      ...(typeof payload === 'string' ? { inputPath: payload } : { payload }),
      payloadResponseOnly: true,
      resultPath,
      retryOnServiceExceptions: false,
    });
    step.addRetry({ errors: LAMBDA_SERVICE_ERRORS, interval: Duration.seconds(5), maxAttempts: 3, backoffRate: 2 });
    step.addCatch(failedState, { errors: ['States.ALL'], resultPath: '$.failure' });
    return step;
  };
  const verifyFailed = onFailure('Verify');
  const commitPayload = sfn.TaskInput.fromObject({ dump: sfn.JsonPath.objectAt('$.dump'), verification: sfn.JsonPath.objectAt('$.verification') });
  const commitState = lambdaStep('Commit', commit, commitPayload, '$.commit', Duration.minutes(2));
  // A failed verdict is recorded by Commit too (the one writer of verification.json), which
  // then fails the run with the verdict's error: the run failed at Verify.
  const recordFailedVerdict = lambdaStep('RecordFailedVerdict', commit, commitPayload, '$.commit', Duration.minutes(2), verifyFailed);
  // Commit always throws on a failed verdict; should it ever return, the run still fails.
  recordFailedVerdict.next(new sfn.Fail(scope, 'Verdict failed', { errorPath: '$.verification.error.name', causePath: '$.verification.error.message' }));
  const awaitOffsiteState = lambdaStep('AwaitOffsite', awaitOffsite,
    sfn.TaskInput.fromObject({ dump: sfn.JsonPath.objectAt('$.dump'), offsite: sfn.JsonPath.objectAt('$.offsite') }), '$.offsite', Duration.minutes(2));
  const waitForOffsite = new sfn.Wait(scope, 'WaitForOffsite', {
    time: sfn.WaitTime.duration(props.offsitePollInterval ?? Duration.seconds(60)),
  });

  const recordState = new tasks.LambdaInvoke(scope, 'Record', {
    taskTimeout: sfn.Timeout.duration(Duration.minutes(2)),
    lambdaFunction: record,
    payloadResponseOnly: true,
    resultPath: '$.record',
    retryOnServiceExceptions: true,
  });
  recordState.addCatch(onFailure('Record'), { errors: ['States.ALL'], resultPath: '$.failure' });

  const afterRecord = () => {
    const backedUp = new sfn.Succeed(scope, 'Backed up');
    return opts.afterRecord ? opts.afterRecord({ backedUp, onFailure }) : backedUp;
  };
  const verdict = new sfn.Choice(scope, 'Verdict?')
    .when(sfn.Condition.stringEquals('$.verification.verdict', 'ok'), commitState)
    .otherwise(recordFailedVerdict)
    .afterwards({ includeOtherwise: false })
    .next(awaitOffsiteState)
    .next(new sfn.Choice(scope, 'OffsiteCopied?')
      .when(sfn.Condition.booleanEquals('$.offsite.present', true), recordState.next(afterRecord()))
      .otherwise(waitForOffsite.next(awaitOffsiteState)));
  return { onFailure, lambdaStep, verifyFailed, verdict };
}

/**
 * The start heartbeat's event: `Backup Started` with the source, the slot's run id and the
 * execution, put on the default bus before the dump. Step Functions' own RUNNING event
 * carries the input only as a string, which an input transformer cannot read; this one a
 * monitor can match per source. A failed announcement never stops the backup, and an input
 * without a slot time (the dump then fails naming it) is not announced.
 */

function announceStart(scope: Construct, dump: sfn.IChainable): sfn.IChainable {
  const announce = new tasks.EventBridgePutEvents(scope, 'AnnounceStart', {
    comment: 'The start heartbeat: which source and run started (docs/backup-run.md)',
    entries: [{
      source: EVENT_SOURCE,
      detailType: BACKUP_STARTED,
      detail: sfn.TaskInput.fromObject({
        source: sfn.JsonPath.stringAt('$.source'),
        runId: sfn.JsonPath.stringAt('$.run.runId'),
        scheduledTime: sfn.JsonPath.stringAt('$.scheduledTime'),
        execution: sfn.JsonPath.stringAt('$$.Execution.Name'),
        executionArn: sfn.JsonPath.stringAt('$$.Execution.Id'),
      }),
    }],
    resultPath: sfn.JsonPath.DISCARD,
    taskTimeout: sfn.Timeout.duration(Duration.seconds(30)),
  });
  announce.addRetry({ errors: ['States.ALL'], interval: Duration.seconds(2), maxAttempts: 2, backoffRate: 2 });
  announce.addCatch(dump, { errors: ['States.ALL'], resultPath: '$.announceError' });
  const nameRun = new sfn.Pass(scope, 'NameRun', {
    comment: 'The run id of the slot, as the worker will name the run',
    parameters: { 'runId.$': RUN_ID_FROM_SCHEDULED_TIME },
    resultPath: '$.run',
  });
  return new sfn.Choice(scope, 'Slot time given?')
    .when(sfn.Condition.and(
      sfn.Condition.isPresent('$.source'),
      sfn.Condition.isString('$.source'),
      sfn.Condition.isPresent('$.scheduledTime'),
      sfn.Condition.isString('$.scheduledTime'),
      sfn.Condition.stringMatches('$.scheduledTime', SCHEDULED_TIME_PATTERN),
      sfn.Condition.not(sfn.Condition.stringMatches('$.scheduledTime', '*.*')),
    ), nameRun.next(announce).next(dump))
    .otherwise(dump);
}

/**
 * The run id of the slot from the schedule's `scheduledTime` (2026-11-26T03:00:00Z →
 * 20261126T030000Z, as the worker names the run), in intrinsic functions. Each split is on
 * one character, which every reading of States.StringSplit agrees on, and nests at most five
 * functions deep.
 */
export const RUN_ID_FROM_SCHEDULED_TIME = (() => {
  const part = (separator: string, index: number, of = '$.scheduledTime') => `States.ArrayGetItem(States.StringSplit(${of}, '${separator}'), ${index})`;
  const year = part('-', 0);
  const month = part('-', 1);
  const day = part('-', 2, part('T', 0));
  const hour = part('T', 1, part(':', 0));
  const minute = part(':', 1);
  const second = part('Z', 0, part(':', 2));
  return `States.Format('{}{}{}T{}{}{}Z', ${[year, month, day, hour, minute, second].join(', ')})`;
})();

/**
 * What a schedule sends as `scheduledTime`: Scheduler's `<aws.scheduler.scheduled-time>`, UTC
 * to the second (2026-11-26T03:00:00Z). StringMatches knows only `*`; fractions are excluded apart.
 */
const SCHEDULED_TIME_PATTERN = '*-*-*T*:*:*Z';
