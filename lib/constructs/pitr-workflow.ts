/**
 * Point-in-time recovery runs (PostgreSQL, pgBackRest): the SSM document that runs
 * `pgbackrest backup` on a source's host, the PITR verifier task, the PITR backup-run state
 * machine and one schedule per source and backup type (docs/architecture.md, "Point-in-time
 * recovery"):
 *
 *   Start → NameRun → BackupOnHost (SSM SendCommand) → WaitForHost ⇄ PollHost (ListCommands)
 *     → VerifySet (Fargate: find the set, write its manifest, pgbackrest verify + WAL continuity)
 *     → Verdict? → Commit → AwaitOffsite ⇄ WaitForOffsite → Record
 *     → Full set? → Expire (Fargate: pgbackrest expire by Lifeboat's retention) → Backed up
 *                 ↘ (a differential or incremental) Backed up
 *
 * A host command that failed is read back (ListCommandInvocations) for its output: exit 75 is
 * the document's "another backup of the stanza is running" for an incremental (skipped: the
 * archive keeps the RPO meanwhile), an undelivered command `HostUnreachable`, anything else
 * `BackupFailed` with pgBackRest's own last lines. Every failure goes through RecordFailure →
 * NotifyFailure → Failed, as a logical run's; a failed Expire too, its cause saying that the run's
 * set is committed and only the expiry failed.
 *
 * Expire runs after each full (weekly by the plan): the host's pgBackRest expires nothing, so this
 * is where the repository's sets and WAL go (lib/pitr/expire-run.ts). Its role is the only role
 * of the stacks that deletes under pitr/ (the host's instance profile, outside them, does too:
 * pgBackRest cleans interrupted backups): s3:DeleteObject of the PITR repositories, which in the
 * versioned, locked bucket lays a delete marker; removing or unlocking a version is denied.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { ObjectLockMode, Source } from '../config/types';
import { pitrCatalogName, RUNS_PREFIX } from '../domain/layout';
import type { PitrBackupType } from '../pitr/plan';
import { pitrPrefix } from '../pitr/setup';
import { PITR_EXPIRE_ENV } from '../../worker/pitr-expire-main';
import { PITR_VERIFY_ENV } from '../../worker/pitr-verify-main';
import { grantPublishTo } from './alarm-topic';
import { DAILY_START_HOUR, flexibleWindowFor, scheduleFor, type ScheduleSpec } from './backup-schedules';
import { offsiteSeed, RUN_ID_FROM_SCHEDULED_TIME, runStates, type RunFunctions } from './backup-run-states';
import { loggedStateMachine, startExecutionSchedule } from './common';
import { acknowledgeWildcardResource } from './nag';
import { RunGrants } from './run-grants';

/** The exit code of the document's script when another backup of the stanza holds pgBackRest's lock and this incremental is skipped. */
export const PITR_SKIPPED_EXIT = 75;
/** Where the host's pgbackrest.conf is (lifeboat pitr setup writes it there). */
export const HOST_CONFIG_PATH = '/etc/pgbackrest/pgbackrest.conf';
export const HOST_CONFIG_INCLUDE_PATH = '/etc/pgbackrest/conf.d';

export function pitrStateMachineName(appName: string): string {
  return `${appName}-pitr-run`;
}

export function pitrDocumentName(appName: string): string {
  return `${appName}-pitr-backup`;
}

/** The expiry task's family (`<app>-pitr-expire`, lower case as the verifier's). */
export function pitrExpireFamily(appName: string): string {
  return `${appName.toLowerCase()}-pitr-expire`;
}

/**
 * The document's script: `pgbackrest backup` as the server's OS user, with the host's own
 * configuration (the repository, the instance profile's credentials). A full or differential
 * that finds the stanza's lock held (pgBackRest's exit 50) waits for it, up to the command's
 * timeout; an incremental is skipped instead (exit 75): the next one, or the WAL archive, covers
 * it. The parameters are validated by the document (allowedPattern), so they are plain words.
 * POSIX sh only: SSM runs it with sh.
 */
