import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import * as path from 'node:path';
import type { Source } from '../config/types';
import {
  nativeCheckSource, nativeOffsiteThresholdSeconds, nativeRpoThresholdSeconds, NATIVE_METRICS, serializeNativeSources,
} from '../rds/native-checks';
import { acknowledgeWildcardResource } from './nag';

const REPO_ROOT = path.join(__dirname, '..', '..');
const DEFAULT_NAMESPACE = 'Lifeboat';
/** How often the checks run, and the period of the alarms on what they publish. */
export const NATIVE_CHECK_INTERVAL = Duration.minutes(5);
/** The period of a cluster's offsite alarm: the snapshot copier publishes its NativeOffsiteAgeSeconds hourly. */
const CLUSTER_OFFSITE_PERIOD = Duration.hours(1);

/**
 * Lambda holds 4 KB of environment in all: the sources' list must leave room for the other
 * variables (a source takes about 100 bytes: some 30 sources per NativePitrChecks).
 */
const MAX_SOURCES_JSON_BYTES = 3_000;

/** The alarm names of an RDS/Aurora source (a contract: the README and the runbook name them). */
export function nativeAlarmNames(prefix: string, source: string): { readonly retention: string; readonly rpo: string; readonly offsite: string } {
  return { retention: `${prefix}-native-retention-${source}`, rpo: `${prefix}-native-rpo-${source}`, offsite: `${prefix}-native-offsite-${source}` };
}

/** The checks' roles are under this path: the offsite key's policy admits them by it (another account). */
export const NATIVE_CHECKS_ROLE_PATH = '/lifeboat/native-checks/';

export interface NativePitrChecksProps {
  /** The app's name (the role's description). */
  readonly appName: string;
  /** The RDS/Aurora sources (those with `rds`); at least one. */
  readonly sources: readonly Source[];
  /**
   * The offsite region the DB instances' automated backups must be replicated to, and the key
   * (a key of that region, in this account) replicated backups of encrypted instances are
   * encrypted with when the checks start a replication (managed sources only).
   */
  readonly offsite: { readonly region: string; readonly keyArn: string };
  /**
   * CloudWatch namespace of the metrics.
   * @default 'Lifeboat'
   */
  readonly namespace?: string;
}

/**
 * The native PITR checks of RDS/Aurora sources (lib/rds/native-checks.ts): a Lambda run every 5
 * minutes by EventBridge Scheduler publishes per source the retention shortfall, the age of
 * LatestRestorableTime and, for DB instances, the age of the automated backups replicated to
 * the offsite region; with manageNativeBackups it raises the retention and starts the
 * replication. Its role reads exactly the sources (the replicated backups' ids are RDS's: read
 * by region), and may modify and replicate only the managed sources, with the offsite key
 * through RDS in the offsite region only.
 */
export class NativePitrChecks extends Construct {
  public readonly function: nodejs.NodejsFunction;
  public readonly role: iam.Role;
  public readonly schedule: scheduler.Schedule;

