import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { flexibleWindowFor } from './backup-schedules';
import * as path from 'node:path';
import type { Source, SourceMethod } from '../config/types';
import { binlogIndexPrefix, binlogStatePrefix } from '../domain/layout';
import { archivePrefix, repositoryKey } from '../pitr/archive-state';
import type { PitrPlan } from '../pitr/plan';
import { pitrPrefix } from '../pitr/setup';
import type { WatchedSource } from '../steps/watchdog';
import { acknowledgeWildcardResource } from './nag';
import { RunGrants } from './run-grants';

const REPO_ROOT = path.join(__dirname, '..', '..');
export const DEFAULT_WATCHDOG_NAMESPACE = 'Lifeboat';
/** How often the watchdog measures, and the period of the alarms on what it publishes. */
export const WATCHDOG_INTERVAL = Duration.minutes(5);
/** S3 Replication Time Control's window: the offsite copy may lag the primary by this much. */
export const OFFSITE_GRACE = Duration.minutes(15);
/**
 * How long a WAL segment PostgreSQL hands to archive_command may take to reach S3 on a healthy
 * host: pgBackRest's archive-timeout (60 s by default) bounds one archive-push.
 */
export const ARCHIVE_PUSH_ALLOWANCE = Duration.minutes(1);

export interface WatchdogProps {
  /** The resolved sources: each one's tier RPO is its alarm threshold. */
  readonly sources: readonly Source[];
  /** The primary bucket (read only: documents under `runs/`, and each PITR source's archive listing and backup.info). */
  readonly bucket: s3.IBucket;
  /** The bucket's key (kms:Decrypt only). */
  readonly bucketKey: kms.IKey;
  /** Receives ALARM and OK of every watchdog alarm. */
  readonly alarmTopic: sns.ITopic;
  /**
   * CloudWatch namespace of the metrics.
   * @default 'Lifeboat'
   */
  readonly namespace?: string;
  /**
   * How long a run may take from its slot to its verification (schedule window, dump,
   * verify) before its absence is alarming.
   * @default - 10 minutes
   */
  readonly runAllowance?: Duration;
  /**
   * Whether the watchdog holds the alarms per source (`WatchdogAlarms`); false when they live
   * elsewhere (`WatchdogAlarms` in the source shards).
   * @default true
   */
  readonly perSourceAlarms?: boolean;
}

/**
 * The age above which a source's newest verified backup is alarming: its RPO, but never less
 * than one schedule interval plus the flexible window plus the run allowance — with a 15-minute
 * schedule and a 15-minute RPO the newest backup is legitimately older than 15 minutes while
 * the next one runs, and an alarm at exactly the RPO would flap every cycle.
 */
export function rpoAlarmThresholdSeconds(tier: { readonly rpoSeconds: number; readonly scheduleSeconds: number }, runAllowanceSeconds = 600): number {
  return Math.max(tier.rpoSeconds, tier.scheduleSeconds + flexibleWindowFor(tier).toSeconds() + runAllowanceSeconds);
}

/**
 * The age above which a PITR source's newest archived WAL segment is alarming: the plan's
 * archive-age alarm, the RPO (lib/pitr/plan.ts), but never less than archive_timeout plus the
 * time archive-push takes. A server that writes hands a segment to the archive at least every
 * archive_timeout, and the plan keeps archive_timeout at most a third of the RPO: on a healthy
 * host the newest segment is at most archive_timeout + ARCHIVE_PUSH_ALLOWANCE old, two thirds
 * of the RPO below the alarm (a minute or more). Unlike a logical backup's, no schedule interval
 * is added: the archive is continuous.
 */
export function archiveAgeAlarmThresholdSeconds(
  plan: Pick<PitrPlan, 'archiveAgeAlarmSeconds' | 'archiveTimeoutSeconds'>,
  pushAllowanceSeconds = ARCHIVE_PUSH_ALLOWANCE.toSeconds(),
): number {
  return Math.max(plan.archiveAgeAlarmSeconds, plan.archiveTimeoutSeconds + pushAllowanceSeconds);
}

