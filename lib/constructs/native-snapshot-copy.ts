import { ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import * as path from 'node:path';
import type { Source } from '../config/types';
import { snapshotCopyPrefix } from '../rds/naming';
import { copyNameProblem, OFFSITE_AGE_METRIC, type ClusterCopySource, type OffsiteCopySource } from '../rds/snapshot-copy';
import { acknowledgeWildcardResource } from './nag';

const REPO_ROOT = path.join(__dirname, '..', '..');
const NAMESPACE = 'Lifeboat';
/** How often each copier runs. */
export const SNAPSHOT_COPY_INTERVAL = Duration.hours(1);
/**
 * How old the newest offsite copy may be before it is alarming: RDS takes a cluster's automated
 * snapshot once a day, a cross-region copy takes hours (RDS queues them), and the copier runs
 * hourly. Cross-account, the offsite account's copy comes an hour or two after the staging copy.
 */
export const OFFSITE_COPY_MAX_AGE = Duration.hours(30);

/**
 * What RDS needs of the caller to encrypt a snapshot copy with a key: it works with the key
 * through a grant the caller makes for it (CreateGrant) after looking the key up (DescribeKey).
 */
const RDS_KEY_ACTIONS = ['kms:CreateGrant', 'kms:DescribeKey'];

/**
 * The primary copiers' roles are under this path (one copier per native shard); the offsite key
 * policy admits them by it.
 */
export const NATIVE_SNAPSHOT_COPY_ROLE_PATH = '/lifeboat/native-snapshot-copy/';

/** The ARN pattern of the primary account's copier roles, as the offsite key policy matches them. */
export function nativeSnapshotCopyRoles(partition: string, primaryAccount: string): string {
  return `arn:${partition}:iam::${primaryAccount}:role${NATIVE_SNAPSHOT_COPY_ROLE_PATH}*`;
}

/** The alarm threshold on `NativeOffsiteAgeSeconds` of a source: OFFSITE_COPY_MAX_AGE, or its RPO when that is longer. */
export function offsiteCopyAlarmThresholdSeconds(source: Source): number {
  return Math.max(OFFSITE_COPY_MAX_AGE.toSeconds(), source.tier.rpoSeconds);
}

export interface NativeSnapshotCopyProps {
  /** Prefix of the names (role, alarms). */
  readonly appName: string;
  /** The DB cluster sources (`rds.kind` 'cluster'); at least one. */
  readonly sources: readonly Source[];
  /** Where the copies go: the offsite region, its account when another, and its key (a key or alias ARN of that region). */
  readonly offsite: { readonly region: string; readonly account?: string; readonly keyArn: string };
  /** The account this stack deploys to. */
  readonly primaryAccount: string;
  /**
   * Receives ALARM and OK of `<appName>-native-offsite-<source>` (the newest offsite copy older
   * than OFFSITE_COPY_MAX_AGE, missing data breaching), one per source.
   * @default - no alarms here (another construct alarms on `NativeOffsiteAgeSeconds`)
   */
  readonly alarmTopic?: sns.ITopic;
}

/**
 * The offsite copy of DB clusters' point-in-time recovery, primary account (lib/rds/snapshot-copy.ts):
 * an hourly Lambda copies each cluster source's newest automated snapshot to the offsite region
 * with the offsite key; when the offsite account is another, it shares each staging copy with it
 * (`OffsiteSnapshotCopy` copies it there) and deletes its staging copies after 3 days; with one
 * account the copies are the offsite copies and are kept for the tier's retention.
 * The role may copy exactly the sources' automated snapshots into `lifeboat-<source>-*`, and
 * delete, tag and share only those.
 */
export class NativeSnapshotCopy extends Construct {
  public readonly function: nodejs.NodejsFunction;
  public readonly role: iam.Role;
  public readonly schedule: scheduler.Schedule;
  /** `<appName>-native-offsite-<source>` by source; empty without `alarmTopic`. */
  public readonly alarms: Readonly<Record<string, cloudwatch.Alarm>>;

  constructor(scope: Construct, id: string, props: NativeSnapshotCopyProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const sources = clusterSources(props.sources, 'NativeSnapshotCopy');
    const crossAccount = props.offsite.account !== undefined && props.offsite.account !== props.primaryAccount;
    const copySources: ClusterCopySource[] = sources.map((source) => ({
      name: source.name,
      identifier: source.rds?.identifier as string,
      region: source.rds?.region as string,
      retentionSeconds: source.tier.retentionSeconds,
    }));

    this.role = new iam.Role(this, 'Role', {
      path: NATIVE_SNAPSHOT_COPY_ROLE_PATH,
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Lifeboat: copies the DB cluster sources\' newest automated snapshots to the offsite region',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole')],
    });
    const rdsArn = (region: string, account: string, resourceName: string) =>
      stack.formatArn({ service: 'rds', region, account, resource: 'cluster-snapshot', resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const copies = copySources.map((source) => rdsArn(props.offsite.region, props.primaryAccount, `${snapshotCopyPrefix(source.name)}*`));
    const automated = copySources.map((source) => rdsArn(source.region, props.primaryAccount, `rds:${source.identifier}-*`));

    // DescribeDBClusterSnapshots takes no resource-level permission worth scoping: it lists.
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ListClusterSnapshots', actions: ['rds:DescribeDBClusterSnapshots'], resources: ['*'] }));
    acknowledgeWildcardResource(this.role, '*', 'rds:DescribeDBClusterSnapshots lists snapshots (read only); every write is scoped to the sources\' snapshots.');
    // A cross-region copy is authorized on the source snapshot (the presigned request, in its
    // region) and on the copy (in the offsite region), tagged at creation.
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'CopyAutomatedSnapshots', actions: ['rds:CopyDBClusterSnapshot'], resources: [...automated, ...copies] }));
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ManageCopies',
      actions: ['rds:AddTagsToResource', 'rds:DeleteDBClusterSnapshot', ...(crossAccount ? ['rds:DescribeDBClusterSnapshotAttributes'] : [])],
      resources: copies,
    }));
    if (crossAccount) {
      // Sharing is only ever with the offsite account: the copier adds no other value.
      this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ShareCopiesWithOffsite', actions: ['rds:ModifyDBClusterSnapshotAttribute'], resources: copies }));
    }
    for (const arn of [...automated, ...copies]) acknowledgeWildcardResource(this.role, arn, 'The snapshots of one source: its automated snapshots (rds:<cluster>-<time>) and its copies (lifeboat-<source>-<time>).');

    // The offsite key encrypts the copies, through RDS in the offsite region only. A key named by
    // alias cannot be matched by IAM: then any key of that account and region, through RDS there
    // (cross-account, the offsite key's policy admits this role on its one key).
    const offsiteKey = /:key\//.test(props.offsite.keyArn)
      ? props.offsite.keyArn
      : stack.formatArn({ service: 'kms', region: props.offsite.region, account: props.offsite.account ?? props.primaryAccount, resource: 'key', resourceName: '*' });
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'EncryptCopiesWithOffsiteKey',
      actions: RDS_KEY_ACTIONS,
      resources: [offsiteKey],
      conditions: { StringEquals: { 'kms:ViaService': `rds.${props.offsite.region}.amazonaws.com` } },
    }));
    // The automated snapshot is encrypted with its cluster's key (aws/rds, or a customer key
    // Lifeboat is not told of): RDS reads it through a grant the caller makes, in its region.
    const sourceKeys = [...new Set(copySources.map((source) => source.region))].map((region) =>
      stack.formatArn({ service: 'kms', region, account: props.primaryAccount, resource: 'key', resourceName: '*' }));
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'ReadSourceSnapshotKeys',
      actions: RDS_KEY_ACTIONS,
      resources: sourceKeys,
      conditions: { StringEquals: { 'kms:ViaService': [...new Set(copySources.map((source) => `rds.${source.region}.amazonaws.com`))] } },
    }));
    for (const arn of [offsiteKey, ...sourceKeys]) {
      if (arn.endsWith('*')) acknowledgeWildcardResource(this.role, arn, 'Keys named by alias or not known to Lifeboat (the clusters\' own): only through RDS in that region.');
    }

    this.function = snapshotCopyFunction(this, {
      entry: 'native-snapshot-copy',
      description: 'Lifeboat: copies the DB cluster sources\' newest automated snapshots offsite',
      role: this.role,
      environment: {
        LIFEBOAT_SOURCES_JSON: JSON.stringify(copySources),
        LIFEBOAT_OFFSITE_REGION: props.offsite.region,
        LIFEBOAT_OFFSITE_KEY_ARN: props.offsite.keyArn,
        LIFEBOAT_PRIMARY_ACCOUNT: props.primaryAccount,
        ...(crossAccount ? { LIFEBOAT_OFFSITE_ACCOUNT: props.offsite.account as string } : {}),
        POWERTOOLS_SERVICE_NAME: 'lifeboat-native-snapshot-copy',
      },
    });
    this.schedule = hourly(this, this.function, 'Lifeboat: the offsite copy of DB clusters\' snapshots, hourly');

    const alarms: Record<string, cloudwatch.Alarm> = {};
    if (props.alarmTopic) {
      for (const source of sources) alarms[source.name] = offsiteAgeAlarm(this, `OffsiteAlarm-${source.name}`, `${props.appName}-native-offsite-${source.name}`, source, props.alarmTopic);
    }
    this.alarms = alarms;
  }
}

