import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import * as path from 'node:path';
import { RUNS_PREFIX } from '../domain/layout';
import { imageBuildArgs } from '../domain/versions';
import { BACKUP_STARTED, EVENT_SOURCE } from '../steps/telemetry';
import { backupStateMachineName, DUMP_FAMILY_PREFIX, LIFEBOAT_ROLE_PATH, OFFSITE_READER_PATHS } from './dump-task';
import { grantPublishTo } from './alarm-topic';
import { loggedStateMachine } from './common';
import { acknowledgeWildcardResource } from './nag';
import { RunGrants } from './run-grants';

const REPO_ROOT = path.join(__dirname, '..', '..');

/** Errors worth another attempt: the cause may be gone a minute later. */
export const TRANSIENT_DUMP_ERRORS = ['SourceUnreachable', 'DumpFailed', 'UploadFailed', 'ECS.AmazonECSException'];
const LAMBDA_SERVICE_ERRORS = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];

export interface OffsiteTarget {
  readonly bucketName: string;
  readonly region: string;
  /** @default - this stack's account */
  readonly account?: string;
}

export interface BackupWorkflowProps {
  /** Prefix of the state machine's name; the dump tasks may answer task tokens of `<prefix>*`. */
  readonly appName: string;
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
  readonly offsite: OffsiteTarget;
  readonly alarmTopic: sns.ITopic;
  /** Each source's RPO, so a failure message can say how far the last backup is from it. */
  readonly rpoSecondsBySource: Readonly<Record<string, number>>;
  /** The worker image: it also verifies artifacts too large for Lambda. */
  readonly workerImage: ecs.ContainerImage;
  /**
   * Artifacts larger than this are verified by a Fargate task instead of Lambda, whose 15
   * minutes do not fit a full read of a very large archive.
   * @default - 20 GB
   */
  readonly fargateVerifyThresholdBytes?: number;
  /**
   * How long to wait between two checks for the offsite copy.
   * @default - 60 seconds
   */
  readonly offsitePollInterval?: Duration;
  /**
   * Checks of the offsite copy before the run ends OffsiteMissing; with the poll interval
   * this covers S3 Replication Time Control's 15-minute window plus a margin.
   * @default 16
   */
  readonly offsiteMaxAttempts?: number;
  /**
   * Missing heartbeats after which Step Functions gives up on a dump task (the worker
   * heartbeats every minute).
   * @default - 5 minutes
   */
  readonly dumpHeartbeat?: Duration;
}

/**
 * The backup-run state machine (docs/backup-run.md): Dump → Verify → Commit →
 * AwaitOffsite → Record, every failure caught into RecordFailure → NotifyFailure → Failed,
 * so a failed run is a red execution and an SNS message in words a person understands.
 * One state machine serves every source; the schedule's input names the source, its task
 * definition and its network.
 */
