import { Duration, Stack } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { Source } from '../config/types';
import type { SourceTarget } from './backup-schedules';
import { DRILL_ENV } from '../../worker/drill-job';
import { DRILL_FAMILY_PREFIX, drillStateMachineName, type DrillTask } from './drill-task';
import { lifeboatRolesArn, taskDefinitionFamilyArn } from './backup-workflow';
import { grantPublishTo } from './alarm-topic';
import { loggedStateMachine } from './common';
import { acknowledgeWildcardResource } from './nag';

/** Errors worth another attempt: ECS could not place the task (capacity, throttling). */
export const TRANSIENT_DRILL_ERRORS = ['ECS.AmazonECSException'];

/** What the drill state machine reads from its input (`$.target`): the source's drill task and its network. */
export type DrillTarget = SourceTarget;

/**
 * How long RunDrill may take: twice the tier's RTO. The drill itself fails RtoExceeded when the
 * restore takes longer than the RTO, with a report; this is only the backstop for a drill that
 * hangs yet heartbeats. At least an hour, so a short RTO still leaves time to pull the image.
 */
export function drillTimeoutSeconds(tier: { readonly rtoSeconds: number }): number {
  return Math.max(3600, 2 * tier.rtoSeconds);
}

export interface DrillWorkflowProps {
  /** Prefix of the state machine's name: `<appName>-restore-drill`. */
  readonly appName: string;
  /** The shared ECS cluster (the backup workflow's). */
  readonly cluster: ecs.CfnCluster;
  readonly alarmTopic: sns.ITopic;
  /**
   * The sources drilled: the longest drill timeout of their tiers is RunDrill's timeout. Their
   * drill tasks live in the source shards (nested stacks), named by family and role path.
   */
  readonly sources: readonly Source[];
  /**
   * Missing heartbeats after which Step Functions gives up on a drill (the entry heartbeats
   * every minute).
   * @default - 5 minutes
   */
  readonly heartbeat?: Duration;
}

/**
 * The restore-drill state machine (docs/restore-drill.md): RunDrill → RecordDrill → Drilled;
 * any failure → "RunDrill failed" → DrillFailureMessage → NotifyDrillFailure → DrillFailed, so
 * a failed drill is a red execution and an SNS message. One state machine serves every source;
 * the schedule's input names the source, its drill task, its network and its timeout.
 */