/** What the watchdog function is told of a source: its methods and stanza (or `binlog`) only when it has PITR (the environment holds 4 KB in all). */
export function watchedSource(source: Source): WatchedSource {
  const methods = source.methods;
  const onlyLogical = methods.length === 1 && methods[0] === 'logical';
  return {
    name: source.name,
    rpoSeconds: source.tier.rpoSeconds,
    ...(onlyLogical ? {} : { methods: [...methods] }),
    ...(source.pitr ? { stanza: source.pitr.stanza } : {}),
    ...(source.binlog ? { binlog: true } : {}),
  };
}

/**
 * The age above which a MySQL/MariaDB PITR source's binary-log archive is alarming: the plan's
 * archive-age alarm (the RPO). The archiver runs every third of it and its run's completeAsOf is
 * its start, so on a healthy source the archive is at most one interval plus a run old.
 */
export function binlogAgeAlarmThresholdSeconds(plan: { readonly archiveAgeAlarmSeconds: number }): number {
  return plan.archiveAgeAlarmSeconds;
}

/**
 * The RPO watchdog (lib/steps/watchdog.ts): a Lambda run every 5 minutes by EventBridge
 * Scheduler publishes, per source, the age of its newest verified backup; one alarm per
 * source fires when that age passes the tier's RPO. Missing data breaches, so the same alarm
 * fires when the watchdog is dead, its schedule disabled, or the source never backed up.
 * A second alarm per source fires when the newest offsite-confirmed backup is older than the
 * RPO plus the 15 minutes replication may take (missing data there is not breaching).
 *
 * A source with method 'pitr' is watched on its WAL archive (`pitr/<source>/` in the bucket):
 * its RPO alarm is on the age of the newest archived segment, and a second alarm fires on a gap
 * in the WAL its kept sets need. A source with both methods keeps its logical backups' two
 * alarms as well, named `logical-rpo` and `logical-offsite-rpo`.
 * Per source: two alarms per method. Shared: the function, its role and log group, the schedule and its role.
 */
export class Watchdog extends Construct {
  public readonly function: nodejs.NodejsFunction;
  public readonly schedule: scheduler.Schedule;
  /** See `WatchdogAlarms`; empty with `perSourceAlarms: false`. */
  public readonly alarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** See `WatchdogAlarms`; empty with `perSourceAlarms: false`. */
  public readonly offsiteAlarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** See `WatchdogAlarms`; empty with `perSourceAlarms: false`. */
  public readonly logicalAlarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** See `WatchdogAlarms`; empty with `perSourceAlarms: false`. */
  public readonly gapAlarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** See `WatchdogAlarms`; empty with `perSourceAlarms: false`. */
  public readonly bySource: Readonly<Record<string, readonly cloudwatch.Alarm[]>>;

