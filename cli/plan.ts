import { formatDuration, formatSize, type LifeboatConfig } from '../lib/config';
import { renderTable } from '../lib/format/table';

/** The protection plan a config promises: one row per source. */
export function renderPlan(config: LifeboatConfig): string {
  const offsite = `${config.offsite.region} (${config.offsite.storageClass})`;
  const rows = config.sources.map((source) => [
    source.name,
    source.engine,
    source.tier.name,
    `every ${formatDuration(source.tier.scheduleSeconds)} ${source.tier.timezone}`,
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
  ].join('\n');
}