export const PITR_BACKUP_SCRIPT = [
  'set -u',
  'as_user() { if [ "$(id -un)" = "{{ osUser }}" ]; then "$@"; else runuser -u "{{ osUser }}" -- "$@"; fi; }',
  'backrest() { as_user pgbackrest --config="{{ configPath }}" --config-include-path="{{ configIncludePath }}" --stanza="{{ stanza }}" "$@"; }',
  'echo "lifeboat: pgbackrest backup --type={{ type }} of stanza {{ stanza }} on $(hostname) as {{ osUser }}"',
  'while :; do',
  // POSIX sh (SSM's aws:runShellScript runs the script with sh, dash on Debian and Ubuntu): no PIPESTATUS.
  '  out=$(mktemp)',
  '  backrest --type="{{ type }}" --log-level-console=info --log-level-stderr=error backup >"$out" 2>&1',
  '  code=$?',
  '  tail -n 40 "$out"; rm -f "$out"',
  '  [ "$code" -eq 50 ] || break',
  `  if [ "{{ type }}" = incr ]; then echo "lifeboat: another backup of {{ stanza }} is running: this incremental is skipped"; exit ${PITR_SKIPPED_EXIT}; fi`,
  '  echo "lifeboat: another backup of {{ stanza }} is running: waiting 30 s"; sleep 30',
  'done',
  '[ "$code" -eq 0 ] || { echo "lifeboat: pgbackrest backup exited $code"; exit "$code"; }',
  'backrest --output=json info | head -c 2000; echo',
];

export interface PitrWorkflowProps {
  readonly appName: string;
  /** The sources with method 'pitr'. */
  readonly sources: readonly Source[];
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
  readonly alarmTopic: sns.ITopic;
  readonly workerImage: ecs.ContainerImage;
  /** The backup run's cluster: the verifier runs there. */
  readonly cluster: ecs.CfnCluster;
  /** The backup run's Commit, AwaitOffsite, Record and RecordFailure: a PITR run ends as a logical one. */
  readonly functions: RunFunctions;
  readonly objectLockMode: ObjectLockMode;
  /** The offsite bucket AwaitOffsite compares the set and its WAL with. */
  readonly offsite: { readonly bucketName: string };
  /** The backup schedules' group and dead-letter queue. */
  readonly schedules: { readonly group: scheduler.IScheduleGroup; readonly deadLetterQueue: sqs.IQueue };
  /** @default - 30 seconds */
  readonly hostPollInterval?: Duration;
  /** @default - 60 seconds */
  readonly offsitePollInterval?: Duration;
}

export class PitrWorkflow extends Construct {
  public readonly document: ssm.CfnDocument;
  public readonly verifyTask: ecs.FargateTaskDefinition;
  /** The Expire state's task: pgbackrest expire by Lifeboat's retention, the one deleter under pitr/. */
  public readonly expireTask: ecs.FargateTaskDefinition;
  public readonly stateMachine: sfn.StateMachine;
  /** By source, then backup type. */
  public readonly schedules: Readonly<Record<string, Readonly<Partial<Record<PitrBackupType, scheduler.Schedule>>>>>;