  constructor(scope: Construct, id: string, props: WatchdogProps) {
    super(scope, id);
    const namespace = props.namespace ?? DEFAULT_WATCHDOG_NAMESPACE;
    const watched: WatchedSource[] = props.sources.map(watchedSource);

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: path.join(REPO_ROOT, 'lambdas', 'watchdog', 'handler.ts'),
      handler: 'handler',
      description: 'Lifeboat: publishes the age of the newest verified backup of each source',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: Duration.minutes(1),
      environment: {
        LIFEBOAT_BUCKET: props.bucket.bucketName,
        LIFEBOAT_SOURCES_JSON: JSON.stringify(watched),
        POWERTOOLS_METRICS_NAMESPACE: namespace,
        POWERTOOLS_SERVICE_NAME: 'lifeboat-watchdog',
      },
      logGroup: new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS, removalPolicy: RemovalPolicy.RETAIN }),
      bundling: { minify: true, sourceMap: true, externalModules: [] },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'AWSLambdaBasicExecutionRole allows only logs:CreateLogGroup, logs:CreateLogStream and logs:PutLogEvents (on any log group: it cannot read or delete logs); everything else is granted per function.',
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Lifeboat pins Node 22 everywhere (the worker image, the CLI, the tests); the runtime moves with that pin.',
    });

    // Read only: the catalog lists runs/<source>/ and reads the JSON files of a few runs.
    const role = this.function.role as iam.IRole;
    // The age of a source's newest verified and offsite-confirmed run: its JSON documents only.
    new RunGrants(props.bucket, props.bucketKey).readDocuments(role, ['manifest.json', 'verification.json', 'offsite.json']);
    grantArchiveReads(role, props.bucket, props.bucketKey, props.sources);
    grantBinlogReads(role, props.bucket, props.bucketKey, props.sources);

    // A missed invocation is not worth a dead-letter queue: the alarms treat the missing
    // data as breaching, and the next invocation is 5 minutes away.
    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } } }),
      description: 'Lifeboat: lets EventBridge Scheduler invoke the RPO watchdog',
    });
    acknowledgeWildcardResource(scheduleRole, `${this.function.functionArn}:*`,
      'Invoking the watchdog function is granted on the function and its versions (ARN:*); nothing else.');
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'Lifeboat: the RPO watchdog, every 5 minutes',
      schedule: scheduler.ScheduleExpression.rate(WATCHDOG_INTERVAL),
      target: new targets.LambdaInvoke(this.function, {
        role: scheduleRole,
        retryAttempts: 2,
        maxEventAge: Duration.minutes(4),
      }),
    });

    const created = props.perSourceAlarms === false ? emptyAlarms() : createWatchdogAlarms(this, props);
    this.alarms = created.alarms;
    this.offsiteAlarms = created.offsiteAlarms;
    this.logicalAlarms = created.logicalAlarms;
    this.gapAlarms = created.gapAlarms;
    this.bySource = created.bySource;
  }
}

/**
 * The least the measure of each PITR source reads in its repository (`pitr/<source>/`): the
 * listing of its stanza's archive (exactly that prefix) and its stanza's backup.info; never a
 * WAL segment, a set's files or another prefix. One statement of each kind for all the sources:
 * the role's policy grows by a prefix and a key per source (past IAM's size limit for one
 * policy, CDK moves the rest into managed policies of the role).
 */
function grantArchiveReads(role: iam.IRole, bucket: s3.IBucket, key: kms.IKey, sources: readonly Source[]): void {
  const repositories = sources.flatMap((source) => (source.pitr ? [{ repoPath: `/${pitrPrefix(source.name)}`, stanza: source.pitr.stanza }] : []));
  if (repositories.length === 0) return;
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['s3:ListBucket'],
    resources: [bucket.bucketArn],
    conditions: { StringEquals: { 's3:prefix': repositories.map(archivePrefix) } },
  }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['s3:GetObject'],
    resources: repositories.map((repository) => bucket.arnForObjects(repositoryKey(repository.repoPath, 'backup', repository.stanza, 'backup.info'))),
  }));
  // pgBackRest writes the repository with SSE-KMS under the bucket's key, as the runs are.
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }));
}

/**
 * What the measure of each MySQL/MariaDB PITR source reads of its binary-log archive
 * (`binlog/<source>/`, lib/binlog/watch.ts): the listing of its states and of its index (exactly
 * those prefixes) and its state documents; never a binary log, a partial or an index entry.
 */
function grantBinlogReads(role: iam.IRole, bucket: s3.IBucket, key: kms.IKey, sources: readonly Source[]): void {
  const names = sources.filter((source) => source.binlog !== undefined).map((source) => source.name);
  if (names.length === 0) return;
  role.addToPrincipalPolicy(new iam.PolicyStatement({
    sid: 'ListBinlogStatesAndIndex',
    actions: ['s3:ListBucket'],
    resources: [bucket.bucketArn],
    conditions: { StringEquals: { 's3:prefix': names.flatMap((name) => [binlogStatePrefix(name), binlogIndexPrefix(name)]) } },
  }));
  const states = names.map((name) => bucket.arnForObjects(`${binlogStatePrefix(name)}*`));
  role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadBinlogStates', actions: ['s3:GetObject'], resources: states }));
  for (const objects of states) {
    acknowledgeWildcardResource(role, objects, 'Reads the binary-log archiver\'s state documents of a source (binlog/<source>/state/<runId>.json, one per run, keys made at run time); no binary log.');
  }
  // The archiver writes with SSE-KMS under the bucket's key, as the runs are.
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [key.keyArn] }));
}

