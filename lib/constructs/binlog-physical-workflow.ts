/**
 * The physical backup run of MySQL/MariaDB sources with `binlog.physical` (issue 15), after the
 * PostgreSQL PITR run (pitr-workflow.ts): one state machine `<app>-binlog-physical-run` and one
 * EventBridge schedule per source and backup type of its plan (`source.binlog.plan.physical`: a
 * weekly full, an incremental at the tier's schedule):
 *
 *   Start → NameRun → Plan (Fargate: full, or incremental on the newest verified run's to_lsn)
 *     → BackupOnHost (SSM SendCommand of <app>-binlog-physical) → WaitForHost ⇄ PollHost
 *     → Verify (Fargate: the host's objects, the manifest, --prepare of the chain)
 *     → Verdict? → Commit → AwaitOffsite ⇄ WaitForOffsite → Record → Backed up
 *
 * A command that failed is read back (ListCommandInvocations): undelivered is `HostUnreachable`,
 * anything else `BackupFailed` with the script's last lines (it says whether the upload was
 * aborted). Every failure goes through RecordFailure → NotifyFailure → Failed, as every run's.
 *
 * IAM: the state machine may SendCommand the document to the sources' hosts only (by id, or by
 * tag with ssm:resourceTag); the Plan task reads the PITR catalogs' documents; the verifier reads
 * the physical runs' objects and writes manifest.json of a PITR run (write-once by the bucket).
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { PhysicalBackupType } from '../binlog/plan';
import type { ObjectLockMode, Source } from '../config/types';
import { pitrCatalogName, RUNS_PREFIX } from '../domain/layout';
import { BINLOG_PHYSICAL_PLAN_ENTRY, BINLOG_PHYSICAL_PLAN_ENV } from '../../worker/binlog-physical-plan-main';
import { BINLOG_PHYSICAL_VERIFY_ENTRY, BINLOG_PHYSICAL_VERIFY_ENV } from '../../worker/binlog-physical-verify-main';
import { grantPublishTo } from './alarm-topic';
import { flexibleWindowFor, scheduleFor } from './backup-schedules';
import { offsiteSeed, RUN_ID_FROM_SCHEDULED_TIME, runStates, type RunFunctions } from './backup-run-states';
import { BinlogPhysicalDocument } from './binlog-physical-document';
import { loggedStateMachine, startExecutionSchedule } from './common';
import { acknowledgeWildcardResource } from './nag';
import { RunGrants } from './run-grants';

export function binlogPhysicalStateMachineName(appName: string): string {
  return `${appName}-binlog-physical-run`;
}

export interface BinlogPhysicalWorkflowProps {
  readonly appName: string;
  /** The sources with `binlog.physical` (others are ignored). */
  readonly sources: readonly Source[];
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly workerImage: ecs.ContainerImage;
  /** The backup run's cluster: Plan and Verify run there. */
  readonly cluster: ecs.CfnCluster;
  /** The backup run's Commit, AwaitOffsite, Record and RecordFailure: a physical run ends as every run. */
  readonly functions: RunFunctions;
  readonly objectLockMode: ObjectLockMode;
  /** The backup schedules' group and dead-letter queue. */
  readonly schedules: { readonly group: scheduler.IScheduleGroup; readonly deadLetterQueue: sqs.IQueue };
  /** @default - 30 seconds */
  readonly hostPollInterval?: Duration;
  /** @default - 60 seconds */
  readonly offsitePollInterval?: Duration;
}

export class BinlogPhysicalWorkflow extends Construct {
  public readonly document: BinlogPhysicalDocument;
  public readonly planTask: ecs.FargateTaskDefinition;
  public readonly verifyTask: ecs.FargateTaskDefinition;
  public readonly stateMachine: sfn.StateMachine;
  /** By source, then backup type. */
  public readonly schedules: Readonly<Record<string, Readonly<Partial<Record<PhysicalBackupType, scheduler.Schedule>>>>>;

