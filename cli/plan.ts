import { formatDuration, formatSize, type LifeboatConfig, type Source } from '../lib/config';
import { renderTable } from '../lib/format/table';
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
  ].join('\n');
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