export interface WatchdogAlarmsProps {
  /** The sources to alarm on (a shard's). */
  readonly sources: readonly Source[];
  /** Receives ALARM and OK of every alarm. */
  readonly alarmTopic: sns.ITopic;
  /** @default 'Lifeboat' */
  readonly namespace?: string;
  /** @default - 10 minutes */
  readonly runAllowance?: Duration;
  /**
   * Prefix of the alarms' names (see `watchdogAlarmNames`), so that a stack that does not hold
   * them can name them.
   * @default - names generated by CloudFormation
   */
  readonly alarmNamePrefix?: string;
}

/** The names of a source's watchdog alarms, given the `alarmNamePrefix`: those of its methods only. */
export interface WatchdogAlarmNames {
  /** Its logical backups' age: `<prefix>-rpo-<source>`, or `<prefix>-logical-rpo-<source>` next to PITR. */
  readonly rpo?: string;
  /** Its logical backups' offsite copy: `<prefix>-offsite-rpo-<source>`, or `<prefix>-logical-offsite-rpo-<source>` next to PITR. */
  readonly offsite?: string;
  /** Its WAL archive's age: `<prefix>-archive-rpo-<source>`. */
  readonly archiveRpo?: string;
  /** A gap in its WAL archive: `<prefix>-archive-gap-<source>`. */
  readonly archiveGap?: string;
  /** Its binary-log archive's age (MySQL/MariaDB PITR): `<prefix>-binlog-rpo-<source>`. */
  readonly binlogRpo?: string;
  /** A gap in its binary-log archive: `<prefix>-binlog-gap-<source>`. */
  readonly binlogGap?: string;
}

/**
 * The names of a source's watchdog alarms. A logical-only source's are unchanged since before
 * PITR (renaming an alarm replaces it); with both methods the logical ones say `logical`, so that
 * the notification's subject says which backup is late.
 */
export function watchdogAlarmNames(prefix: string, source: string, methods: readonly SourceMethod[] = ['logical'], pitrKind: 'pgbackrest' | 'binlog' = 'pgbackrest'): WatchdogAlarmNames {
  const both = methods.includes('logical') && methods.includes('pitr');
  const logical = both ? 'logical-' : '';
  const pitr = !methods.includes('pitr') ? {}
    : pitrKind === 'binlog' ? { binlogRpo: `${prefix}-binlog-rpo-${source}`, binlogGap: `${prefix}-binlog-gap-${source}` }
      : { archiveRpo: `${prefix}-archive-rpo-${source}`, archiveGap: `${prefix}-archive-gap-${source}` };
  return {
    ...(methods.includes('logical') ? { rpo: `${prefix}-${logical}rpo-${source}`, offsite: `${prefix}-${logical}offsite-rpo-${source}` } : {}),
    ...pitr,
  };
}

/**
 * The watchdog's alarms per source, apart from its function and schedule: the source shards
 * (nested stacks) hold the alarms of their sources, the parent the watchdog itself (created
 * with `perSourceAlarms: false`).
 *
 * Per logical source: its RPO alarm (`Rpo-<source>`) and its offsite alarm (`OffsiteRpo-<source>`).
 * Per PITR source: its RPO alarm on the WAL archive (`ArchiveRpo-<source>`) and its gap alarm
 * (`ArchiveGap-<source>`). A source with both has the four, its logical ones as `LogicalRpo-<source>`
 * and `LogicalOffsiteRpo-<source>`.
 */