export interface OffsiteSnapshotCopyProps {
  readonly appName: string;
  /** The DB cluster sources (`rds.kind` 'cluster'); at least one. */
  readonly sources: readonly Source[];
  /** The account whose copier shares the staging copies. */
  readonly primaryAccount: string;
  /** The primary stack's region (its copier's role name). */
  readonly primaryRegion: string;
  /** The offsite bucket's key: it encrypts the staging copies and this account's copies. */
  readonly key: kms.IKey;
  /** Receives ALARM and OK of `<appName>-offsite-native-copy-<source>`. */
  readonly alarmTopic: sns.ITopic;
}

/**
 * The offsite account's copy of DB clusters' snapshots (lib/rds/snapshot-copy.ts), in the
 * offsite stack when the offsite account is another: an hourly Lambda copies each staging copy
 * the primary account shares into this account with this account's key, keeps them for the
 * tier's retention (never deleting the newest), and publishes `NativeOffsiteAgeSeconds` here,
 * alarmed per source (`<appName>-offsite-native-copy-<source>`, missing data breaching).
 * It also lets the primary account's copier role use the key through RDS in this region (the
 * staging copies are encrypted with it), by the key's policy.
 */
export class OffsiteSnapshotCopy extends Construct {
  public readonly function: nodejs.NodejsFunction;
  public readonly role: iam.Role;
  public readonly schedule: scheduler.Schedule;
  /** `<appName>-offsite-native-copy-<source>` by source. */
  public readonly alarms: Readonly<Record<string, cloudwatch.Alarm>>;