export class BackupWorkflow extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  public readonly cluster: ecs.CfnCluster;
  public readonly functions: {
    readonly verify: lambda.IFunction;
    readonly commit: lambda.IFunction;
    readonly awaitOffsite: lambda.IFunction;
    readonly record: lambda.IFunction;
    readonly recordFailure: lambda.IFunction;
  };
  public readonly verifyTask: ecs.FargateTaskDefinition;

  constructor(scope: Construct, id: string, props: BackupWorkflowProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const { bucket } = props;
    const offsiteAccount = props.offsite.account ?? stack.account;

    this.cluster = new ecs.CfnCluster(this, 'Cluster', {
      clusterSettings: [{ name: 'containerInsights', value: 'enabled' }],
    });

    const environment = {
      LIFEBOAT_BUCKET: bucket.bucketName,
      LIFEBOAT_OFFSITE_BUCKET: props.offsite.bucketName,
      LIFEBOAT_OFFSITE_REGION: props.offsite.region,
      LIFEBOAT_OFFSITE_MAX_ATTEMPTS: String(props.offsiteMaxAttempts ?? 16),
      POWERTOOLS_METRICS_NAMESPACE: 'Lifeboat',
    };
    const nodeFunction = (name: string, description: string, role?: iam.IRole) => {
      const fn = new nodejs.NodejsFunction(this, name, {
        role,
        entry: path.join(REPO_ROOT, 'lambdas', kebab(name), 'handler.ts'),
        handler: 'handler',
        description,
        runtime: lambda.Runtime.NODEJS_22_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 256,
        timeout: Duration.minutes(1),
        environment: { ...environment, POWERTOOLS_SERVICE_NAME: `lifeboat-${kebab(name)}` },
        logGroup: new logs.LogGroup(this, `${name}Logs`, { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
        // The SDK is bundled, so the deployed code runs the SDK version the tests ran.
        bundling: { minify: true, sourceMap: true, externalModules: [] },
      });
      acknowledgeLambdaBasics(fn);
      return fn;
    };

    const verify = new lambda.DockerImageFunction(this, 'Verify', {
      description: 'Lifeboat: reads every byte of a run and checks it against its manifest',
      // pg_restore of the worker's PostgreSQL major (lib/domain/versions.ts), as the worker image.
      code: lambda.DockerImageCode.fromImageAsset(REPO_ROOT, { file: 'lambdas/verify/Dockerfile', buildArgs: imageBuildArgs() }),
      architecture: lambda.Architecture.X86_64,
      memorySize: 2048,
      timeout: Duration.minutes(15),
      environment: { ...environment, POWERTOOLS_SERVICE_NAME: 'lifeboat-verify' },
      logGroup: new logs.LogGroup(this, 'VerifyLogs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
    });
    acknowledgeLambdaBasics(verify);
    const commit = nodeFunction('Commit', 'Lifeboat: writes the ok verdict — the moment a run becomes a backup');
    // Under its own path, so the offsite bucket and key policies (another stack, maybe another
    // account, deployed first) can admit it by ARN pattern before it exists.
    const awaitOffsiteRole = new iam.Role(this, 'AwaitOffsiteRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      path: OFFSITE_READER_PATHS.awaitOffsite,
      description: 'Lifeboat AwaitOffsite: reads a run and its offsite replica, writes offsite.json',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole')],
    });
    Validations.of(awaitOffsiteRole).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'AWSLambdaBasicExecutionRole allows only logs:CreateLogGroup, logs:CreateLogStream and logs:PutLogEvents (on any log group: it cannot read or delete logs); everything else is granted per function.',
    });
    const awaitOffsite = nodeFunction('AwaitOffsite', 'Lifeboat: confirms the offsite copy of a run', awaitOffsiteRole);
    const record = nodeFunction('Record', 'Lifeboat: metrics and an event for a verified backup');
    const recordFailure = nodeFunction('RecordFailure', 'Lifeboat: explains a failed run for the person on call');
    recordFailure.addEnvironment('LIFEBOAT_RPO_SECONDS', JSON.stringify(props.rpoSecondsBySource));
    this.functions = { verify, commit, awaitOffsite, record, recordFailure };

    // Least privilege per step (docs/permissions.md): who reads what, and the one writer of
    // each JSON document of a run (the bucket policy denies every other writer).
    const grants = new RunGrants(bucket, props.bucketKey);
    const roleOf = (fn: lambda.Function) => fn.role as iam.IRole;
    grants.readRuns(roleOf(verify), 'The verifier reads every byte of any run of any source (artifacts and manifests, exact versions): run keys are made at run time under runs/.');
    grants.readDocuments(roleOf(commit), ['manifest.json', 'verification.json']);
    grants.writeDocument(roleOf(commit), 'verification.json');
    grants.readRuns(roleOf(awaitOffsite), 'AwaitOffsite reads the run it confirms (its JSON documents, and the artifacts\' checksums) to compare it with the replica; run keys are made at run time under runs/.');
    grants.writeDocument(roleOf(awaitOffsite), 'offsite.json');
    grants.readDocuments(roleOf(recordFailure), ['manifest.json', 'verification.json', 'offsite.json']);
    const offsiteBucketArn = `arn:${stack.partition}:s3:::${props.offsite.bucketName}`;
    const offsiteObjects = `${offsiteBucketArn}/${RUNS_PREFIX}*`;
    awaitOffsite.addToRolePolicy(new iam.PolicyStatement({
      sid: 'ReadOffsiteReplicas', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: [offsiteObjects],
    }));
    // Without ListBucket, S3 answers 403 instead of 404 for a replica that is not there yet.
    awaitOffsite.addToRolePolicy(new iam.PolicyStatement({
      sid: 'ListOffsiteReplicas', actions: ['s3:ListBucket'], resources: [offsiteBucketArn], conditions: { StringLike: { 's3:prefix': [`${RUNS_PREFIX}*`] } },
    }));
    // The offsite key is named by alias in another region (and account): IAM cannot name its
    // id here, so the grant covers keys there, used through S3 in that region only; the
    // offsite key policy admits this role by ARN pattern (OffsiteStack).
    const offsiteKeys = `arn:${stack.partition}:kms:${props.offsite.region}:${offsiteAccount}:key/*`;
    awaitOffsite.addToRolePolicy(new iam.PolicyStatement({
      sid: 'DecryptOffsiteReplicas', actions: ['kms:Decrypt'], resources: [offsiteKeys],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${props.offsite.region}.amazonaws.com` } },
    }));
    acknowledgeWildcardResource(roleOf(awaitOffsite), offsiteObjects, 'Reads the replicas of the run it confirms in the offsite bucket, whose keys are made at run time under runs/; reads only.');
    acknowledgeWildcardResource(roleOf(awaitOffsite), offsiteKeys, 'The offsite key lives in another region (and account) and is named by alias; kms:ViaService limits the grant to S3 there, and in another account the offsite key policy admits only the primary account\'s offsite readers, by role path.');
    const defaultBus = stack.formatArn({ service: 'events', resource: 'event-bus', resourceName: 'default' });
    for (const fn of [record, recordFailure]) {
      fn.addToRolePolicy(new iam.PolicyStatement({ actions: ['events:PutEvents'], resources: [defaultBus] }));
    }

    // Artifacts too big for Lambda: the same verifier in the worker image on Fargate.
    this.verifyTask = new ecs.FargateTaskDefinition(this, 'VerifyTask', {
      family: `${props.appName.toLowerCase()}-verify`,
      cpu: 2048,
      memoryLimitMiB: 4096,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    this.verifyTask.addContainer('Verifier', {
      image: props.workerImage,
      entryPoint: ['node', '--enable-source-maps', '/app/verify.js'],
      readonlyRootFilesystem: true,
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: 'verify',
        logGroup: new logs.LogGroup(this, 'VerifyTaskLogs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
      }),
      environment: { LIFEBOAT_BUCKET: bucket.bucketName },
    });
    grants.readRuns(this.verifyTask.taskRole, 'The verifier reads every byte of any run of any source (artifacts and manifests, exact versions): run keys are made at run time under runs/.');
    if (props.workerImage instanceof ecs.AssetImage) {
      acknowledgeWildcardResource(this.verifyTask.obtainExecutionRole(), '*',
        'ecr:GetAuthorizationToken, which ECS needs to pull the worker image, has no resource-level permissions.');
    }
    Validations.of(this.verifyTask).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The only environment value is the bucket name; the run to verify comes with the task overrides.',
    });

    this.stateMachine = loggedStateMachine(this, {
      name: backupStateMachineName(props.appName),
      definition: this.definition(props, verify, commit, awaitOffsite, record, recordFailure),
      timeout: Duration.hours(24),
    });

    // ECS RunTask with a task definition chosen per source (from the input): the L2 task
    // cannot grant that, so the grants are explicit. The dump tasks live in nested stacks
    // (source shards) that depend on this stack: they are named by family and role path,
    // never referenced, so the parent does not depend on its shards.
    const dumpFamilies = taskDefinitionFamilyArn(stack, DUMP_FAMILY_PREFIX);
    const dumpRoles = lifeboatRolesArn(stack, 'dump');
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({
      actions: ['ecs:RunTask'],
      resources: [dumpFamilies, this.verifyTask.taskDefinitionArn],
      conditions: { ArnEquals: { 'ecs:cluster': this.cluster.attrArn } },
    }));
    this.stateMachine.addToRolePolicy(new iam.PolicyStatement({
      actions: ['iam:PassRole'],
      resources: [dumpRoles, this.verifyTask.taskRole.roleArn, this.verifyTask.obtainExecutionRole().roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    }));
    acknowledgeWildcardResource(this.stateMachine.role, dumpFamilies,
      'The dump task definitions of every source (family lifeboat-dump-<source>, any revision) live in nested stacks and are named by family; RunTask is limited to the Lifeboat cluster.');
    acknowledgeWildcardResource(this.stateMachine.role, dumpRoles,
      'The task and execution roles of the dump tasks live in nested stacks under the /lifeboat/dump/ path and are named by path; they can be passed to ECS tasks only (iam:PassedToService).');
    this.stateMachine.grantTaskResponse(this.verifyTask.taskRole);
    // NotifyFailure publishes to the encrypted topic: sns:Publish and the topic key's use.
    grantPublishTo(props.alarmTopic, this.stateMachine);
    for (const fn of Object.values(this.functions)) {
      acknowledgeWildcardResource(this.stateMachine.role, `${fn.functionArn}:*`,
        'Invoking a Lambda function from Step Functions is granted on the function and its versions (ARN:*); nothing else.');
    }
    acknowledgeWildcardResource(this.stateMachine.role, '*', 'Step Functions log delivery and X-Ray APIs do not support resource-level permissions.');
  }

  private definition(
    props: BackupWorkflowProps,
    verify: lambda.IFunction,
    commit: lambda.IFunction,
    awaitOffsite: lambda.IFunction,
    record: lambda.IFunction,
    recordFailure: lambda.IFunction,
  ): sfn.IChainable {
    // States live in their own scope: their ids are the state names users read in the
    // console, and several equal the names of the functions behind them.
    const scope = new Construct(this, 'States');
    const clusterArn = this.cluster.attrArn;
    const network = {
      AwsvpcConfiguration: { 'Subnets.$': '$.target.subnets', 'SecurityGroups.$': '$.target.securityGroups', AssignPublicIp: 'DISABLED' },
    };

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

    /** Every state's failures go through a Pass that names the state, then RecordFailure. */
    const onFailure = (state: string) =>
      new sfn.Pass(scope, `${state} failed`, { result: sfn.Result.fromString(state), resultPath: '$.failedState' }).next(recordFailureState);

    const dump = new sfn.CustomState(scope, 'Dump', {
      stateJson: {
        Type: 'Task',
        Comment: 'The worker dumps the source into the primary bucket and answers the task token with the manifest summary',
        Resource: `arn:${Stack.of(this).partition}:states:::ecs:runTask.waitForTaskToken`,
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

    // The dump's summary names the run, its bucket and the version of its manifest.
    /**
     * A Lambda step whose result lands at `resultPath`: retried only on Lambda's own service
     * errors (the function's errors are verdicts, not glitches), every failure caught.
     */
    /** `payload`: an object of JsonPaths, or a path whose value is the whole payload. */
    const lambdaStep = (name: string, fn: lambda.IFunction, payload: sfn.TaskInput | string, resultPath: string, timeout: Duration, failedState = onFailure(name)) => {
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
    const verifyState = lambdaStep('Verify', verify, '$.dump', '$.verification', Duration.minutes(15), verifyFailed);

    const verifyOnFargate = new sfn.CustomState(scope, 'VerifyOnFargate', {
      stateJson: {
        Type: 'Task',
        Comment: 'The same verifier as a Fargate task, for artifacts whose full read does not fit in Lambda',
        Resource: `arn:${Stack.of(this).partition}:states:::ecs:runTask.waitForTaskToken`,
        HeartbeatSeconds: 300,
        TimeoutSeconds: 24 * 3600,
        Parameters: {
          Cluster: clusterArn,
          TaskDefinition: this.verifyTask.taskDefinitionArn,
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

    const threshold = props.fargateVerifyThresholdBytes ?? 20e9;
    const start = new sfn.Pass(scope, 'Start', {
      comment: 'Seeds the offsite poll counter',
      result: sfn.Result.fromObject({ attempts: 0, present: false }),
      resultPath: '$.offsite',
    });
    start.next(this.announceStart(scope, dump));
    dump
      .next(new sfn.Choice(scope, 'ChooseVerifier')
        .when(sfn.Condition.numberGreaterThan('$.dump.bytes', threshold), verifyOnFargate)
        .otherwise(verifyState)
        .afterwards())
      .next(new sfn.Choice(scope, 'Verdict?')
        .when(sfn.Condition.stringEquals('$.verification.verdict', 'ok'), commitState)
        .otherwise(recordFailedVerdict)
        .afterwards({ includeOtherwise: false }))
      .next(awaitOffsiteState)
      .next(new sfn.Choice(scope, 'OffsiteCopied?')
        .when(sfn.Condition.booleanEquals('$.offsite.present', true), recordState.next(new sfn.Succeed(scope, 'Backed up')))
        .otherwise(waitForOffsite.next(awaitOffsiteState)));
    return start;
  }

  /**
   * The start heartbeat's event: `Backup Started` with the source, the slot's run id and the
   * execution, put on the default bus before the dump. Step Functions' own RUNNING event
   * carries the input only as a string, which an input transformer cannot read; this one a
   * monitor can match per source. A failed announcement never stops the backup, and an input
   * without a slot time (the dump then fails naming it) is not announced.
   */
  private announceStart(scope: Construct, dump: sfn.IChainable): sfn.IChainable {
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

function kebab(name: string): string {
  return name.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase();
}

function acknowledgeLambdaBasics(fn: lambda.Function): void {
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason: 'AWSLambdaBasicExecutionRole allows only logs:CreateLogGroup, logs:CreateLogStream and logs:PutLogEvents (on any log group: it cannot read or delete logs); everything else is granted per function.',
  });
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-L1',
    reason: 'Lifeboat pins Node 22 everywhere (the worker image, the CLI, the tests); the runtime moves with that pin.',
  });
}

/** Every revision of every task definition whose family starts with `familyPrefix`. */
export function taskDefinitionFamilyArn(stack: Stack, familyPrefix: string): string {
  return `arn:${stack.partition}:ecs:${stack.region}:${stack.account}:task-definition/${familyPrefix}*:*`;
}

/** Every role under Lifeboat's IAM path for `kind` (`/lifeboat/dump/`, `/lifeboat/drill/`). */
export function lifeboatRolesArn(stack: Stack, kind: 'dump' | 'drill'): string {
  return `arn:${stack.partition}:iam::${stack.account}:role${LIFEBOAT_ROLE_PATH}${kind}/*`;
}