export class WatchdogAlarms extends Construct {
  /** The RPO alarm of each source, by source name: on its WAL archive for a PITR source, else on its newest verified backup. */
  public readonly alarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** The offsite alarm of each source with logical backups (newest offsite-confirmed backup older than RPO + 15 minutes). */
  public readonly offsiteAlarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** The logical backups' age alarm of each source with method 'logical' (its RPO alarm, unless it also has PITR). */
  public readonly logicalAlarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** The gap alarm of each PITR source (a segment its kept sets need is missing from the archive). */
  public readonly gapAlarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** Every watchdog alarm of each source, RPO first: what a dashboard shows for it. */
  public readonly bySource: Readonly<Record<string, readonly cloudwatch.Alarm[]>>;

  constructor(scope: Construct, id: string, props: WatchdogAlarmsProps) {
    super(scope, id);
    const created = createWatchdogAlarms(this, props);
    this.alarms = created.alarms;
    this.offsiteAlarms = created.offsiteAlarms;
    this.logicalAlarms = created.logicalAlarms;
    this.gapAlarms = created.gapAlarms;
    this.bySource = created.bySource;
  }
}

interface CreatedAlarms {
  alarms: Record<string, cloudwatch.Alarm>;
  offsiteAlarms: Record<string, cloudwatch.Alarm>;
  logicalAlarms: Record<string, cloudwatch.Alarm>;
  gapAlarms: Record<string, cloudwatch.Alarm>;
  bySource: Record<string, cloudwatch.Alarm[]>;
}

function emptyAlarms(): CreatedAlarms {
  return { alarms: {}, offsiteAlarms: {}, logicalAlarms: {}, gapAlarms: {}, bySource: {} };
}

function createWatchdogAlarms(scope: Construct, props: WatchdogAlarmsProps): CreatedAlarms {
  const namespace = props.namespace ?? DEFAULT_WATCHDOG_NAMESPACE;
  const runAllowanceSeconds = (props.runAllowance ?? Duration.minutes(10)).toSeconds();
  const alarm = (alarmId: string, alarmName: string | undefined, source: Source, metric: { name: string; unit: cloudwatch.Unit },
    threshold: number, comparisonOperator: cloudwatch.ComparisonOperator, description: string, missing: cloudwatch.TreatMissingData) => {
    const created = new cloudwatch.Alarm(scope, alarmId, {
      alarmName,
      alarmDescription: description,
      metric: new cloudwatch.Metric({
        namespace,
        metricName: metric.name,
        dimensionsMap: { source: source.name },
        statistic: cloudwatch.Stats.MAXIMUM,
        period: WATCHDOG_INTERVAL,
        unit: metric.unit,
      }),
      threshold,
      comparisonOperator,
      evaluationPeriods: 1,
      treatMissingData: missing,
    });
    created.addAlarmAction(new actions.SnsAction(props.alarmTopic));
    created.addOkAction(new actions.SnsAction(props.alarmTopic));
    return created;
  };
  const seconds = cloudwatch.Unit.SECONDS;
  const above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD;
  const created = emptyAlarms();
  for (const source of props.sources) {
    const names = props.alarmNamePrefix ? watchdogAlarmNames(props.alarmNamePrefix, source.name, source.methods, source.binlog ? 'binlog' : 'pgbackrest') : undefined;
    const both = source.methods.includes('logical') && (source.pitr !== undefined || source.binlog !== undefined);
    const own: cloudwatch.Alarm[] = [];
    if (source.binlog) {
      const watched = watchedSource(source);
      // Missing data breaches: a dead watchdog, an unreadable archive, or no archiver run yet.
      created.alarms[source.name] = alarm(`BinlogRpo-${source.name}`, names?.binlogRpo, source, { name: 'BinlogArchiveAgeSeconds', unit: seconds },
        binlogAgeAlarmThresholdSeconds(source.binlog.plan), above, binlogAgeAlarmDescription(watched, source.binlog.binlogClient), cloudwatch.TreatMissingData.BREACHING);
      // As the WAL archive's: the age alarm pages for missing data.
      created.gapAlarms[source.name] = alarm(`BinlogGap-${source.name}`, names?.binlogGap, source, { name: 'BinlogGaps', unit: cloudwatch.Unit.COUNT },
        1, cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, binlogGapAlarmDescription(watched), cloudwatch.TreatMissingData.NOT_BREACHING);
      own.push(created.alarms[source.name], created.gapAlarms[source.name]);
    }
    if (source.pitr) {
      const watched = watchedSource(source);
      // Missing data breaches: a dead watchdog, an unreadable repository, or no backup set yet.
      created.alarms[source.name] = alarm(`ArchiveRpo-${source.name}`, names?.archiveRpo, source, { name: 'ArchiveAgeSeconds', unit: seconds },
        archiveAgeAlarmThresholdSeconds(source.pitr.plan), above, archiveAgeAlarmDescription(watched), cloudwatch.TreatMissingData.BREACHING);
      // Missing data does not: the archive-age alarm already pages for it, and "a segment is
      // missing" would be the wrong first thing to read when the watchdog itself is dead.
      created.gapAlarms[source.name] = alarm(`ArchiveGap-${source.name}`, names?.archiveGap, source, { name: 'ArchiveGaps', unit: cloudwatch.Unit.COUNT },
        1, cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD, archiveGapAlarmDescription(watched), cloudwatch.TreatMissingData.NOT_BREACHING);
      own.push(created.alarms[source.name], created.gapAlarms[source.name]);
    }
    if (source.methods.includes('logical')) {
      const watched = watchedSource(source);
      const threshold = rpoAlarmThresholdSeconds(source.tier, runAllowanceSeconds);
      const logical = both ? 'Logical' : '';
      created.logicalAlarms[source.name] = alarm(`${logical}Rpo-${source.name}`, names?.rpo, source, { name: 'SecondsSinceVerifiedBackup', unit: seconds },
        threshold, above, rpoAlarmDescription(watched), cloudwatch.TreatMissingData.BREACHING);
      // Missing data is the RPO alarm's business (dead watchdog, never backed up): not paged twice.
      created.offsiteAlarms[source.name] = alarm(`${logical}OffsiteRpo-${source.name}`, names?.offsite, source, { name: 'SecondsSinceOffsiteBackup', unit: seconds },
        threshold + OFFSITE_GRACE.toSeconds(), above, offsiteAlarmDescription(watched), cloudwatch.TreatMissingData.NOT_BREACHING);
      created.alarms[source.name] ??= created.logicalAlarms[source.name];
      own.push(created.logicalAlarms[source.name], created.offsiteAlarms[source.name]);
    }
    created.bySource[source.name] = own;
  }
  return created;
}