  constructor(scope: Construct, id: string, props: PitrWorkflowProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const documentName = pitrDocumentName(props.appName);

    this.document = new ssm.CfnDocument(this, 'BackupDocument', {
      name: documentName,
      documentType: 'Command',
      documentFormat: 'JSON',
      updateMethod: 'NewVersion',
      content: {
        schemaVersion: '2.2',
        description: 'Lifeboat: pgbackrest backup of a PostgreSQL host (point-in-time recovery); started by the PITR backup run',
        parameters: {
          stanza: { type: 'String', allowedPattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description: 'pgBackRest stanza' },
          type: { type: 'String', allowedValues: ['full', 'diff', 'incr'], description: 'Backup type' },
          osUser: { type: 'String', default: 'postgres', allowedPattern: '^[a-z_][a-z0-9_-]*$', description: 'The PostgreSQL server\'s OS user' },
          configPath: { type: 'String', default: HOST_CONFIG_PATH, allowedPattern: '^/[A-Za-z0-9._/-]+$', description: 'pgbackrest.conf' },
          configIncludePath: { type: 'String', default: HOST_CONFIG_INCLUDE_PATH, allowedPattern: '^/[A-Za-z0-9._/-]+$', description: 'pgBackRest conf.d' },
        },
        mainSteps: [{
          action: 'aws:runShellScript',
          name: 'pgbackrestBackup',
          inputs: { timeoutSeconds: '86400', runCommand: PITR_BACKUP_SCRIPT },
        }],
      },
    });

    // The verifier: the worker image's pgBackRest, reading the repository and writing the run's manifest.
    this.verifyTask = new ecs.FargateTaskDefinition(this, 'VerifyTask', {
      family: `${props.appName.toLowerCase()}-pitr-verify`,
      cpu: 1024,
      memoryLimitMiB: 2048,
      ephemeralStorageGiB: 21,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    this.verifyTask.addVolume({ name: 'scratch' });
    const container = this.verifyTask.addContainer('PitrVerifier', {
      image: props.workerImage,
      entryPoint: ['node', '--enable-source-maps', '/app/pitr-verify.js'],
      readonlyRootFilesystem: true,
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: 'pitr-verify',
        logGroup: new logs.LogGroup(this, 'VerifyTaskLogs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
      }),
      environment: {
        [PITR_VERIFY_ENV.bucket]: props.bucket.bucketName,
        [PITR_VERIFY_ENV.objectLockMode]: props.objectLockMode.toUpperCase(),
        [PITR_VERIFY_ENV.scratch]: '/scratch',
      },
    });
    container.addMountPoints({ containerPath: '/scratch', sourceVolume: 'scratch', readOnly: false });
    const role = this.verifyTask.taskRole;
    const grants = new RunGrants(props.bucket, props.bucketKey);
    // It reads the runs (the set's prior's run, for dependsOn) and writes one document: the manifest of a PITR run.
    grants.readDocuments(role, ['manifest.json', 'verification.json', 'offsite.json']);
    const manifests = props.bucket.arnForObjects(`${RUNS_PREFIX}*-pitr/*/manifest.json`);
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'WritePitrManifests', actions: ['s3:PutObject', 's3:PutObjectRetention'], resources: [manifests] }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:GenerateDataKey'], resources: [props.bucketKey.keyArn] }));
    acknowledgeWildcardResource(role, manifests, 'Writes manifest.json of a PITR run (runs/<source>-pitr/<runId>/), whose key is made at run time; write-once by the bucket policy.');
    grantPitrRepositoryRead(props.bucket, role, props.sources);
    Validations.of(this.verifyTask).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds the bucket name, the Object Lock mode and a path; the run to verify comes with the task overrides.',
    });
    if (props.workerImage instanceof ecs.AssetImage) {
      acknowledgeWildcardResource(this.verifyTask.obtainExecutionRole(), '*', 'ecr:GetAuthorizationToken, which ECS needs to pull the worker image, has no resource-level permissions.');
    }

    // AwaitOffsite compares the set's files and WAL in both buckets by listing (lib/steps/await-offsite.ts).
    const awaitOffsiteRole = (props.functions.awaitOffsite as { role?: iam.IRole }).role as iam.IRole;
    grantPitrRepositoryRead(props.bucket, awaitOffsiteRole, props.sources);
    awaitOffsiteRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ListOffsitePitrReplicas', actions: ['s3:ListBucket'], resources: [`arn:${stack.partition}:s3:::${props.offsite.bucketName}`],
      conditions: { StringLike: { 's3:prefix': props.sources.map((source) => `${pitrPrefix(source.name)}*`) } },
    }));
    // The run's artifact (the set's backup.manifest) is compared like any artifact: HEAD of its replica.
    const offsiteRepositories = props.sources.map((source) => `arn:${stack.partition}:s3:::${props.offsite.bucketName}/${pitrPrefix(source.name)}*`);
    awaitOffsiteRole.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadOffsitePitrReplicas', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: offsiteRepositories }));
    for (const resource of offsiteRepositories) acknowledgeWildcardResource(awaitOffsiteRole, resource, 'Reads the replica of a PITR set\'s backup.manifest (keys made by pgBackRest) to compare it with the primary; reads only.');

    this.expireTask = this.expireTaskDefinition(props, grants);

    this.stateMachine = loggedStateMachine(this, {
      name: pitrStateMachineName(props.appName),
      definition: this.states(props, documentName),
      timeout: Duration.hours(26),
    });
    const machineRole = this.stateMachine.role;
    machineRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'RunPitrBackupDocument',
      actions: ['ssm:SendCommand'],
      resources: [stack.formatArn({ service: 'ssm', resource: 'document', resourceName: documentName })],
    }));
    for (const statement of sendCommandStatements(stack, props.sources)) machineRole.addToPrincipalPolicy(statement);
    machineRole.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ReadCommandStatus', actions: ['ssm:ListCommands', 'ssm:ListCommandInvocations'], resources: ['*'],
    }));
    const tasks = [this.verifyTask, this.expireTask];
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
      'A PITR source named by tag is a host found at run time; the statement admits only instances carrying that tag (ssm:resourceTag).');
    acknowledgeWildcardResource(machineRole, stack.formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: '*' }),
      'A PITR source named by tag may be an on-premises host (SSM hybrid activation, mi-…) found at run time; only instances carrying that tag (ssm:resourceTag).');

    const schedules: Record<string, Partial<Record<PitrBackupType, scheduler.Schedule>>> = {};
    for (const source of props.sources) {
      const pitr = source.pitr;
      if (!pitr) continue;
      const perType: Partial<Record<PitrBackupType, scheduler.Schedule>> = {};
      for (const backup of pitr.plan.backups) {
        const spec = pitrScheduleFor(backup.type, backup.everySeconds, source.tier.timezone, pitr.plan.backups.map((b) => b.type));
        perType[backup.type] = startExecutionSchedule(this, `Schedule-${source.name}-${backup.type}`, {
          description: `Lifeboat: ${backup.type} pgBackRest backup of ${source.name} (${source.tier.name}) ${spec.expression}`,
          group: props.schedules.group,
          spec,
          window: flexibleWindowFor({ scheduleSeconds: backup.everySeconds }),
          stateMachine: this.stateMachine,
          source: source.name,
          input: pitrRunInput(source, backup.type),
          deadLetterQueue: props.schedules.deadLetterQueue,
          retryAttempts: undefined,
          maxEventAge: Duration.seconds(Math.max(60, Math.min(backup.everySeconds, 3600))),
        });
      }
      schedules[source.name] = perType;
    }
    this.schedules = schedules;
  }

  /**
   * The expiry task: the worker image's pgBackRest reads the runs' verdicts and the repository,
   * rewrites its backup.info (and .copy) and archive.info, and deletes the expired sets' files and
   * the WAL no kept full needs (s3:DeleteObject: in the versioned, locked bucket a delete marker).
   * Removing or unlocking a version is denied outright, whatever else grants it.
   */
  private expireTaskDefinition(props: PitrWorkflowProps, grants: RunGrants): ecs.FargateTaskDefinition {
    const task = new ecs.FargateTaskDefinition(this, 'ExpireTask', {
      family: pitrExpireFamily(props.appName),
      cpu: 512,
      memoryLimitMiB: 1024,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.X86_64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    task.addVolume({ name: 'scratch' });
    const pitrSources = props.sources.filter((source) => source.pitr);
    const container = task.addContainer('PitrExpire', {
      image: props.workerImage,
      entryPoint: ['node', '--enable-source-maps', '/app/pitr-expire.js'],
      readonlyRootFilesystem: true,
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: 'pitr-expire',
        logGroup: new logs.LogGroup(this, 'ExpireTaskLogs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
      }),
      environment: {
        [PITR_EXPIRE_ENV.bucket]: props.bucket.bucketName,
        // The tiers, as the logical pruner is given them: the run's input names the source, never its policy.
        [PITR_EXPIRE_ENV.sources]: JSON.stringify(pitrSources.map((source) => ({
          name: source.name,
          tier: { retentionSeconds: source.tier.retentionSeconds, scheduleSeconds: source.tier.scheduleSeconds },
        }))),
        [PITR_EXPIRE_ENV.dryRun]: 'false',
        [PITR_EXPIRE_ENV.scratch]: '/scratch',
      },
    });
    container.addMountPoints({ containerPath: '/scratch', sourceVolume: 'scratch', readOnly: false });
    const role = task.taskRole;
    // Each set's verdict: the runs of the PITR catalogs (listRuns reads their three documents).
    grants.readDocuments(role, ['manifest.json', 'verification.json', 'offsite.json']);
    grantPitrRepositoryRead(props.bucket, role, props.sources);
    const repositories = pitrSources.map((source) => props.bucket.arnForObjects(`${pitrPrefix(source.name)}*`));
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ExpirePitrSets', actions: ['s3:PutObject', 's3:DeleteObject'], resources: repositories }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'EncryptPitrInfo', actions: ['kms:GenerateDataKey'], resources: [props.bucketKey.keyArn] }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'NeverRemoveAVersion',
      effect: iam.Effect.DENY,
      actions: ['s3:DeleteObjectVersion', 's3:BypassGovernanceRetention', 's3:PutObjectRetention', 's3:PutObjectLegalHold', 's3:PutLifecycleConfiguration', 's3:PutBucketPolicy'],
      resources: [props.bucket.bucketArn, props.bucket.arnForObjects('*')],
    }));
    for (const resource of repositories) {
      acknowledgeWildcardResource(role, resource,
        'pgbackrest expire rewrites the info files of a PITR repository and deletes the expired sets\' and WAL\'s keys (made by pgBackRest); a delete leaves a marker, versions stay locked.');
    }
    Validations.of(task).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds the bucket name, the PITR sources\' tiers and a path; the source to expire comes with the task overrides.',
    });
    if (props.workerImage instanceof ecs.AssetImage) {
      acknowledgeWildcardResource(task.obtainExecutionRole(), '*', 'ecr:GetAuthorizationToken, which ECS needs to pull the worker image, has no resource-level permissions.');
    }
    return task;
  }

  private states(props: PitrWorkflowProps, documentName: string): sfn.IChainable {
    const scope = new Construct(this, 'States');
    const partition = Stack.of(this).partition;
    const { onFailure, verdict } = runStates(scope, { alarmTopic: props.alarmTopic, offsitePollInterval: props.offsitePollInterval }, props.functions, {
      afterRecord: ({ backedUp, onFailure: failed }) => this.expireStates(scope, props, failed, backedUp),
    });
    const sdk = (service: string, action: string) => `arn:${partition}:states:::aws-sdk:${service}:${action}`;
    const fail = (name: string, error: string, cause: string, state: string) => new sfn.Pass(scope, name, {
      parameters: { Error: error, 'Cause.$': cause },
      resultPath: '$.failure',
    }).next(onFailure(state));

    const sendCommand = new sfn.CustomState(scope, 'BackupOnHost', {
      stateJson: {
        Type: 'Task',
        Comment: 'Runs pgbackrest backup on the source\'s host through SSM (the Lifeboat document)',
        Resource: sdk('ssm', 'sendCommand'),
        Parameters: {
          DocumentName: documentName,
          'Targets.$': '$.host.targets',
          'Comment.$': "States.Format('Lifeboat {} backup of {}', $.type, $.source)",
          MaxConcurrency: '1',
          MaxErrors: '0',
          TimeoutSeconds: 600,
          Parameters: {
            'stanza.$': 'States.Array($.pitr.stanza)',
            'type.$': 'States.Array($.type)',
            'osUser.$': 'States.Array($.pitr.osUser)',
            'configPath.$': 'States.Array($.pitr.configPath)',
            'configIncludePath.$': 'States.Array($.pitr.configIncludePath)',
          },
        },
        ResultSelector: { 'commandId.$': '$.Command.CommandId' },
        ResultPath: '$.command',
        Retry: [{ ErrorEquals: ['Ssm.ThrottlingException', 'Ssm.InternalServerErrorException'], IntervalSeconds: 10, MaxAttempts: 3, BackoffRate: 2 }],
      },
    });
    const unreachableAtSend = fail('Host not reachable', 'HostUnreachable',
      "States.Format('SSM could not send the backup command to the host of {}: {}', $.source, $.failure.Cause)", 'BackupOnHost');
    sendCommand.addCatch(unreachableAtSend, { errors: ['Ssm.InvalidInstanceIdException', 'Ssm.InvalidTargetException'], resultPath: '$.failure' });
    sendCommand.addCatch(onFailure('BackupOnHost'), { errors: ['States.ALL'], resultPath: '$.failure' });

    const waitForHost = new sfn.Wait(scope, 'WaitForHost', { time: sfn.WaitTime.duration(props.hostPollInterval ?? Duration.seconds(30)) });
    const pollHost = new sfn.CustomState(scope, 'PollHost', {
      stateJson: {
        Type: 'Task',
        Comment: 'The command\'s status on the host',
        Resource: sdk('ssm', 'listCommands'),
        Parameters: { 'CommandId.$': '$.command.commandId' },
        ResultSelector: {
          'status.$': '$.Commands[0].Status',
          'targets.$': '$.Commands[0].TargetCount',
          'deliveryTimedOut.$': '$.Commands[0].DeliveryTimedOutCount',
        },
        ResultPath: '$.command.poll',
        Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 10, MaxAttempts: 3, BackoffRate: 2 }],
      },
    });
    pollHost.addCatch(onFailure('PollHost'), { errors: ['States.ALL'], resultPath: '$.failure' });

    const readOutput = new sfn.CustomState(scope, 'ReadHostOutput', {
      stateJson: {
        Type: 'Task',
        Comment: 'What the failed command printed (pgBackRest\'s last lines) and its exit code',
        Resource: sdk('ssm', 'listCommandInvocations'),
        Parameters: { 'CommandId.$': '$.command.commandId', Details: true },
        ResultSelector: { 'invocations.$': '$.CommandInvocations' },
        ResultPath: '$.command.output',
        Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 10, MaxAttempts: 3, BackoffRate: 2 }],
      },
    });
    readOutput.addCatch(onFailure('ReadHostOutput'), { errors: ['States.ALL'], resultPath: '$.failure' });
    const invocation = '$.command.output.invocations[0]';
    const plugin = `${invocation}.CommandPlugins[0]`;
    const hostFailed = fail('Backup failed on host', 'BackupFailed',
      `States.Format('pgbackrest backup --type={} of {} failed on {} ({}, exit {}): {}', $.type, $.source, ${invocation}.InstanceId, ${invocation}.StatusDetails, ${plugin}.ResponseCode, ${plugin}.Output)`,
      'BackupOnHost');
    const hostUnreachable = fail('Host unreachable', 'HostUnreachable',
      "States.Format('the backup command for {} reached no host (SSM status {}, {} target(s), {} delivery time-out(s)): is the SSM agent running and the instance managed?', $.source, $.command.poll.status, $.command.poll.targets, $.command.poll.deliveryTimedOut)",
      'BackupOnHost');
    const hostUnreachableWithOutput = fail('Host did not answer', 'HostUnreachable',
      `States.Format('the backup command for {} did not run on {}: {}', $.source, ${invocation}.InstanceId, ${invocation}.StatusDetails)`, 'BackupOnHost');
    const failedOutcome = readOutput.next(new sfn.Choice(scope, 'Why?')
      .when(sfn.Condition.and(sfn.Condition.isPresent(`${plugin}.ResponseCode`), sfn.Condition.numberEquals(`${plugin}.ResponseCode`, PITR_SKIPPED_EXIT)),
        new sfn.Succeed(scope, 'Skipped: another backup was running', { comment: 'An incremental while a full or differential held the stanza\'s lock' }))
      .when(sfn.Condition.and(sfn.Condition.isPresent(`${invocation}.StatusDetails`),
        sfn.Condition.or(...['DeliveryTimedOut', 'Undeliverable', 'Terminated', 'InvalidPlatform', 'AccessDenied'].map((status) => sfn.Condition.stringEquals(`${invocation}.StatusDetails`, status)))),
      hostUnreachableWithOutput)
      .when(sfn.Condition.isPresent(`${plugin}.Output`), hostFailed)
      .otherwise(hostUnreachable));

    const verifySet = new sfn.CustomState(scope, 'VerifySet', {
      stateJson: {
        Type: 'Task',
        Comment: 'The PITR verifier: finds the new set, writes its manifest, runs pgbackrest verify and the WAL continuity check',
        Resource: `arn:${partition}:states:::ecs:runTask.waitForTaskToken`,
        HeartbeatSeconds: 300,
        TimeoutSeconds: 24 * 3600,
        Parameters: {
          Cluster: props.cluster.attrArn,
          TaskDefinition: this.verifyTask.taskDefinitionArn,
          LaunchType: 'FARGATE',
          NetworkConfiguration: {
            AwsvpcConfiguration: { 'Subnets.$': '$.target.subnets', 'SecurityGroups.$': '$.target.securityGroups', AssignPublicIp: 'DISABLED' },
          },
          Overrides: {
            ContainerOverrides: [{
              Name: 'PitrVerifier',
              Environment: [
                { Name: PITR_VERIFY_ENV.taskToken, 'Value.$': '$$.Task.Token' },
                { Name: PITR_VERIFY_ENV.source, 'Value.$': '$.source' },
                { Name: PITR_VERIFY_ENV.tier, 'Value.$': '$.tier' },
                { Name: PITR_VERIFY_ENV.runId, 'Value.$': '$.run.runId' },
                { Name: PITR_VERIFY_ENV.type, 'Value.$': '$.type' },
                { Name: PITR_VERIFY_ENV.requestedAt, 'Value.$': '$.run.requestedAt' },
                { Name: PITR_VERIFY_ENV.stanza, 'Value.$': '$.pitr.stanza' },
                { Name: PITR_VERIFY_ENV.repoPath, 'Value.$': '$.pitr.repoPath' },
                { Name: PITR_VERIFY_ENV.retentionSeconds, 'Value.$': '$.retentionSeconds' },
              ],
            }],
          },
        },
        ResultSelector: { 'dump.$': '$.dump', 'verification.$': '$.verification' },
        ResultPath: '$.set',
      },
    });
    verifySet.addRetry({ errors: ['ECS.AmazonECSException'], interval: Duration.minutes(1), maxAttempts: 2, backoffRate: 2 });
    verifySet.addCatch(new sfn.Succeed(scope, 'Set already recorded'), { errors: ['AlreadyCommitted'], resultPath: '$.failure' });
    verifySet.addCatch(onFailure('VerifySet'), { errors: ['States.ALL'], resultPath: '$.failure' });
    const unpack = new sfn.Pass(scope, 'SetSummary', { comment: 'The set as a run: $.dump and $.verification, as Commit reads them', inputPath: '$.set.dump', resultPath: '$.dump' })
      .next(new sfn.Pass(scope, 'SetVerdict', { inputPath: '$.set.verification', resultPath: '$.verification' }));

    const hostDone = new sfn.Choice(scope, 'HostDone?')
      .when(sfn.Condition.or(...['Pending', 'InProgress', 'Cancelling'].map((status) => sfn.Condition.stringEquals('$.command.poll.status', status))), waitForHost)
      .when(sfn.Condition.and(sfn.Condition.stringEquals('$.command.poll.status', 'Success'), sfn.Condition.numberGreaterThan('$.command.poll.targets', 0)),
        verifySet)
      .when(sfn.Condition.or(sfn.Condition.numberEquals('$.command.poll.targets', 0), sfn.Condition.numberGreaterThan('$.command.poll.deliveryTimedOut', 0)), hostUnreachable)
      .otherwise(failedOutcome);
    waitForHost.next(pollHost).next(hostDone);
    verifySet.next(unpack).next(verdict);

    const nameRun = new sfn.Pass(scope, 'NameRun', {
      comment: 'The run id of the slot, and when the host is asked for the backup (the set must start after it)',
      parameters: { 'runId.$': RUN_ID_FROM_SCHEDULED_TIME, 'requestedAt.$': '$$.Execution.StartTime' },
      resultPath: '$.run',
    });
    const start = offsiteSeed(scope);
    start.next(nameRun).next(sendCommand).next(waitForHost);
    return start;
  }

  /**
   * Record → Full set? → Expire → Backed up (a differential or incremental: Backed up). The run's
   * set is committed, offsite-confirmed and recorded before Expire starts: a failed expiry fails
   * the run with a cause that says so, and leaves the repository to the next full's expiry.
   */
  private expireStates(scope: Construct, props: PitrWorkflowProps, onFailure: (state: string) => sfn.IChainable, backedUp: sfn.Succeed): sfn.IChainable {
    const partition = Stack.of(this).partition;
    const expire = new sfn.CustomState(scope, 'Expire', {
      stateJson: {
        Type: 'Task',
        Comment: 'pgbackrest expire of the sets and WAL Lifeboat\'s retention removes (the host never expires anything)',
        Resource: `arn:${partition}:states:::ecs:runTask.waitForTaskToken`,
        HeartbeatSeconds: 300,
        TimeoutSeconds: 6 * 3600,
        Parameters: {
          Cluster: props.cluster.attrArn,
          TaskDefinition: this.expireTask.taskDefinitionArn,
          LaunchType: 'FARGATE',
          NetworkConfiguration: {
            AwsvpcConfiguration: { 'Subnets.$': '$.target.subnets', 'SecurityGroups.$': '$.target.securityGroups', AssignPublicIp: 'DISABLED' },
          },
          Overrides: {
            ContainerOverrides: [{
              Name: 'PitrExpire',
              Environment: [
                { Name: PITR_EXPIRE_ENV.taskToken, 'Value.$': '$$.Task.Token' },
                { Name: PITR_EXPIRE_ENV.source, 'Value.$': '$.source' },
                { Name: PITR_EXPIRE_ENV.stanza, 'Value.$': '$.pitr.stanza' },
              ],
            }],
          },
        },
        ResultPath: '$.expire',
      },
    });
    expire.addRetry({ errors: ['ECS.AmazonECSException'], interval: Duration.minutes(1), maxAttempts: 2, backoffRate: 2 });
    const committed = new sfn.Pass(scope, 'Expiry failed, backup committed', {
      comment: 'The cause says what the run still is: a committed backup',
      parameters: {
        'Error.$': '$.failure.Error',
        'Cause.$': "States.Format('The backup itself is committed: run {} (set {}) is verified, confirmed offsite and recorded, and counts as a backup. " +
          "Only the expiry of older sets failed; nothing the retention keeps was removed, and the next full retries it. {}', $.dump.runId, $.dump.set.label, $.failure.Cause)",
      },
      resultPath: '$.failure',
    }).next(onFailure('Expire'));
    expire.addCatch(committed, { errors: ['States.ALL'], resultPath: '$.failure' });
    expire.next(backedUp);
    return new sfn.Choice(scope, 'Full set?', { comment: 'Sets and WAL are expired after each full, the start of a new chain' })
      .when(sfn.Condition.stringEquals('$.dump.set.type', 'full'), expire)
      .otherwise(backedUp);
  }
}