  constructor(scope: Construct, id: string, props: NativePitrChecksProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const sources = rdsSources(props.sources, 'NativePitrChecks');
    const checked = sources.map(nativeCheckSource);
    const arn = (region: string, resource: string, resourceName: string) =>
      stack.formatArn({ service: 'rds', region, resource, resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const instances = checked.filter((source) => source.kind === 'instance');
    const clusters = checked.filter((source) => source.kind === 'cluster');
    const instanceArns = (list: typeof checked) => list.map((source) => arn(source.region, 'db', source.identifier));
    const clusterArns = (list: typeof checked) => list.map((source) => arn(source.region, 'cluster', source.identifier));
    const replicated = arn(props.offsite.region, 'auto-backup', '*');

    const sourcesJson = serializeNativeSources(checked);
    if (Buffer.byteLength(sourcesJson) > MAX_SOURCES_JSON_BYTES) {
      throw new Error(`NativePitrChecks: ${checked.length} sources take ${Buffer.byteLength(sourcesJson)} bytes of the function's environment (Lambda holds 4 KB in all): split them over several NativePitrChecks (one per source shard)`);
    }

    // No fixed name: one NativePitrChecks per shard. The path lets an offsite key of another
    // account admit these roles for the replication (offsite-stack.ts); the same account's key delegates to IAM.
    this.role = new iam.Role(this, 'Role', {
      path: NATIVE_CHECKS_ROLE_PATH,
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.appName}: checks the RDS/Aurora sources' native point-in-time recovery`,
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole')],
    });
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'AWSLambdaBasicExecutionRole allows only logs:CreateLogGroup, logs:CreateLogStream and logs:PutLogEvents; everything else is granted per function.',
    });
    if (instances.length > 0) {
      // The instance and its own automated backups (described by DBInstanceIdentifier: authorized on the instance).
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({
        sid: 'ReadInstances', actions: ['rds:DescribeDBInstances', 'rds:DescribeDBInstanceAutomatedBackups'], resources: instanceArns(instances),
      }));
      // The replicated backups in the offsite region are described by their ARN, whose id RDS gives.
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadReplicatedBackups', actions: ['rds:DescribeDBInstanceAutomatedBackups'], resources: [replicated] }));
      acknowledgeWildcardResource(this.role, replicated, 'The replicated automated backups of the offsite region, read only: their ids (ab-…) are RDS\'s, listed by the source instance.');
    }
    if (clusters.length > 0) {
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadClusters', actions: ['rds:DescribeDBClusters'], resources: clusterArns(clusters) }));
    }

    const managed = checked.filter((source) => source.manage);
    const managedInstances = managed.filter((source) => source.kind === 'instance');
    const managedClusters = managed.filter((source) => source.kind === 'cluster');
    if (managedInstances.length > 0) {
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'RaiseInstanceRetention', actions: ['rds:ModifyDBInstance'], resources: instanceArns(managedInstances) }));
      // Started in the offsite region: authorized on the source and on the backups it creates there.
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({
        sid: 'ReplicateAutomatedBackups', actions: ['rds:StartDBInstanceAutomatedBackupsReplication'], resources: [...instanceArns(managedInstances), replicated],
      }));
      // A key named by alias cannot be matched by IAM: then any key of the alias's account (the
      // offsite account's, when another) in the offsite region, through RDS there.
      const aliasAccount = /^arn:[^:]+:kms:[^:]*:(\d{12}):alias\//.exec(props.offsite.keyArn)?.[1];
      const offsiteKey = /:key\//.test(props.offsite.keyArn)
        ? props.offsite.keyArn
        : stack.formatArn({ service: 'kms', region: props.offsite.region, account: aliasAccount ?? stack.account, resource: 'key', resourceName: '*' });
      if (offsiteKey !== props.offsite.keyArn) acknowledgeWildcardResource(this.role, offsiteKey, 'The offsite key is named by alias: any key of the offsite region, only through RDS there.');
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({
        sid: 'EncryptReplicasWithOffsiteKey',
        actions: ['kms:CreateGrant', 'kms:DescribeKey'],
        resources: [offsiteKey],
        conditions: { StringEquals: { 'kms:ViaService': `rds.${props.offsite.region}.amazonaws.com` } },
      }));
    }
    if (managedClusters.length > 0) {
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'RaiseClusterRetention', actions: ['rds:ModifyDBCluster'], resources: clusterArns(managedClusters) }));
    }

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: path.join(REPO_ROOT, 'lambdas', 'native-checks', 'handler.ts'),
      handler: 'handler',
      description: 'Lifeboat: checks the RDS/Aurora sources\' native point-in-time recovery (window, LatestRestorableTime, offsite replication)',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      // A few RDS calls per source, one source at a time; throttling is ridden out by the client's retries.
      timeout: Duration.minutes(2),
      role: this.role,
      environment: {
        LIFEBOAT_NATIVE_SOURCES_JSON: sourcesJson,
        LIFEBOAT_OFFSITE_REGION: props.offsite.region,
        LIFEBOAT_OFFSITE_KEY_ARN: props.offsite.keyArn,
        POWERTOOLS_METRICS_NAMESPACE: props.namespace ?? DEFAULT_NAMESPACE,
        POWERTOOLS_SERVICE_NAME: 'lifeboat-native-checks',
      },
      logGroup: new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
      bundling: { minify: true, sourceMap: true, externalModules: [] },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Lifeboat pins Node 22 everywhere (the worker image, the CLI, the tests); the runtime moves with that pin.',
    });

    // A missed invocation needs no dead-letter queue: the RPO alarms treat missing data as breaching.
    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: 'Lifeboat: lets EventBridge Scheduler invoke the native PITR checks',
    });
    acknowledgeWildcardResource(scheduleRole, `${this.function.functionArn}:*`, 'Invoking the checks function is granted on the function and its versions (ARN:*); nothing else.');
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'Lifeboat: the native PITR checks of RDS/Aurora sources, every 5 minutes',
      schedule: scheduler.ScheduleExpression.rate(NATIVE_CHECK_INTERVAL),
      target: new targets.LambdaInvoke(this.function, { role: scheduleRole, retryAttempts: 2, maxEventAge: Duration.minutes(4) }),
    });
  }
}

