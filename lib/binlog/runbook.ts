/**
 * The runbook's point-in-time restore of a MySQL/MariaDB source from its archived binary logs
 * (step 5b): with Lifeboat (`lifeboat restore --at`, the plan first), and with stock tools only —
 * the dump of step 5, then each database's binary logs from its coordinates in the manifest,
 * replayed with the engine's own client up to the chosen second.
 */
import type { Source } from '../config/types';
import { formatDuration } from '../config/units';
import type { Manifest } from '../domain/manifest';
import { binlogFileKey, binlogPrefix } from '../domain/layout';

export function binlogRestoreSection(source: Source, bucket: string, manifest: Manifest | undefined, sqlClient: string): string[] {
  const binlog = source.binlog;
  if (!binlog) return [];
  const lines: string[] = [];
  const push = (...text: string[]) => lines.push(...text);
  const code = (...text: string[]) => push('```sh', ...text, '```', '');
  const coordinates = manifest?.artifacts.filter((artifact) => artifact.binlog) ?? [];
  push('## 5b. Point-in-time restore from the archived binary logs', '');
  push(`${source.name}'s binary logs are archived every ${formatDuration(binlog.plan.archiveEverySeconds)} into s3://${bucket}/${binlogPrefix(source.name)} ` +
    `(\`files/\` the completed ones, \`index/\` their size and SHA-256, \`partial/\` the file still being written as each archiver run read it). ` +
    'A restore to **any second** from the newest verified dump before it up to the archive\'s newest event: pick the last second **before** the damage (UTC).', '');
  push('**With Lifeboat** (the plan first: the dump, each database\'s coordinates, the binary logs and bytes to replay, the window; then the restore into an **empty** server: a server skips GTIDs it already has without a word):', '');
  code(
    `npx lifeboat restore ${source.name} --at 2026-12-01T09:41:59Z --target-url ${source.engine}://$TARGET_USER@$TARGET_HOST:$TARGET_PORT --bucket ${bucket} --dry-run`,
    `npx lifeboat restore ${source.name} --at 2026-12-01T09:41:59Z --target-url ${source.engine}://$TARGET_USER@$TARGET_HOST:$TARGET_PORT --bucket ${bucket}`,
    `# or --at latest: up to the archive's newest event (the archiver's last run, at most ${formatDuration(binlog.plan.archiveEverySeconds)} ago when it runs)`,
  );
  push('**With stock tools only**: restore the dump as in step 5 (into an empty server), then for each database its binary logs from the coordinates its manifest records, up to the chosen second:', '');
  const files = coordinates.length > 0
    ? coordinates.map((artifact) => `# ${artifact.database}: from ${artifact.binlog?.file} position ${artifact.binlog?.position}${artifact.binlog?.gtid ? ` (GTID ${artifact.binlog.gtid})` : ''}`)
    : ['# each database\'s coordinates: jq \'.artifacts[] | {database, binlog}\' manifest.json'];
  const first = coordinates[0]?.binlog;
  const database = coordinates[0]?.database ?? source.connection.databases[0] ?? 'DATABASE';
  code(
    ...files,
    `aws s3 ls s3://${bucket}/${binlogPrefix(source.name)}files/   # the completed files; the newest partial: aws s3 ls --recursive s3://${bucket}/${binlogPrefix(source.name)}partial/`,
    `aws s3 cp s3://${bucket}/${binlogFileKey(source.name, first?.file ?? 'binlog.000042')} .   # and every later file, in order (the newest run's partial last, renamed to its file name)`,
    'sha256sum binlog.*   # each must equal the sha256 of its index entry (index/<file>.json)',
    `TZ=UTC ${binlog.binlogClient} --start-position=${first?.position ?? 'POSITION'} --stop-datetime='2026-12-01 09:42:00' --database=${database} binlog.0* \\`,
    `  | ${sqlClient} -h "$TARGET_HOST" -P "$TARGET_PORT" -u "$TARGET_USER" --binary-mode`,
    '# --stop-datetime is exclusive (the first event at or after it is not applied) and in whole seconds; repeat per database with its own --start-position',
  );
  return lines;
}