/** What a source's PITR schedule sends (beside `source` and `scheduledTime`). */
export function pitrRunInput(source: Source, type: PitrBackupType): Record<string, unknown> {
  const pitr = source.pitr as NonNullable<Source['pitr']>;
  const targets = hostTargets(pitr);
  return {
    type,
    tier: source.tier.name,
    catalog: pitrCatalogName(source.name),
    retentionSeconds: String(source.tier.retentionSeconds),
    host: { targets },
    pitr: { stanza: pitr.stanza, osUser: pitr.osUser, configPath: HOST_CONFIG_PATH, configIncludePath: HOST_CONFIG_INCLUDE_PATH, repoPath: `/${pitrPrefix(source.name).replace(/\/$/, '')}` },
    target: { subnets: source.network.subnetIds, securityGroups: source.network.securityGroupIds },
  };
}

/**
 * A type's schedule: the tier's clock-aligned slots (backup-schedules.ts). A daily
 * differential beside a weekly full skips the full's day (Sunday), so that the week starts
 * with the full alone; an incremental that meets a running full or differential is skipped by
 * the document (the stanza's lock).
 */
export function pitrScheduleFor(type: PitrBackupType, everySeconds: number, timezone: string, types: readonly PitrBackupType[]): ScheduleSpec {
  if (type === 'diff' && everySeconds === 86_400 && types.includes('full')) {
    return { expression: `cron(0 ${DAILY_START_HOUR} ? * MON-SAT *)`, timezone };
  }
  return scheduleFor({ scheduleSeconds: everySeconds, timezone });
}