/** "logical backup" next to PITR, so that the person on call knows which of the two is late. */
function logicalWords(source: WatchedSource): { backup: string; note: string } {
  const archive = source.binlog ? 'binary-log archive' : 'WAL archive';
  return source.methods?.includes('pitr')
    ? { backup: 'verified logical backup (dump)', note: ` This alarm is about its logical dumps only; its point-in-time recovery (${archive}) has alarms of its own.` }
    : { backup: 'verified backup', note: '' };
}

/** The binary-log archive's age alarm: what stopped, and what to check first. */
export function binlogAgeAlarmDescription(source: WatchedSource, client: string): string {
  return [
    `Lifeboat: ${source.name} (point-in-time recovery) has archived no binary log for longer than its RPO of ${formatSeconds(source.rpoSeconds)}:`,
    'changes since then exist only on the database server.',
    'Or the archiver has never run, or the watchdog has stopped reporting.',
    `First check: the archiver task's runs (ECS, family lifeboat-binlog-${source.name}; its log group /lifeboat/binlog/${source.name}) and its schedule's dead-letter queue;`,
    `then from its network the server (SHOW BINARY LOGS; the backup user's REPLICATION SLAVE and BINLOG MONITOR / REPLICATION CLIENT; ${client} --read-from-remote-server).`,
    `Then \`lifeboat status\` (the newest archived file and run) and the watchdog function's logs.`,
  ].join(' ');
}