  constructor(scope: Construct, id: string, props: OffsiteSnapshotCopyProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const sources = clusterSources(props.sources, 'OffsiteSnapshotCopy');
    const copySources: OffsiteCopySource[] = sources.map((source) => ({ name: source.name, retentionSeconds: source.tier.retentionSeconds }));
    const viaRds = { 'kms:ViaService': `rds.${stack.region}.amazonaws.com` };

    // The primary copier encrypts its staging copies (in this region) with this key. Matched by
    // aws:PrincipalArn: a key policy naming a role that does not exist yet is refused, and this
    // stack deploys before the primary stack.
    const copierRoles = nativeSnapshotCopyRoles(stack.partition, props.primaryAccount);
    props.key.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'AllowRdsSnapshotCopiesFromPrimaryCopier',
      principals: [new iam.AccountPrincipal(props.primaryAccount)],
      actions: RDS_KEY_ACTIONS,
      resources: ['*'],
      conditions: { ArnLike: { 'aws:PrincipalArn': copierRoles }, StringEquals: viaRds },
    }));

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Lifeboat: copies the snapshots the primary account shares into the offsite account',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaBasicExecutionRole')],
    });
    const rdsArn = (account: string, resourceName: string) =>
      stack.formatArn({ service: 'rds', account, resource: 'cluster-snapshot', resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const staged = copySources.map((source) => rdsArn(props.primaryAccount, `${snapshotCopyPrefix(source.name)}*`));
    const own = copySources.map((source) => rdsArn(stack.account, `${snapshotCopyPrefix(source.name)}*`));
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ListClusterSnapshots', actions: ['rds:DescribeDBClusterSnapshots'], resources: ['*'] }));
    acknowledgeWildcardResource(this.role, '*', 'rds:DescribeDBClusterSnapshots lists snapshots (read only); every write is scoped to the sources\' copies.');
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'CopySharedSnapshots', actions: ['rds:CopyDBClusterSnapshot'], resources: [...staged, ...own] }));
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ManageCopies', actions: ['rds:AddTagsToResource', 'rds:DeleteDBClusterSnapshot'], resources: own }));
    for (const arn of [...staged, ...own]) acknowledgeWildcardResource(this.role, arn, 'The copies of one source (lifeboat-<source>-<time>), shared or this account\'s.');
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'EncryptCopiesWithKey', actions: RDS_KEY_ACTIONS, resources: [props.key.keyArn], conditions: { StringEquals: viaRds } }));

    this.function = snapshotCopyFunction(this, {
      entry: 'offsite-snapshot-copy',
      description: 'Lifeboat: copies the shared DB cluster snapshots into the offsite account',
      role: this.role,
      environment: {
        LIFEBOAT_SOURCES_JSON: JSON.stringify(copySources),
        LIFEBOAT_PRIMARY_ACCOUNT: props.primaryAccount,
        LIFEBOAT_KEY_ARN: props.key.keyArn,
        POWERTOOLS_SERVICE_NAME: 'lifeboat-offsite-snapshot-copy',
      },
    });
    this.schedule = hourly(this, this.function, 'Lifeboat: the offsite account\'s copy of DB clusters\' snapshots, hourly');

    const alarms: Record<string, cloudwatch.Alarm> = {};
    for (const source of sources) alarms[source.name] = offsiteAgeAlarm(this, `Alarm-${source.name}`, `${props.appName}-offsite-native-copy-${source.name}`, source, props.alarmTopic);
    this.alarms = alarms;
  }
}