/** SSM's `Targets` of a source's host: its instance id, or its tag. */
export function hostTargets(pitr: NonNullable<Source['pitr']>): { Key: string; Values: string[] }[] {
  return 'instanceId' in pitr.host
    ? [{ Key: 'InstanceIds', Values: [pitr.host.instanceId] }]
    : [{ Key: `tag:${pitr.host.tag.key}`, Values: [pitr.host.tag.value] }];
}

/** SendCommand on each source's host: its instance by id, or the instances carrying its tag. */
export function sendCommandStatements(stack: Stack, sources: readonly Source[]): iam.PolicyStatement[] {
  const ids = sources.flatMap((source) => (source.pitr && 'instanceId' in source.pitr.host ? [source.pitr.host.instanceId] : []));
  const statements: iam.PolicyStatement[] = [];
  const instanceArn = (id: string) => id.startsWith('mi-')
    ? stack.formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: id })
    : stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: id });
  if (ids.length > 0) {
    statements.push(new iam.PolicyStatement({ sid: 'BackUpPitrHosts', actions: ['ssm:SendCommand'], resources: [...new Set(ids)].map(instanceArn) }));
  }
  sources.forEach((source, index) => {
    if (!source.pitr || !('tag' in source.pitr.host)) return;
    const { key, value } = source.pitr.host.tag;
    statements.push(new iam.PolicyStatement({
      sid: `BackUpPitrHostsByTag${index}`,
      actions: ['ssm:SendCommand'],
      resources: [stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' }), stack.formatArn({ service: 'ssm', resource: 'managed-instance', resourceName: '*' })],
      conditions: { StringEquals: { [`ssm:resourceTag/${key}`]: value } },
    }));
  });
  return statements;
}

/** Read-only access to the PITR sources' repositories: their objects, listing under them, decryption. */
export function grantPitrRepositoryRead(bucket: s3.IBucket, role: iam.IRole, sources: readonly Source[]): void {
  const prefixes = sources.filter((source) => source.pitr).map((source) => pitrPrefix(source.name));
  if (prefixes.length === 0) return;
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'ReadPitrRepositories', actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: prefixes.map((prefix) => bucket.arnForObjects(`${prefix}*`)),
  }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'ListPitrRepositories', actions: ['s3:ListBucket'], resources: [bucket.bucketArn], conditions: { StringLike: { 's3:prefix': prefixes.map((prefix) => `${prefix}*`) } },
  }));
  for (const prefix of prefixes) {
    acknowledgeWildcardResource(role, bucket.arnForObjects(`${prefix}*`), `Reads the pgBackRest repository under ${prefix} (its sets and WAL, keys made by pgBackRest); reads only.`);
  }
}
