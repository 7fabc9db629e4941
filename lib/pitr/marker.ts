/**
 * The exact check of a PITR drill (`pitr: { marker: true }`): every MARKER_INTERVAL_SECONDS an
 * EventBridge schedule has SSM run the `<app>-pitr-marker` document on the source's host, which
 * writes the time into `lifeboat.pitr_marker` of the source's first database as the server's
 * user (a local socket, peer authentication: no credential). A drill then knows exactly what a
 * restore to its target must hold: the newest marker at or before the target and within two
 * intervals of it, and none after it. The write also keeps an idle server's archive moving
 * (archive_timeout only switches a segment that holds a write), so the archive-age alarm means
 * what it says on a quiet database.
 */
import type { PitrDrillCheck } from './drill';

export const MARKER_INTERVAL_SECONDS = 300;
export const MARKER_TABLE = 'lifeboat.pitr_marker';
/** Markers older than this are removed by the write itself: the table stays small. */
const MARKER_KEEP_DAYS = 40;

/** The SQL the document runs: idempotent, one row per run. */
export const MARKER_SQL = [
  'CREATE SCHEMA IF NOT EXISTS lifeboat',
  `CREATE TABLE IF NOT EXISTS ${MARKER_TABLE} (at timestamptz PRIMARY KEY DEFAULT clock_timestamp())`,
  `INSERT INTO ${MARKER_TABLE} DEFAULT VALUES`,
  `DELETE FROM ${MARKER_TABLE} WHERE at < now() - interval '${MARKER_KEEP_DAYS} days'`,
].join('; ');

/** The marker document's script: psql as the server's user over its local socket. */
export const MARKER_SCRIPT = [
  'set -eu',
  'as_user() { if [ "$(id -un)" = "{{ osUser }}" ]; then "$@"; else runuser -u "{{ osUser }}" -- "$@"; fi; }',
  `as_user psql -X -q -v ON_ERROR_STOP=1 -h "{{ socketDir }}" -p "{{ port }}" -d "{{ database }}" -c "${MARKER_SQL}"`,
  'echo "lifeboat: pitr marker written"',
];

type Psql = (sql: string) => Promise<string>;

/**
 * The drill's marker check on the restored server: for a time target, the newest marker is at
 * or before it and no more than two intervals earlier, and no marker is after it; for `latest`,
 * the newest marker is within two intervals of when the archive's newest segment arrived.
 */
export async function checkMarker(psql: Psql, target: { readonly time: Date } | 'latest', latestArchivedAt: Date | undefined, intervalSeconds = MARKER_INTERVAL_SECONDS): Promise<PitrDrillCheck> {
  const name = 'pitr-marker';
  const exists = (await psql(`SELECT to_regclass('${MARKER_TABLE}') IS NOT NULL`)).trim() === 't';
  if (!exists) return { name, ok: false, detail: `${MARKER_TABLE} is not in the restored database: the marker schedule never wrote it before this point (is the source's marker schedule running?)` };
  const slack = 2 * intervalSeconds * 1000;
  const newestText = (await psql(`SELECT coalesce(to_char(max(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), '') FROM ${MARKER_TABLE}`)).trim();
  const newest = newestText ? new Date(newestText) : undefined;
  if (target === 'latest') {
    const ok = newest !== undefined && latestArchivedAt !== undefined && newest.getTime() >= latestArchivedAt.getTime() - slack;
    return { name, ok, detail: `newest marker ${newestText || '(none)'}; the archive's newest segment arrived ${latestArchivedAt?.toISOString() ?? '(unknown)'}${ok ? '' : `: more than ${2 * intervalSeconds}s apart, the restore is short of the end of the archive`}` };
  }
  const at = target.time.toISOString();
  const after = Number((await psql(`SELECT count(*) FROM ${MARKER_TABLE} WHERE at > '${at}'::timestamptz`)).trim());
  const near = newest !== undefined && newest.getTime() <= target.time.getTime() && newest.getTime() >= target.time.getTime() - slack;
  return {
    name,
    ok: near && after === 0,
    detail: `newest marker ${newestText || '(none)'}, target ${at}, ${after} marker(s) after the target` +
      (after > 0 ? ': the restore went past its target' : near ? '' : `: the newest marker is not within ${2 * intervalSeconds}s before the target`),
  };
}
