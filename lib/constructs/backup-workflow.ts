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
import { Construct } from 'constructs';
import * as path from 'node:path';
import { RUNS_PREFIX } from '../domain/layout';
import { imageBuildArgs } from '../domain/versions';
import { backupRunStates } from './backup-run-states';
import { backupStateMachineName, DUMP_FAMILY_PREFIX, LIFEBOAT_ROLE_PATH, OFFSITE_READER_PATHS } from './dump-task';
import { grantPublishTo } from './alarm-topic';
import { loggedStateMachine } from './common';
import { acknowledgeWildcardResource } from './nag';
import { RunGrants } from './run-grants';

const REPO_ROOT = path.join(__dirname, '..', '..');


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
      definition: backupRunStates(this, { props, cluster: this.cluster, verifyTask: this.verifyTask, functions: { verify, commit, awaitOffsite, record, recordFailure } }),
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

}

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