export interface NativePitrAlarmsProps {
  /** The RDS/Aurora sources (those with `rds`). */
  readonly sources: readonly Source[];
  /** Receives ALARM and OK of every alarm. */
  readonly alarmTopic: sns.ITopic;
  /**
   * Prefix of the alarm names: `<prefix>-native-retention-<source>`, `-native-rpo-`, `-native-offsite-`.
   * @default 'lifeboat'
   */
  readonly alarmNamePrefix?: string;
  /**
   * CloudWatch namespace of the metrics.
   * @default 'Lifeboat'
   */
  readonly namespace?: string;
  /**
   * The offsite region, for the commands the offsite alarms' descriptions give.
   * @default - the descriptions say `<offsite region>`
   */
  readonly offsiteRegion?: string;
}

/**
 * Three alarms per RDS/Aurora source, on what NativePitrChecks (and, for clusters' offsite
 * copy, the snapshot copier) publish:
 * - `NativeRetention-<source>`: the retention period short of the tier's window by a day or more
 *   (missing data not breaching: the RPO alarm pages for a dead check);
 * - `NativeRpo-<source>`: LatestRestorableTime older than the tier's RPO, never below 15 minutes
 *   (missing data breaching: no measure is no proof);
 * - `NativeOffsite-<source>`: the offsite copy older than RPO + 1 h (an instance's replicated
 *   backups, measured every 5 minutes) or 2 days (a cluster's daily snapshot copy, measured
 *   hourly); missing data breaching.
 */
export class NativePitrAlarms extends Construct {
  /** The three alarms of each source, by source name. */
  public readonly bySource: Record<string, cloudwatch.Alarm[]>;

  constructor(scope: Construct, id: string, props: NativePitrAlarmsProps) {
    super(scope, id);
    const namespace = props.namespace ?? DEFAULT_NAMESPACE;
    const prefix = props.alarmNamePrefix ?? 'lifeboat';
    this.bySource = {};
    for (const source of rdsSources(props.sources, 'NativePitrAlarms')) {
      const rds = source.rds as NonNullable<Source['rds']>;
      const names = nativeAlarmNames(prefix, source.name);
      const alarm = (alarmId: string, alarmName: string, metricName: string, unit: cloudwatch.Unit, period: Duration, threshold: number,
        comparisonOperator: cloudwatch.ComparisonOperator, treatMissingData: cloudwatch.TreatMissingData, alarmDescription: string) => {
        const created = new cloudwatch.Alarm(this, alarmId, {
          alarmName,
          alarmDescription,
          metric: new cloudwatch.Metric({ namespace, metricName, dimensionsMap: { source: source.name }, statistic: cloudwatch.Stats.MAXIMUM, period, unit }),
          threshold,
          comparisonOperator,
          evaluationPeriods: 1,
          treatMissingData,
        });
        created.addAlarmAction(new actions.SnsAction(props.alarmTopic));
        created.addOkAction(new actions.SnsAction(props.alarmTopic));
        return created;
      };
      const rpo = nativeRpoThresholdSeconds(source.tier.rpoSeconds);
      const offsite = nativeOffsiteThresholdSeconds(rds.kind, source.tier.rpoSeconds);
      const above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD;
      this.bySource[source.name] = [
        alarm(`NativeRetention-${source.name}`, names.retention, NATIVE_METRICS.retentionShortfall, cloudwatch.Unit.COUNT, NATIVE_CHECK_INTERVAL, 1,
          cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, cloudwatch.TreatMissingData.NOT_BREACHING, retentionDescription(source)),
        alarm(`NativeRpo-${source.name}`, names.rpo, NATIVE_METRICS.restorableAge, cloudwatch.Unit.SECONDS, NATIVE_CHECK_INTERVAL, rpo,
          above, cloudwatch.TreatMissingData.BREACHING, rpoDescription(source, rpo)),
        alarm(`NativeOffsite-${source.name}`, names.offsite, NATIVE_METRICS.offsiteAge, cloudwatch.Unit.SECONDS,
          rds.kind === 'instance' ? NATIVE_CHECK_INTERVAL : CLUSTER_OFFSITE_PERIOD, offsite, above, cloudwatch.TreatMissingData.BREACHING,
          offsiteDescription(source, offsite, props.offsiteRegion ?? '<offsite region>',
            Stack.of(this).formatArn({ service: 'rds', region: rds.region, resource: 'db', resourceName: rds.identifier, arnFormat: ArnFormat.COLON_RESOURCE_NAME }))),
      ];
    }
  }
}