  constructor(scope: Construct, id: string, props: BinlogPhysicalWorkflowProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const sources = props.sources.filter((source) => source.binlog?.physical);
    this.document = new BinlogPhysicalDocument(this, 'HostDocument', { appName: props.appName, bucket: props.bucket, bucketKey: props.bucketKey });
    const grants = new RunGrants(props.bucket, props.bucketKey);
    const catalogs = sources.map((source) => `${RUNS_PREFIX}${pitrCatalogName(source.name)}/`);

    this.planTask = this.task('PlanTask', 'PhysicalPlan', BINLOG_PHYSICAL_PLAN_ENTRY, `${props.appName.toLowerCase()}-binlog-physical-plan`, 256, 512, props, {
      [BINLOG_PHYSICAL_PLAN_ENV.bucket]: props.bucket.bucketName,
    });
    // The catalog's verdicts and manifests (listRuns reads the three documents of each run).
    grants.readDocuments(this.planTask.taskRole, ['manifest.json', 'verification.json', 'offsite.json']);

    this.verifyTask = this.task('VerifyTask', 'PhysicalVerifier', BINLOG_PHYSICAL_VERIFY_ENTRY, `${props.appName.toLowerCase()}-binlog-physical-verify`, 2048, 8192, props, {
      [BINLOG_PHYSICAL_VERIFY_ENV.bucket]: props.bucket.bucketName,
      [BINLOG_PHYSICAL_VERIFY_ENV.objectLockMode]: props.objectLockMode.toUpperCase(),
      [BINLOG_PHYSICAL_VERIFY_ENV.scratch]: '/scratch',
    }, 200);
    const verifier = this.verifyTask.taskRole;
    grants.readDocuments(verifier, ['manifest.json', 'verification.json', 'offsite.json']);
    const physicalObjects = catalogs.map((catalog) => props.bucket.arnForObjects(`${catalog}*`));
    verifier.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadPhysicalRuns', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: physicalObjects }));
    const manifests = catalogs.map((catalog) => props.bucket.arnForObjects(`${catalog}*/manifest.json`));
    verifier.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'WritePhysicalManifests', actions: ['s3:PutObject', 's3:PutObjectRetention'], resources: manifests }));
    verifier.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:GenerateDataKey'], resources: [props.bucketKey.keyArn] }));
    for (const resource of physicalObjects) acknowledgeWildcardResource(verifier, resource, 'Reads the physical runs of a source\'s PITR catalog (the chain\'s streams, keys made per run); reads only.');
    for (const resource of manifests) acknowledgeWildcardResource(verifier, resource, 'Writes manifest.json of a physical run (runs/<source>-pitr/<runId>/), whose key is made at run time; write-once by the bucket policy.');

    this.stateMachine = loggedStateMachine(this, {
      name: binlogPhysicalStateMachineName(props.appName),
      definition: this.states(props),
      timeout: Duration.hours(26),
    });
    const machineRole = this.stateMachine.role;
    machineRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'RunPhysicalBackupDocument',
      actions: ['ssm:SendCommand'],
      resources: [stack.formatArn({ service: 'ssm', resource: 'document', resourceName: this.document.documentName })],
    }));
    for (const statement of physicalSendCommandStatements(stack, sources)) machineRole.addToPrincipalPolicy(statement);
    machineRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadCommandStatus', actions: ['ssm:ListCommands', 'ssm:ListCommandInvocations'], resources: ['*'] }));
    const tasks = [this.planTask, this.verifyTask];
    machineRole.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['ecs:RunTask'], resources: tasks.map((task) => task.taskDefinitionArn), conditions: { ArnEquals: { 'ecs:cluster': props.cluster.attrArn } },
    }));
    machineRole.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['iam:PassRole'],
      resources: tasks.flatMap((task) => [task.taskRole.roleArn, task.obtainExecutionRole().roleArn]),
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    }));
    for (const task of tasks) this.stateMachine.grantTaskResponse(task.taskRole);
    grantPublishTo(props.alarmTopic, this.stateMachine);
    acknowledgeWildcardResource(machineRole, '*', 'ssm:ListCommands and ssm:ListCommandInvocations have no resource-level permissions; Step Functions log delivery and X-Ray neither.');
    for (const fn of Object.values(props.functions)) {
      acknowledgeWildcardResource(machineRole, `${fn.functionArn}:*`, 'Invoking a Lambda function from Step Functions is granted on the function and its versions (ARN:*); nothing else.');
    }
    acknowledgeWildcardResource(machineRole, stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' }),
      'A physical source named by tag is a host found at run time; the statement admits only instances carrying that tag (ssm:resourceTag).');
    acknowledgeWildcardResource(machineRole, stack.formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: '*' }),
      'A physical source named by tag may be an on-premises host (mi-…) found at run time; only instances carrying that tag (ssm:resourceTag).');

    const schedules: Record<string, Partial<Record<PhysicalBackupType, scheduler.Schedule>>> = {};
    for (const source of sources) {
      const binlog = source.binlog as NonNullable<Source['binlog']>;
      const perType: Partial<Record<PhysicalBackupType, scheduler.Schedule>> = {};
      for (const backup of binlog.plan.physical) {
        const spec = scheduleFor({ scheduleSeconds: backup.everySeconds, timezone: source.tier.timezone });
        perType[backup.type] = startExecutionSchedule(this, `Schedule-${source.name}-${backup.type}`, {
          description: `Lifeboat: ${backup.type} ${binlog.physicalTool} backup of ${source.name} (${source.tier.name}) ${spec.expression}`,
          group: props.schedules.group,
          spec,
          window: flexibleWindowFor({ scheduleSeconds: backup.everySeconds }),
          stateMachine: this.stateMachine,
          source: source.name,
          input: binlogPhysicalRunInput(source, backup.type),
          deadLetterQueue: props.schedules.deadLetterQueue,
          retryAttempts: undefined,
          maxEventAge: Duration.seconds(Math.max(60, Math.min(backup.everySeconds, 3600))),
        });
      }
      schedules[source.name] = perType;
    }
    this.schedules = schedules;
  }

  private task(
    id: string, containerName: string, entry: string, family: string, cpu: number, memoryLimitMiB: number, props: BinlogPhysicalWorkflowProps,
    environment: Record<string, string>, ephemeralStorageGiB?: number,
  ): ecs.FargateTaskDefinition {
    const task = new ecs.FargateTaskDefinition(this, id, {
      family, cpu, memoryLimitMiB, ...(ephemeralStorageGiB ? { ephemeralStorageGiB } : {}),
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    task.addVolume({ name: 'scratch' });
    const container = task.addContainer(containerName, {
      image: props.workerImage,
      entryPoint: ['node', '--enable-source-maps', entry],
      readonlyRootFilesystem: true,
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: family,
        logGroup: new logs.LogGroup(this, `${id}Logs`, { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
      }),
      environment,
    });
    container.addMountPoints({ containerPath: '/scratch', sourceVolume: 'scratch', readOnly: false });
    Validations.of(task).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds the bucket name, the Object Lock mode and a path; the run comes with the task overrides.',
    });
    if (props.workerImage instanceof ecs.AssetImage) {
      acknowledgeWildcardResource(task.obtainExecutionRole(), '*', 'ecr:GetAuthorizationToken, which ECS needs to pull the worker image, has no resource-level permissions.');
    }
    return task;
  }

  private states(props: BinlogPhysicalWorkflowProps): sfn.IChainable {
    const scope = new Construct(this, 'States');
    const partition = Stack.of(this).partition;
    const { onFailure, verdict } = runStates(scope, { alarmTopic: props.alarmTopic, offsitePollInterval: props.offsitePollInterval }, props.functions);
    const sdk = (service: string, action: string) => `arn:${partition}:states:::aws-sdk:${service}:${action}`;
    const fail = (name: string, error: string, cause: string, state: string) => new sfn.Pass(scope, name, {
      parameters: { Error: error, 'Cause.$': cause },
      resultPath: '$.failure',
    }).next(onFailure(state));
    const network = { AwsvpcConfiguration: { 'Subnets.$': '$.target.subnets', 'SecurityGroups.$': '$.target.securityGroups', AssignPublicIp: 'DISABLED' } };

    const plan = new sfn.CustomState(scope, 'Plan', {
      stateJson: {
        Type: 'Task',
        Comment: 'What the host makes: a full, or an incremental on the newest verified physical run (its to_lsn)',
        Resource: `arn:${partition}:states:::ecs:runTask.waitForTaskToken`,
        HeartbeatSeconds: 300,
        TimeoutSeconds: 1800,
        Parameters: {
          Cluster: props.cluster.attrArn,
          TaskDefinition: this.planTask.taskDefinitionArn,
          LaunchType: 'FARGATE',
          NetworkConfiguration: network,
          Overrides: {
            ContainerOverrides: [{
              Name: 'PhysicalPlan',
              Environment: [
                { Name: BINLOG_PHYSICAL_PLAN_ENV.taskToken, 'Value.$': '$$.Task.Token' },
                { Name: BINLOG_PHYSICAL_PLAN_ENV.source, 'Value.$': '$.source' },
                { Name: BINLOG_PHYSICAL_PLAN_ENV.type, 'Value.$': '$.type' },
              ],
            }],
          },
        },
        ResultPath: '$.plan',
      },
    });
    plan.addRetry({ errors: ['ECS.AmazonECSException'], interval: Duration.minutes(1), maxAttempts: 2, backoffRate: 2 });
    plan.addCatch(onFailure('Plan'), { errors: ['States.ALL'], resultPath: '$.failure' });

    const sendCommand = new sfn.CustomState(scope, 'BackupOnHost', {
      stateJson: {
        Type: 'Task',
        Comment: 'Runs the physical backup on the source\'s host through SSM (the Lifeboat document)',
        Resource: sdk('ssm', 'sendCommand'),
        Parameters: {
          DocumentName: this.document.documentName,
          'Targets.$': '$.host.targets',
          'Comment.$': "States.Format('Lifeboat physical {} backup of {}', $.plan.type, $.source)",
          MaxConcurrency: '1',
          MaxErrors: '0',
          TimeoutSeconds: 600,
          Parameters: {
            'runPrefix.$': `States.Array(States.Format('${RUNS_PREFIX}{}/{}/', $.catalog, $.run.runId))`,
            'type.$': 'States.Array($.plan.type)',
            'incrementalLsn.$': 'States.Array($.plan.incrementalLsn)',
            'expectedSize.$': 'States.Array($.plan.expectedSize)',
            'tool.$': 'States.Array($.physical.tool)',
            'osUser.$': 'States.Array($.physical.osUser)',
            'dataDirectory.$': 'States.Array($.physical.dataDirectory)',
          },
        },
        ResultSelector: { 'commandId.$': '$.Command.CommandId' },
        ResultPath: '$.command',
        Retry: [{ ErrorEquals: ['Ssm.ThrottlingException', 'Ssm.InternalServerErrorException'], IntervalSeconds: 10, MaxAttempts: 3, BackoffRate: 2 }],
      },
    });
    const unreachableAtSend = fail('Host not reachable', 'HostUnreachable',
      "States.Format('SSM could not send the physical backup command to the host of {}: {}', $.source, $.failure.Cause)", 'BackupOnHost');
    sendCommand.addCatch(unreachableAtSend, { errors: ['Ssm.InvalidInstanceIdException', 'Ssm.InvalidTargetException'], resultPath: '$.failure' });
    sendCommand.addCatch(onFailure('BackupOnHost'), { errors: ['States.ALL'], resultPath: '$.failure' });

    const waitForHost = new sfn.Wait(scope, 'WaitForHost', { time: sfn.WaitTime.duration(props.hostPollInterval ?? Duration.seconds(30)) });
    const pollHost = new sfn.CustomState(scope, 'PollHost', {
      stateJson: {
        Type: 'Task',
        Comment: 'The command\'s status on the host',
        Resource: sdk('ssm', 'listCommands'),
        Parameters: { 'CommandId.$': '$.command.commandId' },
        ResultSelector: { 'status.$': '$.Commands[0].Status', 'targets.$': '$.Commands[0].TargetCount', 'deliveryTimedOut.$': '$.Commands[0].DeliveryTimedOutCount' },
        ResultPath: '$.command.poll',
        Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 10, MaxAttempts: 3, BackoffRate: 2 }],
      },
    });
    pollHost.addCatch(onFailure('PollHost'), { errors: ['States.ALL'], resultPath: '$.failure' });

    const readOutput = new sfn.CustomState(scope, 'ReadHostOutput', {
      stateJson: {
        Type: 'Task',
        Comment: 'What the failed command printed (the tool\'s last lines, whether the upload was aborted) and its exit code',
        Resource: sdk('ssm', 'listCommandInvocations'),
        Parameters: { 'CommandId.$': '$.command.commandId', Details: true },
        ResultSelector: { 'invocations.$': '$.CommandInvocations' },
        ResultPath: '$.command.output',
        Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 10, MaxAttempts: 3, BackoffRate: 2 }],
      },
    });
    readOutput.addCatch(onFailure('ReadHostOutput'), { errors: ['States.ALL'], resultPath: '$.failure' });
    const invocation = '$.command.output.invocations[0]';
    const pluginOf = `${invocation}.CommandPlugins[0]`;
    const hostFailed = fail('Backup failed on host', 'BackupFailed',
      `States.Format('the physical {} backup of {} failed on {} ({}, exit {}): {}', $.plan.type, $.source, ${invocation}.InstanceId, ${invocation}.StatusDetails, ${pluginOf}.ResponseCode, ${pluginOf}.Output)`,
      'BackupOnHost');
    const hostUnreachable = fail('Host unreachable', 'HostUnreachable',
      "States.Format('the physical backup command for {} reached no host (SSM status {}, {} target(s), {} delivery time-out(s)): is the SSM agent running and the instance managed?', $.source, $.command.poll.status, $.command.poll.targets, $.command.poll.deliveryTimedOut)",
      'BackupOnHost');
    const hostUnreachableWithOutput = fail('Host did not answer', 'HostUnreachable',
      `States.Format('the physical backup command for {} did not run on {}: {}', $.source, ${invocation}.InstanceId, ${invocation}.StatusDetails)`, 'BackupOnHost');
    const failedOutcome = readOutput.next(new sfn.Choice(scope, 'Why?')
      .when(sfn.Condition.and(sfn.Condition.isPresent(`${invocation}.StatusDetails`),
        sfn.Condition.or(...['DeliveryTimedOut', 'Undeliverable', 'Terminated', 'InvalidPlatform', 'AccessDenied'].map((status) => sfn.Condition.stringEquals(`${invocation}.StatusDetails`, status)))),
      hostUnreachableWithOutput)
      .when(sfn.Condition.isPresent(`${pluginOf}.Output`), hostFailed)
      .otherwise(hostUnreachable));

    const verify = new sfn.CustomState(scope, 'Verify', {
      stateJson: {
        Type: 'Task',
        Comment: 'The physical verifier: the host\'s objects, the run\'s manifest, --prepare of the chain',
        Resource: `arn:${partition}:states:::ecs:runTask.waitForTaskToken`,
        HeartbeatSeconds: 300,
        TimeoutSeconds: 24 * 3600,
        Parameters: {
          Cluster: props.cluster.attrArn,
          TaskDefinition: this.verifyTask.taskDefinitionArn,
          LaunchType: 'FARGATE',
          NetworkConfiguration: network,
          Overrides: {
            ContainerOverrides: [{
              Name: 'PhysicalVerifier',
              Environment: [
                { Name: BINLOG_PHYSICAL_VERIFY_ENV.taskToken, 'Value.$': '$$.Task.Token' },
                { Name: BINLOG_PHYSICAL_VERIFY_ENV.source, 'Value.$': '$.source' },
                { Name: BINLOG_PHYSICAL_VERIFY_ENV.engine, 'Value.$': '$.engine' },
                { Name: BINLOG_PHYSICAL_VERIFY_ENV.tier, 'Value.$': '$.tier' },
                { Name: BINLOG_PHYSICAL_VERIFY_ENV.runId, 'Value.$': '$.run.runId' },
                { Name: BINLOG_PHYSICAL_VERIFY_ENV.type, 'Value.$': '$.plan.type' },
                { Name: BINLOG_PHYSICAL_VERIFY_ENV.prior, 'Value.$': '$.plan.prior' },
                { Name: BINLOG_PHYSICAL_VERIFY_ENV.retentionSeconds, 'Value.$': '$.retentionSeconds' },
              ],
            }],
          },
        },
        ResultSelector: { 'dump.$': '$.dump', 'verification.$': '$.verification' },
        ResultPath: '$.physicalRun',
      },
    });
    verify.addRetry({ errors: ['ECS.AmazonECSException'], interval: Duration.minutes(1), maxAttempts: 2, backoffRate: 2 });
    verify.addCatch(new sfn.Succeed(scope, 'Run already recorded'), { errors: ['AlreadyCommitted'], resultPath: '$.failure' });
    verify.addCatch(onFailure('Verify'), { errors: ['States.ALL'], resultPath: '$.failure' });
    const unpack = new sfn.Pass(scope, 'RunSummary', { comment: 'The run as Commit reads it: $.dump and $.verification', inputPath: '$.physicalRun.dump', resultPath: '$.dump' })
      .next(new sfn.Pass(scope, 'RunVerdict', { inputPath: '$.physicalRun.verification', resultPath: '$.verification' }));

    const hostDone = new sfn.Choice(scope, 'HostDone?')
      .when(sfn.Condition.or(...['Pending', 'InProgress', 'Cancelling'].map((status) => sfn.Condition.stringEquals('$.command.poll.status', status))), waitForHost)
      .when(sfn.Condition.and(sfn.Condition.stringEquals('$.command.poll.status', 'Success'), sfn.Condition.numberGreaterThan('$.command.poll.targets', 0)), verify)
      .when(sfn.Condition.or(sfn.Condition.numberEquals('$.command.poll.targets', 0), sfn.Condition.numberGreaterThan('$.command.poll.deliveryTimedOut', 0)), hostUnreachable)
      .otherwise(failedOutcome);
    waitForHost.next(pollHost).next(hostDone);
    verify.next(unpack).next(verdict);

    const nameRun = new sfn.Pass(scope, 'NameRun', {
      comment: 'The run id of the slot',
      parameters: { 'runId.$': RUN_ID_FROM_SCHEDULED_TIME, 'requestedAt.$': '$$.Execution.StartTime' },
      resultPath: '$.run',
    });
    const start = offsiteSeed(scope);
    start.next(nameRun).next(plan).next(sendCommand).next(waitForHost);
    return start;
  }
}