/** The binary-log archive's gap alarm: what a gap means for a restore, and what to do first. */
export function binlogGapAlarmDescription(source: WatchedSource): string {
  return [
    `Lifeboat: ${source.name} (point-in-time recovery) has a gap in its binary-log archive: a binary log the newest base needs is missing`,
    `from binlog/${source.name}/ (the server purged it before the archiver stored it, or its object was deleted), so no restore replays past it.`,
    `First check: \`lifeboat status\` (the window, broken, naming the missing files); the server's binlog retention against the plan (lifeboat plan) and the archiver's failures (BinlogGap);`,
    'then take a full backup now (a dump run) so that the newest point is restorable again, and raise the server\'s binlog retention.',
  ].join(' ');
}

/** What the person on call reads first: the source, what is wrong, and where to look. */
export function rpoAlarmDescription(source: WatchedSource): string {
  const words = logicalWords(source);
  return [
    `Lifeboat: ${source.name} has no ${words.backup} within its RPO of ${formatSeconds(source.rpoSeconds)}`,
    `(or the watchdog that measures it has stopped reporting, or it has never been backed up).${words.note}`,
    `First check: the backup schedule of ${source.name} may be disabled, a role may have lost a permission, or every run fails:`,
    `see the backup-run executions for ${source.name} in Step Functions. If they are fine, check the watchdog function's logs.`,
  ].join(' ');
}

export function offsiteAlarmDescription(source: WatchedSource): string {
  const words = logicalWords(source);
  return [
    `Lifeboat: ${source.name} has no ${words.backup === 'verified backup' ? 'backup' : 'logical backup (dump)'} confirmed in the offsite region within ${formatSeconds(source.rpoSeconds + OFFSITE_GRACE.toSeconds())}`,
    `(its RPO plus ${OFFSITE_GRACE.toMinutes()} minutes of replication). Backups are verified but the offsite copy is missing or late.${words.note}`,
    'First check: the replication status of runs/ objects in the primary bucket (FAILED replications, replication role, the offsite key),',
    `and the AwaitOffsite step of the backup-run executions for ${source.name}.`,
  ].join(' ');
}

/** The archive-age alarm of a PITR source: what stopped, and the host-side checks first. */
export function archiveAgeAlarmDescription(source: WatchedSource): string {
  const stanza = source.stanza as string;
  return [
    `Lifeboat: ${source.name} (point-in-time recovery) has archived no WAL for longer than its RPO of ${formatSeconds(source.rpoSeconds)}:`,
    'changes since the newest archived segment exist only on the database host.',
    `Or the source has no pgBackRest backup set yet in pitr/${source.name}/ (WAL alone restores nothing), or the watchdog has stopped reporting.`,
    `First check, on the host: archive_command failing (SELECT last_failed_wal, last_failed_time FROM pg_stat_archiver; the PostgreSQL log),`,
    `then \`sudo -u postgres pgbackrest --stanza=${stanza} check\` (S3 reachable, the instance profile, the KMS key).`,
    'An idle server archives nothing new: archive_timeout switches only a segment that holds a write.',
    'Then `lifeboat status` and the watchdog function\'s logs.',
  ].join(' ');
}

/** The gap alarm of a PITR source: what a gap means for a restore, and what to do first. */
export function archiveGapAlarmDescription(source: WatchedSource): string {
  const stanza = source.stanza as string;
  return [
    `Lifeboat: ${source.name} (point-in-time recovery) has a gap in its WAL archive: a segment its kept backup sets need is missing`,
    `from pitr/${source.name}/archive/${stanza}/, so no restore replays past it; beyond the gap only a backup set taken after it restores.`,
    '`pgbackrest verify` does not see this (it checks only what is there).',
    `First check: \`lifeboat status\` (the window, broken at the first missing segment); who deleted objects under pitr/${source.name}/`,
    '(CloudTrail DeleteObject: in the versioned bucket the locked version is still there, under a delete marker);',
    `then take a full backup now (\`pgbackrest --stanza=${stanza} --type=full backup\`) so that the newest point is restorable again.`,
  ].join(' ');
}

function formatSeconds(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