export class DrillWorkflow extends Construct {
  public readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: DrillWorkflowProps) {
    super(scope, id);
    this.stateMachine = loggedStateMachine(this, {
      name: drillStateMachineName(props.appName),
      definition: this.definition(props),
      // Above any tier's RunDrill timeout (a quarterly tier4 drill may take 2 × 7 days).
      timeout: Duration.days(30),
    });

    // ECS RunTask with a task definition chosen per source (from the input): explicit grants,
    // by family and role path (the drill tasks live in nested stacks that depend on this one).
    const stack = Stack.of(this);
    const drillFamilies = taskDefinitionFamilyArn(stack, DRILL_FAMILY_PREFIX);
    const taskRoles = lifeboatRolesArn(stack, 'drill');
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({
      actions: ['ecs:RunTask'],
      resources: [drillFamilies],
      conditions: { ArnEquals: { 'ecs:cluster': props.cluster.attrArn } },
    }));
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({
      actions: ['iam:PassRole'],
      resources: [taskRoles],
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    }));
    // NotifyDrillFailure publishes to the encrypted topic: sns:Publish and the topic key's use.
    grantPublishTo(props.alarmTopic, this.stateMachine);
    acknowledgeWildcardResource(this.stateMachine.role, drillFamilies,
      'The drill task definitions of every source (family lifeboat-drill-<source>, any revision) live in nested stacks and are named by family; RunTask is limited to the Lifeboat cluster.');
    acknowledgeWildcardResource(this.stateMachine.role, taskRoles,
      'The task and execution roles of the drill tasks live in nested stacks under the /lifeboat/drill/ path and are named by path; they can be passed to ECS tasks only (iam:PassedToService).');
    acknowledgeWildcardResource(this.stateMachine.role, '*', 'Step Functions log delivery and X-Ray APIs do not support resource-level permissions.');
  }

  private definition(props: DrillWorkflowProps): sfn.IChainable {
    // State names are what people read in the console: their own scope keeps them free.
    const scope = new Construct(this, 'States');

    const failed = new sfn.Fail(scope, 'DrillFailed', { errorPath: '$.failure.Error', causePath: '$.failure.Cause' });
    const notify = new tasks.SnsPublish(scope, 'NotifyDrillFailure', {
      topic: props.alarmTopic,
      subject: sfn.JsonPath.stringAt('$.notification.subject'),
      message: sfn.TaskInput.fromJsonPathAt('$.notification.message'),
      resultPath: sfn.JsonPath.DISCARD,
    });
    // If even the alarm cannot be sent, the execution still ends red with the drill's error.
    notify.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.notifyError' });
    notify.next(failed);
    const message = new sfn.Pass(scope, 'DrillFailureMessage', {
      parameters: {
        'subject.$': "States.Format('Lifeboat: restore drill of {} failed', $.source)",
        // Only what every failure has: a missing $.from may be the very failure.
        'message.$': "States.Format('Restore drill {} of {} failed in {}: {}: {}', $$.Execution.Name, $.source, $.failedState, $.failure.Error, $.failure.Cause)",
      },
      resultPath: '$.notification',
    }).next(notify);
    const onFailure = (state: string) =>
      new sfn.Pass(scope, `${state} failed`, { result: sfn.Result.fromString(state), resultPath: '$.failedState' }).next(message);

    const runDrill = new sfn.CustomState(scope, 'RunDrill', {
      stateJson: {
        Type: 'Task',
        Comment: 'The drill task restores the latest verified run into a throwaway server, checks it, writes its report and answers the task token',
        Resource: `arn:${Stack.of(this).partition}:states:::ecs:runTask.waitForTaskToken`,
        HeartbeatSeconds: (props.heartbeat ?? Duration.minutes(5)).toSeconds(),
        // One timeout for all sources: TimeoutSecondsPath is resolved against the task's
        // Parameters (the ECS request), not the execution input, so it cannot come from $.target.
        // The longest source's backstop; each drill fails RtoExceeded on its own RTO anyway.
        TimeoutSeconds: Math.max(3600, ...props.sources.map((source) => drillTimeoutSeconds(source.tier))),
        Parameters: {
          Cluster: props.cluster.attrArn,
          'TaskDefinition.$': '$.target.taskDefinitionArn',
          LaunchType: 'FARGATE',
          PropagateTags: 'TASK_DEFINITION',
          NetworkConfiguration: {
            AwsvpcConfiguration: { 'Subnets.$': '$.target.subnets', 'SecurityGroups.$': '$.target.securityGroups', AssignPublicIp: 'DISABLED' },
          },
          Overrides: {
            ContainerOverrides: [{
              Name: 'Drill',
              Environment: [
                { Name: DRILL_ENV.taskToken, 'Value.$': '$$.Task.Token' },
                { Name: DRILL_ENV.from, 'Value.$': '$.from' },
              ],
            }],
          },
        },
        ResultPath: '$.drill',
      },
    });
    runDrill.addRetry({ errors: TRANSIENT_DRILL_ERRORS, interval: Duration.minutes(1), maxAttempts: 2, backoffRate: 2 });
    runDrill.addCatch(onFailure('RunDrill'), { errors: ['States.ALL'], resultPath: '$.failure' });

    // The measured RTO as a metric per source, for the dashboard (the report holds the rest).
    const record = new tasks.CallAwsService(scope, 'RecordDrill', {
      comment: 'Publishes the measured RTO; the drill report is already in the bucket (drills/<source>/<drillId>/report.json)',
      service: 'cloudwatch',
      action: 'putMetricData',
      parameters: {
        Namespace: 'Lifeboat',
        MetricData: [{
          MetricName: 'MeasuredRtoSeconds',
          Unit: 'Seconds',
          Dimensions: [{ Name: 'source', Value: sfn.JsonPath.stringAt('$.source') }],
          Value: sfn.JsonPath.numberAt('$.drill.measuredRtoSeconds'),
        }],
      },
      // PutMetricData has no resource-level permissions.
      iamResources: ['*'],
      resultPath: sfn.JsonPath.DISCARD,
    });
    const drilled = new sfn.Succeed(scope, 'Drilled');
    // A metric that cannot be published does not make a good drill a failed one.
    record.addCatch(new sfn.Pass(scope, 'MetricNotPublished').next(drilled), { errors: ['States.ALL'], resultPath: '$.metricError' });
    return runDrill.next(record).next(drilled);
  }
}

/** The per-source drill targets: each source's drill task definition in the source's network. */
export function drillTargets(
  sources: readonly Source[],
  drillTasks: Readonly<Record<string, DrillTask>>,
  network: (source: Source) => Pick<SourceTarget, 'subnets' | 'securityGroups'>,
): Record<string, DrillTarget> {
  return Object.fromEntries(sources.map((source) => [source.name, {
    taskDefinitionArn: drillTasks[source.name].taskDefinition.taskDefinitionArn,
    ...network(source),
  }]));
}