function rdsSources(sources: readonly Source[], construct: string): Source[] {
  const found = sources.filter((source) => source.rds !== undefined);
  if (found.length !== sources.length) {
    throw new Error(`${construct}: sources without rds: ${sources.filter((source) => !source.rds).map((source) => source.name).join(', ')}`);
  }
  return found;
}

const describeCommand = (rds: NonNullable<Source['rds']>) => (rds.kind === 'instance'
  ? `aws rds describe-db-instances --db-instance-identifier ${rds.identifier} --region ${rds.region} --query 'DBInstances[0].[BackupRetentionPeriod,LatestRestorableTime,DBInstanceStatus,DBInstanceAutomatedBackupsReplications]'`
  : `aws rds describe-db-clusters --db-cluster-identifier ${rds.identifier} --region ${rds.region} --query 'DBClusters[0].[BackupRetentionPeriod,EarliestRestorableTime,LatestRestorableTime,Status]'`);

function hours(seconds: number): string {
  return seconds % 3_600 === 0 ? `${seconds / 3_600} h` : `${Math.round(seconds / 60)} min`;
}

function retentionDescription(source: Source): string {
  const rds = source.rds as NonNullable<Source['rds']>;
  const modify = rds.kind === 'instance' ? `modify-db-instance --db-instance-identifier` : `modify-db-cluster --db-cluster-identifier`;
  return `${source.name}: the backup retention period of RDS ${rds.kind} ${rds.identifier} (${rds.region}) is shorter than the ${rds.requiredWindowDays} days its tier (${source.tier.name}) requires: ` +
    `restores to a point older than that are impossible. Check first: ${describeCommand(rds)}. ` +
    `Fix: aws rds ${modify} ${rds.identifier} --backup-retention-period ${rds.requiredWindowDays} --apply-immediately --region ${rds.region}` +
    `${rds.manage ? ' (manageNativeBackups is on: the checks tried; their log says why it did not take)' : ' (or set manageNativeBackups on the tier)'}.`;
}

function rpoDescription(source: Source, thresholdSeconds: number): string {
  const rds = source.rds as NonNullable<Source['rds']>;
  return `${source.name}: LatestRestorableTime of RDS ${rds.kind} ${rds.identifier} (${rds.region}) is older than ${hours(thresholdSeconds)} (tier ${source.tier.name}'s RPO; RDS normally trails by about 5 minutes), ` +
    `or the native checks measured nothing (the instance missing, automated backups off, the checks failing: see the lifeboat-native-checks logs): the RPO is broken. ` +
    `Check first: ${describeCommand(rds)}; then the instance's events: aws rds describe-events --source-type ${rds.kind === 'instance' ? 'db-instance' : 'db-cluster'} --source-identifier ${rds.identifier} --duration 1440 --region ${rds.region}.`;
}

function offsiteDescription(source: Source, thresholdSeconds: number, offsiteRegion: string, instanceArn: string): string {
  const rds = source.rds as NonNullable<Source['rds']>;
  if (rds.kind === 'instance') {
    return `${source.name}: the automated backups of RDS instance ${rds.identifier} replicated to the offsite region end more than ${hours(thresholdSeconds)} ago (tier ${source.tier.name}'s RPO + 1 h), ` +
      `or none are measured (replication stopped or never started; a disabled or inaccessible KMS key stops it silently). ` +
      `Check first: aws rds describe-db-instance-automated-backups --db-instance-identifier ${rds.identifier} --region ${offsiteRegion} --query 'DBInstanceAutomatedBackups[].[Status,RestoreWindow.LatestTime,KmsKeyId]'; ` +
      `then the key: aws kms describe-key --key-id <KmsKeyId> --region ${offsiteRegion} --query KeyMetadata.KeyState. ` +
      `Restart: aws rds start-db-instance-automated-backups-replication --source-db-instance-arn ${instanceArn} --backup-retention-period ${rds.requiredWindowDays} --kms-key-id <offsite key ARN> --region ${offsiteRegion}.`;
  }
  return `${source.name}: the newest offsite copy of RDS cluster ${rds.identifier}'s snapshots is more than ${thresholdSeconds / 86_400} days old (RDS snapshots a cluster daily), or none is measured (copier down, copy failing, key unusable). ` +
    `Check first: aws rds describe-db-cluster-snapshots --snapshot-type manual --region ${offsiteRegion} --query "DBClusterSnapshots[?starts_with(DBClusterSnapshotIdentifier,'lifeboat-${source.name}-')].[DBClusterSnapshotIdentifier,Status,SnapshotCreateTime]"; ` +
    `then the copier's logs (lifeboat-native-snapshot-copy).`;
}
