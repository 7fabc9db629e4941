/**
 * The RDS/Aurora point-in-time drill (issue 14): one state machine per source whose native
 * recovery Lifeboat governs (`Source.rds`), `<appName>-native-drill-<source>`, on the tier's
 * drill cadence. It restores the source to a point into a throwaway instance (or cluster and
 * instance), waits until it is available, has a Fargate checker connect to it
 * (worker/native-drill-main.ts, lib/rds/native-drill-check.ts), and deletes what it made — on
 * every path: every state after the restore call catches States.ALL into the deletion states,
 * which then fail the execution with the original error (and tell the alarm topic).
 *
 * The target alternates between "latest" and a random second of the window, chosen in the
 * definition from the execution's start time (the parity of day + month: consecutive daily,
 * monthly and quarterly drills alternate), the random second drawn in the day of
 * LatestRestorableTime and kept only inside [EarliestRestorableTime, LatestRestorableTime)
 * (a few draws; none inside: latest).
 *
 * `NativeDrillJanitor` (same file) deletes drill instances and clusters left behind (tagged
 * `lifeboat:drill`, older than a few hours): lambdas/native-drill-janitor/handler.ts.
 */
import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaNodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import * as path from 'node:path';
import type { RdsNativeSource, Source } from '../config/types';
import { DRILLS_PREFIX, sourcePrefix } from '../domain/layout';
import { DRILL_CREATED_TAG, DRILL_TAG, drillIdentifierPrefix, NATIVE_DRILL_ENV } from '../rds/drill-target';
import { grantPublishTo } from './alarm-topic';
import { loggedStateMachine, startExecutionSchedule } from './common';
import { drillScheduleFor } from './drill-schedules';
import { DRILL_FAMILY_PREFIX } from './drill-task';
import { lifeboatTaskRole } from './dump-task';
import { acknowledgeWildcardResource } from './nag';

/** The state machine's name: `<appName>-native-drill-<source>`. */
export function nativeDrillStateMachineName(appName: string, source: string): string {
  return `${appName}-native-drill-${source}`;
}

/** Seconds between two looks at the restored instance. */
export const NATIVE_DRILL_POLL_SECONDS = 30;

/**
 * How many looks the wait loop takes before it gives up (`DrillTimeout`): the tier's RTO, at
 * least an hour (a restore of a small instance takes 10-20 minutes; the RTO check itself is the
 * checker's, against the measured time).
 */
export function nativeDrillMaxPolls(tier: { readonly rtoSeconds: number }): number {
  return Math.ceil(Math.max(3600, tier.rtoSeconds) / NATIVE_DRILL_POLL_SECONDS);
}

/** Status values after which a restored instance or cluster will never become available. */
export const NATIVE_DRILL_DEAD_STATUSES = ['failed', 'incompatible-restore', 'incompatible-parameters', 'incompatible-network', 'storage-full', 'inaccessible-encryption-credentials', 'deleting'];

export interface NativeDrillProps {
  readonly appName: string;
  /** A source with `rds` (its native point-in-time recovery). */
  readonly source: Source;
  readonly cluster: ecs.CfnCluster;
  /** The worker image: its `/app/native-drill.js` is the checker. */
  readonly image: ecs.ContainerImage;
  /** The primary bucket: the latest dump's manifest is read from it, the report written to it. */
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly schedules: { readonly group: scheduler.IScheduleGroup; readonly deadLetterQueue: sqs.IQueue };
}

/** Aurora's engines; a cluster of any other engine is a Multi-AZ DB cluster (no CreateDBInstance). */
const rdsResource = (stack: Stack, type: string, name: string, region?: string) => stack.formatArn({
  service: 'rds', resource: type, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME, ...(region ? { region } : {}),
});