/** What a source's physical schedule sends (beside `source` and `scheduledTime`). */
export function binlogPhysicalRunInput(source: Source, type: PhysicalBackupType): Record<string, unknown> {
  const binlog = source.binlog as NonNullable<Source['binlog']>;
  const physical = binlog.physical as NonNullable<NonNullable<Source['binlog']>['physical']>;
  return {
    type,
    engine: source.engine,
    tier: source.tier.name,
    catalog: pitrCatalogName(source.name),
    retentionSeconds: String(source.tier.retentionSeconds),
    host: { targets: physicalHostTargets(physical) },
    physical: { tool: binlog.physicalTool, osUser: physical.osUser, dataDirectory: physical.dataDirectory },
    target: { subnets: source.network.subnetIds, securityGroups: source.network.securityGroupIds },
  };
}

type PhysicalHost = NonNullable<NonNullable<Source['binlog']>['physical']>;

export function physicalHostTargets(physical: PhysicalHost): { Key: string; Values: string[] }[] {
  return 'instanceId' in physical.host
    ? [{ Key: 'InstanceIds', Values: [physical.host.instanceId] }]
    : [{ Key: `tag:${physical.host.tag.key}`, Values: [physical.host.tag.value] }];
}

/** SendCommand on each source's host: its instance by id, or the instances carrying its tag. */
export function physicalSendCommandStatements(stack: Stack, sources: readonly Source[]): iam.PolicyStatement[] {
  const hosts = sources.flatMap((source) => (source.binlog?.physical ? [source.binlog.physical.host] : []));
  const ids = hosts.flatMap((host) => ('instanceId' in host ? [host.instanceId] : []));
  const instanceArn = (id: string) => id.startsWith('mi-')
    ? stack.formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: id })
    : stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: id });
  const statements: iam.PolicyStatement[] = [];
  if (ids.length > 0) statements.push(new iam.PolicyStatement({ sid: 'BackUpPhysicalHosts', actions: ['ssm:SendCommand'], resources: [...new Set(ids)].map(instanceArn) }));
  hosts.forEach((host, index) => {
    if (!('tag' in host)) return;
    statements.push(new iam.PolicyStatement({
      sid: `BackUpPhysicalHostsByTag${index}`,
      actions: ['ssm:SendCommand'],
      resources: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' }), stack.formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: '*' })],
      conditions: { StringEquals: { [`ssm:resourceTag/${host.tag.key}`]: host.tag.value } },
    }));
  });
  return statements;
}
