import { formatDuration, formatSize, type LifeboatConfig, type Source } from '../lib/config';
import { renderTable } from '../lib/format/table';
import { describeBinlogPlan } from '../lib/binlog/plan';
import { describePitrPlan } from '../lib/pitr/plan';

/** The protection plan a config promises: one row per source. */
export function renderPlan(config: LifeboatConfig): string {
  const offsite = `${config.offsite.region} (${config.offsite.storageClass})`;
  const rows = config.sources.map((source) => [
    source.name,
    source.engine,
    source.tier.name,
    source.methods.includes('logical') ? `every ${formatDuration(source.tier.scheduleSeconds)} ${source.tier.timezone}` : 'pitr (below)',
    formatDuration(source.tier.rpoSeconds),
    formatDuration(source.tier.rtoSeconds),
    formatDuration(source.tier.retentionSeconds),
    `every ${formatDuration(source.tier.drillSeconds)}`,
    source.sizeHintBytes === undefined ? '-' : formatSize(source.sizeHintBytes),
    offsite,
  ]);
  return [
    `Protection plan for ${config.appName}: primary ${config.primary.region}, offsite ${offsite}, ` +
      `Object Lock ${config.objectLock.mode.toLowerCase()} (offsite ${config.objectLock.offsiteMode.toLowerCase()})`,
    ...(config.objectLock.offsiteMode === 'GOVERNANCE'
      ? ['Note: the offsite copy is in governance mode, which an administrator of its account can bypass; compliance is recommended there (objectLock.offsiteMode).']
      : []),
    '',
    renderTable(['SOURCE', 'ENGINE', 'TIER', 'SCHEDULE', 'RPO', 'RTO', 'RETENTION', 'DRILL', 'SIZE', 'OFFSITE'], rows),
    ...config.sources.flatMap(pitrLines),
    ...config.sources.flatMap(binlogLines),
    ...config.sources.flatMap((source) => nativePitrLines(config, source)),
  ].join('\n');
}

/** An RDS/Aurora source's own point-in-time recovery, as Lifeboat governs it: which instance or cluster, the window, offsite, drills. */
function nativePitrLines(config: LifeboatConfig, source: Source): string[] {
  const rds = source.rds;
  if (!rds) return [];
  const what = rds.kind === 'instance' ? 'DB instance' : 'DB cluster';
  const retentionDays = source.tier.retentionSeconds / 86_400;
  const window = retentionDays > rds.requiredWindowDays
    ? `${rds.requiredWindowDays} days (the tier's retention of ${formatDuration(source.tier.retentionSeconds)}, capped at what RDS keeps; the logical dumps keep the rest)`
    : `${rds.requiredWindowDays} days`;
  return [
    '',
    `${source.name}: native point-in-time recovery of the RDS ${what} ${rds.identifier} (${rds.region}), ` +
      (rds.detected ? `read off its endpoint ${source.connection.host} (set rds.${rds.kind} to name another)` : `named in the config (rds.${rds.kind})`),
    `  window: automated backups kept at least ${window}; LatestRestorableTime at most ${formatDuration(Math.max(source.tier.rpoSeconds, 900))} old (the RPO; it trails by about 5 minutes)`,
    rds.kind === 'instance'
      ? `  offsite: its automated backups replicated to ${config.offsite.region}, alarmed when stopped`
      : `  offsite: its newest automated cluster snapshot copied daily to ${config.offsite.region}${config.offsite.account ? ` and account ${config.offsite.account}` : ''} with the offsite key, kept ${formatDuration(source.tier.retentionSeconds)}`,
    source.tier.manageNativeBackups
      ? `  settings: managed (tier ${source.tier.name} manageNativeBackups): Lifeboat raises the retention to the window${rds.kind === 'instance' ? ' and starts the offsite replication' : ''}, never lowers anything`
      : `  settings: checked and alarmed only (tier ${source.tier.name} manageNativeBackups is off)`,
    `  drill: every ${formatDuration(source.tier.drillSeconds)}, a point-in-time restore (alternately the latest point and a random second of the window) into a throwaway ` +
      `${rds.kind === 'instance' ? 'instance' : 'cluster and instance'} of ${rds.drill.instanceClass ?? 'the source\'s own class'}, checked and read in full, then deleted; measured RTO against ${formatDuration(source.tier.rtoSeconds)}`,
  ];
}

/** A PITR source's backups and archive, under the table (the SCHEDULE column is its logical dumps'). */
function pitrLines(source: Source): string[] {
  if (!source.pitr) return [];
  const host = 'instanceId' in source.pitr.host ? source.pitr.host.instanceId : `the instance tagged ${source.pitr.host.tag.key}=${source.pitr.host.tag.value}`;
  return [
    '',
    `${source.name}: point-in-time recovery with pgBackRest on ${host} (stanza ${source.pitr.stanza}, ${source.pitr.dataDirectory}), ` +
      `repository s3://<primary bucket>/pitr/${source.name}/` +
      (source.methods.includes('logical') ? '; logical dumps as in the table, for long portable retention' : '; no logical dumps'),
    ...describePitrPlan(source.pitr.plan).map((line) => `  ${line}`),
    `  setup on the host: lifeboat pitr setup ${source.name}`,
  ];
}

/** A MySQL/MariaDB PITR source's archiver (and physical backups), under the table. */
function binlogLines(source: Source): string[] {
  const binlog = source.binlog;
  if (!binlog) return [];
  const physical = binlog.physical;
  const host = !physical ? undefined : 'instanceId' in physical.host ? physical.host.instanceId : `the instance tagged ${physical.host.tag.key}=${physical.host.tag.value}`;
  return [
    '',
    `${source.name}: point-in-time recovery from binary logs archived to s3://<primary bucket>/binlog/${source.name}/ by a Fargate task with the source's connection` +
      (host ? `; physical backups (${binlog.physicalTool}) on ${host} (${physical?.dataDirectory})` : '') +
      (source.methods.includes('logical') ? '; the logical dumps in the table are the bases (their binlog coordinates)' : '; no logical dumps'),
    ...describeBinlogPlan(binlog.plan, binlog.binlogClient).map((line) => `  ${line}`),
  ];
}