export class NativeDrill extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly taskRole: iam.IRole;
  public readonly schedule: scheduler.Schedule;
  private readonly sourceName: string;

  constructor(scope: Construct, id: string, props: NativeDrillProps) {
    super(scope, id);
    const { source } = props;
    this.sourceName = source.name;
    const rds = source.rds;
    if (!rds) throw new Error(`NativeDrill: source ${source.name} has no rds (an RDS/Aurora source's native recovery)`);
    const stack = Stack.of(this);
    const name = nativeDrillStateMachineName(props.appName, source.name);

    // --- the checker task ----------------------------------------------------------------
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      family: `${DRILL_FAMILY_PREFIX}${source.name}-native`,
      taskRole: lifeboatTaskRole(this, 'TaskRole', 'drill', `Lifeboat: the RDS point-in-time drill checker of ${source.name}`),
      executionRole: lifeboatTaskRole(this, 'ExecutionRole', 'drill', `Lifeboat: starts the RDS point-in-time drill checker of ${source.name}`),
      cpu: 1024,
      memoryLimitMiB: 2048,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    this.taskRole = this.taskDefinition.taskRole;
    const logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/lifeboat/drill/${source.name}-native`,
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const secret = secretsmanager.Secret.fromSecretCompleteArn(this, 'Password', source.connection.passwordSecretArn);
    this.taskDefinition.addContainer('Drill', {
      image: props.image,
      entryPoint: ['node', '--enable-source-maps', '/app/native-drill.js'],
      essential: true,
      readonlyRootFilesystem: true,
      stopTimeout: Duration.seconds(30),
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'native-drill' }),
      environment: {
        [NATIVE_DRILL_ENV.bucket]: props.bucket.bucketName,
        // The resolved source: identifiers, tier, drill checks; the password is an ARN.
        [NATIVE_DRILL_ENV.sourceConfig]: JSON.stringify(source),
      },
      // The backup user's password, injected by ECS as the dump task's is; never in the definition.
      secrets: { [NATIVE_DRILL_ENV.password]: ecs.Secret.fromSecretsManager(secret) },
    });
    const runs = props.bucket.arnForObjects(`${sourcePrefix(source.name)}*`);
    const drills = props.bucket.arnForObjects(`${DRILLS_PREFIX}${source.name}/*`);
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadOwnRuns', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: [runs] }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ListOwnRuns', actions: ['s3:ListBucket'], resources: [props.bucket.bucketArn],
      conditions: { StringLike: { 's3:prefix': [`${sourcePrefix(source.name)}*`] } },
    }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'WriteOwnDrillReports', actions: ['s3:PutObject'], resources: [drills] }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'BucketKey', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [props.bucketKey.keyArn] }));
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'NeverDelete', effect: iam.Effect.DENY,
      actions: ['s3:DeleteObject', 's3:DeleteObjectVersion', 's3:BypassGovernanceRetention', 's3:PutLifecycleConfiguration', 's3:PutBucketPolicy'],
      resources: [props.bucket.bucketArn, props.bucket.arnForObjects('*')],
    }));
    const machineArn = stack.formatArn({ service: 'states', resource: 'stateMachine', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    this.taskRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'AnswerTaskToken', actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'], resources: [machineArn],
    }));

    // --- the state machine ---------------------------------------------------------------
    this.stateMachine = loggedStateMachine(this, {
      name,
      definition: this.definition(props, rds),
      timeout: Duration.seconds(3 * Math.max(3600, source.tier.rtoSeconds) + 3600),
    });
    this.grantRds(rds);
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({
      actions: ['ecs:RunTask'],
      resources: [stack.formatArn({ service: 'ecs', resource: 'task-definition', resourceName: `${this.taskDefinition.family}:*`, arnFormat: ArnFormat.SLASH_RESOURCE_NAME })],
      conditions: { ArnEquals: { 'ecs:cluster': props.cluster.attrArn } },
    }));
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({
      actions: ['iam:PassRole'],
      resources: [this.taskRole.roleArn, this.taskDefinition.obtainExecutionRole().roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    }));
    grantPublishTo(props.alarmTopic, this.stateMachine);

    this.schedule = startExecutionSchedule(this, 'Schedule', {
      description: `Lifeboat: RDS point-in-time drill of ${source.name} (${source.tier.name})`,
      group: props.schedules.group,
      spec: drillScheduleFor(source.tier),
      window: Duration.minutes(15),
      stateMachine: this.stateMachine,
      source: source.name,
      input: {},
      deadLetterQueue: props.schedules.deadLetterQueue,
      retryAttempts: undefined,
      maxEventAge: Duration.hours(1),
    });

    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds only non-secret values (bucket name, the resolved source with its password ARN); the password is injected by ECS from Secrets Manager.',
    });
    if (props.image instanceof ecs.AssetImage) {
      acknowledgeWildcardResource(this.taskDefinition.obtainExecutionRole(), '*',
        'ecr:GetAuthorizationToken, which ECS needs to pull the worker image, has no resource-level permissions; the pull itself is limited to the image repository.');
    }
    acknowledgeWildcardResource(this.taskRole, runs, 'The checker reads the manifests of its own source\'s runs, whose keys are made at run time; reads only.');
    acknowledgeWildcardResource(this.taskRole, drills, 'The checker writes its report under drills/<source>/<drillId>/, a key made at run time; deletes are denied.');
    acknowledgeWildcardResource(this.stateMachine.role, '*', 'Step Functions log delivery and X-Ray APIs, and RDS Describe calls without an identifier, do not support resource-level permissions.');
  }

  /**
   * Least privilege: Describe on the source and the drill's own resources; restore and create
   * only into `lbd-<source>-*` with the drill tag in the request (aws:RequestTag), from the
   * source; delete only `lbd-<source>-*` carrying the drill tag.
   */
  private grantRds(rds: RdsNativeSource): void {
    const stack = Stack.of(this);
    const region = rds.region;
    const prefix = drillIdentifierPrefix(this.sourceName);
    const drillDb = rdsResource(stack, 'db', `${prefix}*`, region);
    const drillCluster = rdsResource(stack, 'cluster', `${prefix}*`, region);
    const sourceArn = rdsResource(stack, rds.kind === 'instance' ? 'db' : 'cluster', rds.identifier, region);
    const anyOf = (type: string) => rdsResource(stack, type, '*', region);
    const add = (statement: iam.PolicyStatementProps) => this.stateMachine.addToRolePolicy(new iam.PolicyStatement(statement));
    add({
      sid: 'DescribeSourceAndDrill',
      actions: ['rds:DescribeDBInstances', 'rds:DescribeDBClusters', 'rds:DescribeDBInstanceAutomatedBackups'],
      resources: [sourceArn, drillDb, drillCluster, anyOf('db')],
    });
    const tagged = { StringEquals: { [`aws:RequestTag/${DRILL_TAG}`]: this.sourceName } };
    add({
      sid: 'RestoreIntoDrill',
      actions: rds.kind === 'instance' ? ['rds:RestoreDBInstanceToPointInTime'] : ['rds:RestoreDBClusterToPointInTime', 'rds:CreateDBInstance'],
      resources: [rds.kind === 'instance' ? drillDb : drillCluster, ...(rds.kind === 'instance' ? [] : [drillDb])],
      conditions: tagged,
    });
    add({
      sid: 'RestoreFromSource',
      actions: rds.kind === 'instance' ? ['rds:RestoreDBInstanceToPointInTime'] : ['rds:RestoreDBClusterToPointInTime'],
      resources: [sourceArn],
    });
    add({
      sid: 'RestoreWithGroups',
      actions: rds.kind === 'instance' ? ['rds:RestoreDBInstanceToPointInTime'] : ['rds:RestoreDBClusterToPointInTime', 'rds:CreateDBInstance'],
      resources: [anyOf('subgrp'), anyOf('og'), anyOf('pg'), anyOf('cluster-pg'), ...(rds.kind === 'instance' ? [] : [drillCluster])],
    });
    add({
      sid: 'TagDrillOnCreate',
      actions: ['rds:AddTagsToResource'],
      resources: [drillDb, drillCluster],
      conditions: tagged,
    });
    add({
      sid: 'DeleteOnlyDrill',
      actions: rds.kind === 'instance' ? ['rds:DeleteDBInstance'] : ['rds:DeleteDBInstance', 'rds:DeleteDBCluster'],
      resources: rds.kind === 'instance' ? [drillDb] : [drillDb, drillCluster],
      conditions: { StringEquals: { [`aws:ResourceTag/${DRILL_TAG}`]: this.sourceName } },
    });
    for (const resource of [drillDb, drillCluster, anyOf('db'), anyOf('subgrp'), anyOf('og'), anyOf('pg'), anyOf('cluster-pg')]) {
      acknowledgeWildcardResource(this.stateMachine.role, resource,
        'The drill instance and cluster are named lbd-<source>-<id> at run time (tagged lifeboat:drill, enforced by aws:RequestTag / aws:ResourceTag); restores with the default option and parameter groups name no group, so RDS evaluates the groups by wildcard.');
    }
  }

  private definition(props: NativeDrillProps, rds: RdsNativeSource): sfn.IChainable {
    const scope = new Construct(this, 'States');
    const partition = Stack.of(this).partition;
    const source = props.source;
    const prefix = drillIdentifierPrefix(source.name);
    const cluster = rds.kind === 'cluster';
    // AWS SDK integrations (Step Functions developer guide, "Learning to use AWS service SDK
    // integrations in Step Functions"): parameters in PascalCase, errors `<Service>.<Name>` with an
    // `Exception` suffix even where the API reference's name has none. The names are the AWS SDK
    // for Java v2's, which writes `DB` as `Db` (DbInstanceIdentifier, DbInstances, and
    // Rds.DbInstanceNotFoundException for DBInstanceNotFound), as published aws-sdk:rds state
    // machines use them; local/runner.ts maps them to the JavaScript SDK's and back.
    const sdk = (id: string, action: string, parameters: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      new sfn.CustomState(scope, id, {
        stateJson: { Type: 'Task', Resource: `arn:${partition}:states:::aws-sdk:rds:${action}`, Parameters: parameters, ...extra },
      });

    // --- failure: tell the alarm topic, then fail with the original error ---------------
    const failed = new sfn.Fail(scope, 'NativeDrillFailed', { errorPath: '$.failure.Error', causePath: '$.failure.Cause' });
    const notify = new tasks.SnsPublish(scope, 'NotifyNativeDrillFailure', {
      topic: props.alarmTopic,
      subject: sfn.JsonPath.format('Lifeboat: RDS point-in-time drill of {} failed', source.name),
      message: sfn.TaskInput.fromJsonPathAt('States.Format(\'RDS point-in-time drill {} of {} ({} {}) failed: {}: {} (drill identifier {}; deleted: {})\', $$.Execution.Name, $.source, $.failedState, $.sourceIdentifier, $.failure.Error, $.failure.Cause, $.drillId, $.deleted)'),
      resultPath: sfn.JsonPath.DISCARD,
    });
    notify.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.notifyError' });
    notify.next(failed);

    // --- deletion: on every path after the restore call ---------------------------------
    const drilled = new sfn.Succeed(scope, 'Drilled');
    // A drill that passed but whose instance could not be deleted fails too: it is still costing
    // instance hours (the janitor deletes it after its maximum age).
    const notDeleted = new sfn.Pass(scope, 'DrillNotDeleted', {
      parameters: {
        Error: 'DrillCleanupFailed',
        'Cause.$': "States.Format('the drill {} of {} passed but could not be deleted: {}: {} (the drill janitor deletes it once older than its maximum age)', $.drillId, $.source, $.cleanupError.Error, $.cleanupError.Cause)",
      },
      resultPath: '$.failure',
    }).next(new sfn.Pass(scope, 'DeleteDrill failed', { result: sfn.Result.fromString('DeleteDrill'), resultPath: '$.failedState' })).next(notify);
    const done = new sfn.Choice(scope, 'Drill failed?')
      .when(sfn.Condition.isPresent('$.failure'), notify)
      .when(sfn.Condition.stringEquals('$.deleted', 'no'), notDeleted)
      .otherwise(drilled);
    // `deleted` is 'yes' or 'no', not a boolean: a Pass's Result of false is dropped by the local interpreter (aws-local-stepfunctions 3.0.0).
    const deleted = new sfn.Pass(scope, 'Deleted', { result: sfn.Result.fromString('yes'), resultPath: '$.deleted' }).next(done);
    const deleteCluster = cluster
      ? sdk('DeleteDrillCluster', 'deleteDBCluster', { 'DbClusterIdentifier.$': '$.drillId', SkipFinalSnapshot: true }, { ResultPath: null })
      : undefined;
    const deleteInstance = sdk('DeleteDrillInstance', 'deleteDBInstance', {
      'DbInstanceIdentifier.$': '$.drillInstanceId', SkipFinalSnapshot: true, DeleteAutomatedBackups: true,
    }, { ResultPath: null });
    // The deletion continues whatever a delete answers (not found: never created, or gone); an
    // unexpected error is kept for the message and the janitor removes what is left.
    const cleanupFailed = (id: string) => new sfn.Pass(scope, id, { result: sfn.Result.fromString('no'), resultPath: '$.deleted' });
    const multiAz = cluster ? '$.sourceDb.db.DbClusterInstanceClass' : undefined;
    // Only what exists is deleted: a restore that failed made nothing, and a delete of a name that
    // does not exist is AccessDenied, not "not found" (the delete statements condition on the
    // resource's drill tag, which a missing resource does not have).
    const findInstance = sdk('FindDrillInstance', 'describeDBInstances', { 'DbInstanceIdentifier.$': '$.drillInstanceId' }, { ResultPath: null });
    const findCluster = deleteCluster
      ? sdk('FindDrillCluster', 'describeDBClusters', { 'DbClusterIdentifier.$': '$.drillId' }, { ResultPath: null })
      : undefined;
    findInstance.next(deleteInstance);
    findInstance.addCatch(findCluster ?? deleted, { errors: ['Rds.DbInstanceNotFoundException'], resultPath: '$.cleanupError' });
    findInstance.addCatch(deleteInstance, { errors: ['States.ALL'], resultPath: '$.cleanupError' });
    if (deleteCluster && findCluster) {
      // A Multi-AZ DB cluster has no instance of Lifeboat's: its instances go with the cluster.
      findCluster.next(deleteCluster);
      findCluster.addCatch(deleted, { errors: ['Rds.DbClusterNotFoundException'], resultPath: '$.cleanupError' });
      findCluster.addCatch(deleteCluster, { errors: ['States.ALL'], resultPath: '$.cleanupError' });
      const afterInstance = new sfn.Pass(scope, 'InstanceDeleted').next(deleteCluster);
      deleteInstance.addCatch(findCluster, { errors: ['Rds.DbInstanceNotFoundException'], resultPath: '$.cleanupError' });
      deleteInstance.addCatch(cleanupFailed('InstanceNotDeleted').next(findCluster), { errors: ['States.ALL'], resultPath: '$.cleanupError' });
      deleteInstance.next(afterInstance);
      deleteCluster.addCatch(deleted, { errors: ['Rds.DbClusterNotFoundException'], resultPath: '$.cleanupError' });
      deleteCluster.addCatch(cleanupFailed('ClusterNotDeleted').next(done), { errors: ['States.ALL'], resultPath: '$.cleanupError' });
      deleteCluster.next(deleted);
    } else {
      deleteInstance.addCatch(deleted, { errors: ['Rds.DbInstanceNotFoundException'], resultPath: '$.cleanupError' });
      deleteInstance.addCatch(cleanupFailed('InstanceNotDeleted').next(done), { errors: ['States.ALL'], resultPath: '$.cleanupError' });
      deleteInstance.next(deleted);
    }
    const deletion: sfn.IChainable = multiAz && findCluster
      ? new sfn.Choice(scope, 'Delete what?').when(sfn.Condition.isPresent(multiAz), findCluster).otherwise(findInstance)
      : findInstance;
    const intoDeletion = (state: string) => new sfn.Pass(scope, `${state} failed`, { result: sfn.Result.fromString(state), resultPath: '$.failedState' }).next(deletion);
    const catchIntoDeletion = (state: sfn.CustomState | sfn.Pass | sfn.Wait, name: string) => {
      if (state instanceof sfn.CustomState) state.addCatch(intoDeletion(name), { errors: ['States.ALL'], resultPath: '$.failure' });
    };
    const beforeRestore = (name: string) => new sfn.Pass(scope, `${name} failed`, { result: sfn.Result.fromString(name), resultPath: '$.failedState' }).next(notify);

    // --- the source: its class, subnet group and window ----------------------------------
    const start = new sfn.Pass(scope, 'NameDrill', {
      parameters: {
        'source.$': '$.source',
        sourceIdentifier: rds.identifier,
        'drillId.$': `States.Format('${prefix}{}', States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 0))`,
        'created.$': '$$.Execution.StartTime',
        deleted: 'no',
      },
    });
    const nameInstance = new sfn.Pass(scope, 'NameDrillInstance', {
      parameters: {
        'source.$': '$.source', 'sourceIdentifier.$': '$.sourceIdentifier', 'drillId.$': '$.drillId', 'created.$': '$.created', 'deleted.$': '$.deleted',
        // Aurora: the cluster is the drill id, its one instance the id with "-1".
        'drillInstanceId.$': cluster ? "States.Format('{}-1', $.drillId)" : '$.drillId',
      },
    });

    const describe = cluster
      ? sdk('DescribeSource', 'describeDBClusters', { DbClusterIdentifier: rds.identifier }, {
        ResultSelector: {
          'subnetGroup.$': '$.DbClusters[0].DbSubnetGroup',
          'engine.$': '$.DbClusters[0].Engine',
          // Whatever may be absent (the window while RDS has none, DbClusterInstanceClass of an
          // Aurora cluster) is read through the whole cluster: a path to a missing field fails the
          // execution with States.Runtime, which no Catch takes.
          'db.$': '$.DbClusters[0]',
        },
        ResultPath: '$.sourceDb',
      })
      : sdk('DescribeSource', 'describeDBInstances', { DbInstanceIdentifier: rds.identifier }, {
        ResultSelector: {
          'instanceClass.$': '$.DbInstances[0].DbInstanceClass',
          'subnetGroup.$': '$.DbInstances[0].DbSubnetGroup.DbSubnetGroupName',
          // LatestRestorableTime is absent with automated backups off: read through the whole instance.
          'db.$': '$.DbInstances[0]',
        },
        ResultPath: '$.sourceDb',
      });
    describe.addCatch(beforeRestore('DescribeSource'), { errors: ['States.ALL'], resultPath: '$.failure' });
    const sourceFacts: sfn.IChainable[] = [describe];
    if (!cluster) {
      const window = sdk('DescribeWindow', 'describeDBInstanceAutomatedBackups', { DbInstanceIdentifier: rds.identifier }, {
        ResultSelector: { 'backups.$': '$.DbInstanceAutomatedBackups' },
        ResultPath: '$.window',
      });
      window.addCatch(beforeRestore('DescribeWindow'), { errors: ['States.ALL'], resultPath: '$.failure' });
      sourceFacts.push(window);
    }
    // The class: the config's, else the source's (for a cluster, one of its instances').
    const classOf = rds.drill.instanceClass
      ? new sfn.Pass(scope, 'DrillClass', { result: sfn.Result.fromObject({ value: rds.drill.instanceClass }), resultPath: '$.drillClass' })
      : cluster
        ? sdk('DrillClass', 'describeDBInstances', { Filters: [{ Name: 'db-cluster-id', Values: [rds.identifier] }] }, {
          ResultSelector: { 'value.$': '$.DbInstances[0].DbInstanceClass' }, ResultPath: '$.drillClass',
        })
        : new sfn.Pass(scope, 'DrillClass', { parameters: { 'value.$': '$.sourceDb.instanceClass' }, resultPath: '$.drillClass' });
    if (classOf instanceof sfn.CustomState) classOf.addCatch(beforeRestore('DrillClass'), { errors: ['States.ALL'], resultPath: '$.failure' });
    const subnetGroup = new sfn.Pass(scope, 'DrillNetwork', {
      parameters: rds.drill.subnetGroup ? { subnetGroup: rds.drill.subnetGroup } : { 'subnetGroup.$': '$.sourceDb.subnetGroup' },
      resultPath: '$.drillNetwork',
    });

    // --- the target: alternately latest and a random second --------------------------------
    const day = (d: number) => `*-${String(d).padStart(2, '0')}T*`;
    const month = (m: number) => `*-${String(m).padStart(2, '0')}-*`;
    const anyOf = (patterns: string[]) => sfn.Condition.or(...patterns.map((pattern) => sfn.Condition.stringMatches('$$.Execution.StartTime', pattern)));
    const dayEven = anyOf(Array.from({ length: 15 }, (_, i) => day(2 * i + 2)));
    const monthEven = anyOf(Array.from({ length: 6 }, (_, i) => month(2 * i + 2)));
    const even = sfn.Condition.or(sfn.Condition.and(dayEven, monthEven), sfn.Condition.and(sfn.Condition.not(dayEven), sfn.Condition.not(monthEven)));
    const latestTarget = new sfn.Pass(scope, 'TargetLatest', { result: sfn.Result.fromObject({ kind: 'latest' }), resultPath: '$.target' });
    const earliestPath = cluster ? '$.sourceDb.db.EarliestRestorableTime' : '$.window.backups[0].RestoreWindow.EarliestTime';
    const latestPath = '$.sourceDb.db.LatestRestorableTime';
    const digits = (n: number) => `States.Array(${Array.from({ length: n }, (_, i) => `'${String(i).padStart(2, '0')}'`).join(', ')})`;
    const draw = new sfn.Pass(scope, 'DrawSecond', {
      parameters: {
        'time.$': `States.Format('{}T{}:{}:{}Z', States.ArrayGetItem(States.StringSplit(${latestPath}, 'T'), 0), States.ArrayGetItem(${digits(24)}, States.MathRandom(0, 24)), States.ArrayGetItem(${digits(60)}, States.MathRandom(0, 60)), States.ArrayGetItem(${digits(60)}, States.MathRandom(0, 60)))`,
      },
      resultPath: '$.candidate',
    });
    const count = new sfn.Pass(scope, 'CountDraw', { parameters: { 'value.$': 'States.MathAdd($.drawCount.value, 1)' }, resultPath: '$.drawCount' });
    const timeTarget = new sfn.Pass(scope, 'TargetTime', { parameters: { kind: 'time', 'time.$': '$.candidate.time' }, resultPath: '$.target' });
    const firstDraw = new sfn.Pass(scope, 'StartDraws', { result: sfn.Result.fromObject({ value: 0 }), resultPath: '$.drawCount' });
    const inWindow = new sfn.Choice(scope, 'Inside the window?')
      .when(sfn.Condition.and(
        sfn.Condition.isPresent(earliestPath),
        sfn.Condition.timestampGreaterThanEqualsJsonPath('$.candidate.time', earliestPath),
        sfn.Condition.timestampLessThanJsonPath('$.candidate.time', latestPath),
      ), timeTarget)
      .when(sfn.Condition.numberGreaterThanEquals('$.drawCount.value', 20), latestTarget)
      .otherwise(count);
    count.next(draw);
    draw.next(inWindow);
    const chooseTarget = new sfn.Choice(scope, 'Latest or a second?')
      .when(sfn.Condition.and(even, sfn.Condition.isPresent(latestPath)), firstDraw.next(draw))
      .otherwise(latestTarget);

    // --- the restore call ------------------------------------------------------------------
    const restoreStart = new sfn.Pass(scope, 'RestoreStarted', { parameters: { 'at.$': '$$.State.EnteredTime' }, resultPath: '$.restoreStarted' });
    const tags = [
      { Key: DRILL_TAG, Value: source.name },
      { Key: DRILL_CREATED_TAG, 'Value.$': '$.created' },
    ];
    const securityGroups = rds.drill.securityGroupIds.length > 0 ? rds.drill.securityGroupIds : source.network.securityGroupIds;
    const restoreParams = (latest: boolean): Record<string, unknown> => (cluster
      ? {
        SourceDbClusterIdentifier: rds.identifier,
        'DbClusterIdentifier.$': '$.drillId',
        ...(latest ? { UseLatestRestorableTime: true } : { 'RestoreToTime.$': '$.target.time' }),
        'DbSubnetGroupName.$': '$.drillNetwork.subnetGroup',
        VpcSecurityGroupIds: securityGroups,
        DeletionProtection: false,
        Tags: tags,
      }
      : {
        SourceDbInstanceIdentifier: rds.identifier,
        'TargetDbInstanceIdentifier.$': '$.drillId',
        ...(latest ? { UseLatestRestorableTime: true } : { 'RestoreTime.$': '$.target.time' }),
        'DbInstanceClass.$': '$.drillClass.value',
        'DbSubnetGroupName.$': '$.drillNetwork.subnetGroup',
        VpcSecurityGroupIds: securityGroups,
        PubliclyAccessible: false,
        MultiAZ: false,
        DeletionProtection: false,
        Tags: tags,
      });
    const action = cluster ? 'restoreDBClusterToPointInTime' : 'restoreDBInstanceToPointInTime';
    const restoreLatest = sdk('RestoreLatest', action, restoreParams(true), { ResultPath: null });
    const restoreTime = sdk('RestoreToTime', action, restoreParams(false), { ResultPath: null });
    const multiAzRestoreLatest = cluster ? sdk('RestoreMultiAzLatest', action, { ...restoreParams(true), 'DbClusterInstanceClass.$': '$.drillClass.value' }, { ResultPath: null }) : undefined;
    const multiAzRestoreTime = cluster ? sdk('RestoreMultiAzToTime', action, { ...restoreParams(false), 'DbClusterInstanceClass.$': '$.drillClass.value' }, { ResultPath: null }) : undefined;
    const restoreStates = [restoreLatest, restoreTime, multiAzRestoreLatest, multiAzRestoreTime].filter((s): s is sfn.CustomState => s !== undefined);
    // A restore API error may still have left something: deletion (idempotent) then fail.
    for (const state of restoreStates) catchIntoDeletion(state, state.stateId);

    // --- wait until available ----------------------------------------------------------------
    const maxPolls = nativeDrillMaxPolls(source.tier);
    const polls = new sfn.Pass(scope, 'StartPolls', { result: sfn.Result.fromObject({ value: 0 }), resultPath: '$.polls' });
    const wait = new sfn.Wait(scope, 'WaitForDrill', { time: sfn.WaitTime.duration(Duration.seconds(NATIVE_DRILL_POLL_SECONDS)) });
    const describeDrill = (id: string, multi: boolean) => (multi
      ? sdk(id, 'describeDBClusters', { 'DbClusterIdentifier.$': '$.drillId' }, {
        ResultSelector: { 'status.$': '$.DbClusters[0].Status', 'db.$': '$.DbClusters[0]' },
        ResultPath: '$.drillDb',
      })
      : sdk(id, 'describeDBInstances', { 'DbInstanceIdentifier.$': '$.drillInstanceId' }, {
        // RDS gives no Endpoint while the instance is creating: read it through the whole instance once available.
        ResultSelector: { 'status.$': '$.DbInstances[0].DbInstanceStatus', 'db.$': '$.DbInstances[0]' },
        ResultPath: '$.drillDb',
      }));
    const lookInstance = describeDrill('DescribeDrill', false);
    const lookCluster = cluster ? describeDrill('DescribeDrillCluster', true) : undefined;
    for (const state of [lookInstance, lookCluster]) if (state) catchIntoDeletion(state, state.stateId);
    const timedOut = new sfn.Pass(scope, 'DrillTimedOut', {
      parameters: {
        Error: 'DrillTimeout',
        'Cause.$': `States.Format('the drill instance {} was not available after ${maxPolls} looks ${NATIVE_DRILL_POLL_SECONDS}s apart (the tier\\'s RTO is ${source.tier.rtoSeconds}s; last status {})', $.drillInstanceId, $.drillDb.status)`,
      },
      resultPath: '$.failure',
    });
    const timedOutNamed = new sfn.Pass(scope, 'WaitForDrill timed out', { result: sfn.Result.fromString('WaitForDrill'), resultPath: '$.failedState' });
    timedOut.next(timedOutNamed).next(deletion);
    const dead = new sfn.Pass(scope, 'DrillDied', {
      parameters: { Error: 'RestoreFailed', 'Cause.$': "States.Format('the drill instance {} went to status {}: it will never be available', $.drillInstanceId, $.drillDb.status)" },
      resultPath: '$.failure',
    });
    const deadNamed = new sfn.Pass(scope, 'WaitForDrill died', { result: sfn.Result.fromString('WaitForDrill'), resultPath: '$.failedState' });
    dead.next(deadNamed).next(deletion);
    const nextPoll = new sfn.Pass(scope, 'CountPoll', { parameters: { 'value.$': 'States.MathAdd($.polls.value, 1)' }, resultPath: '$.polls' });
    const endpoint = new sfn.Pass(scope, 'DrillEndpoint', {
      parameters: { 'host.$': '$.drillDb.db.Endpoint.Address', 'port.$': '$.drillDb.db.Endpoint.Port' }, resultPath: '$.drillEndpoint',
    });
    const clusterEndpoint = cluster ? new sfn.Pass(scope, 'DrillClusterEndpoint', {
      parameters: { 'host.$': '$.drillDb.db.Endpoint', 'port.$': '$.drillDb.db.Port' }, resultPath: '$.drillEndpoint',
    }) : undefined;

    // --- the checker --------------------------------------------------------------------------
    const checker = new sfn.CustomState(scope, 'CheckDrill', {
      stateJson: {
        Type: 'Task',
        Comment: 'The checker connects to the restored instance, checks tables, drill SQL and reads every table once, writes the report and answers the task token',
        Resource: `arn:${partition}:states:::ecs:runTask.waitForTaskToken`,
        HeartbeatSeconds: 300,
        TimeoutSeconds: Math.max(3600, 2 * source.tier.rtoSeconds),
        Parameters: {
          Cluster: props.cluster.attrArn,
          TaskDefinition: this.taskDefinition.taskDefinitionArn,
          LaunchType: 'FARGATE',
          PropagateTags: 'TASK_DEFINITION',
          NetworkConfiguration: {
            AwsvpcConfiguration: { Subnets: source.network.subnetIds, SecurityGroups: source.network.securityGroupIds, AssignPublicIp: 'DISABLED' },
          },
          Overrides: {
            ContainerOverrides: [{
              Name: 'Drill',
              Environment: [
                { Name: NATIVE_DRILL_ENV.taskToken, 'Value.$': '$$.Task.Token' },
                { Name: NATIVE_DRILL_ENV.host, 'Value.$': '$.drillEndpoint.host' },
                { Name: NATIVE_DRILL_ENV.port, 'Value.$': 'States.Format(\'{}\', $.drillEndpoint.port)' },
                { Name: NATIVE_DRILL_ENV.target, 'Value.$': 'States.JsonToString($.target)' },
                { Name: NATIVE_DRILL_ENV.restoreStartedAt, 'Value.$': '$.restoreStarted.at' },
                { Name: NATIVE_DRILL_ENV.drillIdentifier, 'Value.$': '$.drillId' },
              ],
            }],
          },
        },
        ResultPath: '$.check',
      },
    });
    checker.addRetry({ errors: ['ECS.AmazonECSException'], interval: Duration.minutes(1), maxAttempts: 2, backoffRate: 2 });
    catchIntoDeletion(checker, 'CheckDrill');
    checker.next(deletion);
    endpoint.next(checker);
    clusterEndpoint?.next(checker);

    const statusChoice = (id: string, ready: sfn.IChainable) => new sfn.Choice(scope, id)
      .when(sfn.Condition.stringEquals('$.drillDb.status', 'available'), ready)
      .when(sfn.Condition.or(...NATIVE_DRILL_DEAD_STATUSES.map((status) => sfn.Condition.stringEquals('$.drillDb.status', status))), dead)
      .when(sfn.Condition.numberGreaterThanEquals('$.polls.value', maxPolls - 1), timedOut)
      .otherwise(nextPoll);
    const afterLook = statusChoice('Drill available?', endpoint);
    lookInstance.next(afterLook);
    nextPoll.next(wait);
    if (lookCluster && clusterEndpoint && multiAz) {
      // A Multi-AZ DB cluster is looked at as a cluster (its instances are RDS's own).
      lookCluster.next(statusChoice('Drill cluster available?', clusterEndpoint));
      wait.next(new sfn.Choice(scope, 'Look at what?').when(sfn.Condition.isPresent(multiAz), lookCluster).otherwise(lookInstance));
    } else {
      wait.next(lookInstance);
    }
    polls.next(wait);

    // Aurora: the cluster, then its instance (of the drill class), tagged too.
    let afterRestore: sfn.IChainable = polls;
    if (cluster) {
      const create = sdk('CreateDrillInstance', 'createDBInstance', {
        'DbClusterIdentifier.$': '$.drillId',
        'DbInstanceIdentifier.$': '$.drillInstanceId',
        'DbInstanceClass.$': '$.drillClass.value',
        'Engine.$': '$.sourceDb.engine',
        PubliclyAccessible: false,
        Tags: tags,
      }, { ResultPath: null });
      catchIntoDeletion(create, 'CreateDrillInstance');
      create.next(polls);
      afterRestore = create;
      restoreLatest.next(create);
      restoreTime.next(create);
      multiAzRestoreLatest?.next(polls);
      multiAzRestoreTime?.next(polls);
    } else {
      restoreLatest.next(polls);
      restoreTime.next(polls);
    }
    void afterRestore;
    const which = new sfn.Choice(scope, 'Restore how?');
    if (cluster && multiAzRestoreLatest && multiAzRestoreTime && multiAz) {
      which.when(sfn.Condition.and(sfn.Condition.isPresent(multiAz), sfn.Condition.stringEquals('$.target.kind', 'time')), multiAzRestoreTime);
      which.when(sfn.Condition.isPresent(multiAz), multiAzRestoreLatest);
    }
    which.when(sfn.Condition.stringEquals('$.target.kind', 'time'), restoreTime).otherwise(restoreLatest);
    latestTarget.next(restoreStart);
    timeTarget.next(restoreStart);
    restoreStart.next(which);

    const chain = sfn.Chain.start(start).next(nameInstance);
    let facts: sfn.Chain = chain;
    for (const state of sourceFacts) facts = facts.next(state as sfn.CustomState);
    return facts.next(classOf as sfn.Pass).next(subnetGroup).next(chooseTarget);
  }
}

// ------------------------------------------------------------------------------------------

export interface NativeDrillJanitorProps {
  readonly appName: string;
  /** The RDS sources (with `rds`) whose drills the janitor watches: their regions and names. */
  readonly sources: readonly Source[];
  /**
   * Age after which a drill instance or cluster is a leftover.
   * @default 6
   */
  readonly maxAgeHours?: number;
}

export const DEFAULT_JANITOR_MAX_AGE_HOURS = 6;

/**
 * An hourly Lambda that deletes every DB instance and cluster tagged `lifeboat:drill` (by the
 * drills) older than `maxAgeHours`, without a final snapshot; never anything untagged
 * (lib/rds/drill-janitor.ts). It may delete only resources named `lbd-*` carrying the tag.
 */
export class NativeDrillJanitor extends Construct {
  public readonly function: lambda.IFunction;

  constructor(scope: Construct, id: string, props: NativeDrillJanitorProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const rdsSources = props.sources.filter((source) => source.rds);
    const regions = [...new Set(rdsSources.map((source) => (source.rds as RdsNativeSource).region))];
    const fn = new lambdaNodejs.NodejsFunction(this, 'Function', {
      entry: path.join(__dirname, '..', '..', 'lambdas', 'native-drill-janitor', 'handler.ts'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      timeout: Duration.minutes(5),
      memorySize: 256,
      description: `Lifeboat: deletes RDS drill instances and clusters left older than ${props.maxAgeHours ?? DEFAULT_JANITOR_MAX_AGE_HOURS} hours`,
      environment: {
        POWERTOOLS_SERVICE_NAME: 'lifeboat-native-drill-janitor',
        LIFEBOAT_JANITOR_REGIONS: regions.join(','),
        LIFEBOAT_JANITOR_MAX_AGE_HOURS: String(props.maxAgeHours ?? DEFAULT_JANITOR_MAX_AGE_HOURS),
        LIFEBOAT_JANITOR_SOURCES: rdsSources.map((source) => source.name).join(','),
      },
      logGroup: new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
      bundling: { minify: true, sourceMap: true, externalModules: [] },
    });
    this.function = fn;
    const arn = (region: string, type: string, name: string) => rdsResource(stack, type, name, region);
    fn.addToRolePolicy(new iam.PolicyStatement({
      sid: 'ListInstancesAndClusters',
      actions: ['rds:DescribeDBInstances', 'rds:DescribeDBClusters', 'rds:ListTagsForResource'],
      resources: regions.flatMap((region) => [arn(region, 'db', '*'), arn(region, 'cluster', '*')]),
    }));
    fn.addToRolePolicy(new iam.PolicyStatement({
      sid: 'DeleteOnlyDrills',
      actions: ['rds:DeleteDBInstance', 'rds:DeleteDBCluster'],
      resources: regions.flatMap((region) => [arn(region, 'db', 'lbd-*'), arn(region, 'cluster', 'lbd-*')]),
      conditions: { StringLike: { [`aws:ResourceTag/${DRILL_TAG}`]: '?*' } },
    }));
    new events.Rule(this, 'Hourly', {
      description: 'Lifeboat: the RDS drill janitor, hourly',
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [new eventsTargets.LambdaFunction(fn, { retryAttempts: 2 })],
    });
    for (const region of regions) {
      for (const resource of [arn(region, 'db', '*'), arn(region, 'cluster', '*'), arn(region, 'db', 'lbd-*'), arn(region, 'cluster', 'lbd-*')]) {
        acknowledgeWildcardResource(fn.role as iam.IRole, resource,
          'The janitor lists every instance and cluster to find drill leftovers by tag; it deletes only lbd-* resources carrying the lifeboat:drill tag (aws:ResourceTag).');
      }
    }
  }
}