/** The sources with an RDS DB cluster; throws naming any other, or a name RDS would refuse. */
function clusterSources(sources: readonly Source[], construct: string): Source[] {
  const problems = sources.flatMap((source) => [
    ...(source.rds?.kind === 'cluster' ? [] : [`source "${source.name}" is not an RDS DB cluster source (rds.kind: ${source.rds?.kind ?? 'none'})`]),
    ...[copyNameProblem(source.name)].filter((problem): problem is string => problem !== undefined),
  ]);
  if (sources.length === 0) problems.push('no DB cluster source');
  if (problems.length > 0) throw new Error(`${construct}: ${problems.join('; ')}`);
  return [...sources];
}

function snapshotCopyFunction(scope: Construct, opts: { entry: string; description: string; role: iam.IRole; environment: Record<string, string> }): nodejs.NodejsFunction {
  const fn = new nodejs.NodejsFunction(scope, 'Function', {
    entry: path.join(REPO_ROOT, 'lambdas', opts.entry, 'handler.ts'),
    handler: 'handler',
    description: opts.description,
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    memorySize: 256,
    // A few RDS calls per source; RDS's Describe throttling is ridden out by the client's retries.
    timeout: Duration.minutes(5),
    role: opts.role,
    environment: { ...opts.environment, POWERTOOLS_METRICS_NAMESPACE: NAMESPACE },
    logGroup: new logs.LogGroup(scope, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
    bundling: { minify: true, sourceMap: true, externalModules: [] },
  });
  Validations.of(opts.role).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason: 'AWSLambdaBasicExecutionRole allows only logs:CreateLogGroup, logs:CreateLogStream and logs:PutLogEvents; everything else is granted per function.',
  });
  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-L1',
    reason: 'Lifeboat pins Node 22 everywhere (the worker image, the CLI, the tests); the runtime moves with that pin.',
  });
  return fn;
}

/** An hourly schedule: a missed run is caught up by the next one (the copier reconciles). */
function hourly(scope: Construct, fn: lambda.IFunction, description: string): scheduler.Schedule {
  const role = new iam.Role(scope, 'ScheduleRole', {
    assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(scope).account } } }),
    description: 'Lifeboat: lets EventBridge Scheduler invoke the snapshot copier',
  });
  acknowledgeWildcardResource(role, `${fn.functionArn}:*`, 'Invoking the copier function is granted on the function and its versions (ARN:*); nothing else.');
  return new scheduler.Schedule(scope, 'Schedule', {
    description,
    schedule: scheduler.ScheduleExpression.rate(SNAPSHOT_COPY_INTERVAL),
    target: new targets.LambdaInvoke(fn, { role, retryAttempts: 2, maxEventAge: Duration.minutes(50) }),
  });
}

function offsiteAgeAlarm(scope: Construct, id: string, alarmName: string, source: Source, topic: sns.ITopic): cloudwatch.Alarm {
  const threshold = offsiteCopyAlarmThresholdSeconds(source);
  const alarm = new cloudwatch.Alarm(scope, id, {
    alarmName,
    alarmDescription: `The newest offsite copy of ${source.name}'s cluster snapshots (${source.rds?.identifier}) is older than ${threshold / 3600} hours, or none is measured (copier down, copy failing, key unusable).`,
    metric: new cloudwatch.Metric({
      namespace: NAMESPACE,
      metricName: OFFSITE_AGE_METRIC,
      dimensionsMap: { source: source.name },
      statistic: 'Maximum',
      period: SNAPSHOT_COPY_INTERVAL,
    }),
    threshold,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    evaluationPeriods: 1,
    // The copier publishes hourly: an hour without a datapoint is a copier that did not measure.
    treatMissingData: cloudwatch.TreatMissingData.BREACHING,
  });
  alarm.addAlarmAction(new actions.SnsAction(topic));
  alarm.addOkAction(new actions.SnsAction(topic));
  return alarm;
}

