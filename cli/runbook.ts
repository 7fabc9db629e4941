import type { S3Client } from '@aws-sdk/client-s3';
import { Token } from 'aws-cdk-lib';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createS3Client } from '../lib/aws/s3-client';
import { latestVerifiedRun, readRun, type RunRecord } from '../lib/catalog/catalog';
import { recentDrillReports } from '../lib/catalog/drills';
import { DEFAULT_CONFIG_FILE, formatDuration, formatSize, loadConfig, type LifeboatConfig, type Source } from '../lib/config';
import type { DrillReport } from '../lib/domain/drill-report';
import { manifestKey, offsiteKey, runPrefix, sourcePrefix, verificationKey } from '../lib/domain/layout';
import type { Manifest, ManifestTable } from '../lib/domain/manifest';
import { LIFEBOAT_VERSION } from '../lib/domain/version';
import { DRILL_ERROR_NAMES, tableDisplayName } from '../lib/drill/checks';
import { engineOf } from '../lib/engines/registry';
import { binlogRestoreSection } from '../lib/binlog/runbook';
import { nativeRestoreSection, type NativeWindowFacts } from '../lib/rds/runbook';
import { storageNames } from '../lib/stacks/naming';
import { formatElapsed, primaryBucketFromStack } from './status';

export const RUNBOOK_USAGE = `Usage: lifeboat runbook SOURCE [--config FILE] [--bucket BUCKET] [--region REGION] [--endpoint URL] [--out FILE]

Writes a Markdown disaster-recovery runbook for one source, from the config and the bucket: the
procedure a person on call walks (prerequisites, assess, locate, verify, restore, verify the
recovery, after the recovery) with this source's roles, buckets, run, commands and expected row
counts filled in, and a recovery-time estimate (download, restore, total; today's size and
10 GB to 10 TB) from the throughputs its recent drills measured.
`;

/** A drill report and the run it restored, read back from the bucket (its manifest gives the bytes). */
export interface DrillEvidence {
  readonly report: DrillReport;
  /** Absent when the run is gone from the bucket (pruned) or unreadable. */
  readonly run?: RunRecord;
}

export interface RunbookFacts {
  readonly config: LifeboatConfig;
  readonly source: Source;
  readonly bucket: string;
  readonly offsiteBucket: string;
  /** The newest verified run of the source. */
  readonly latest?: RunRecord;
  /** Recent drills, newest first (the first is "the last drill"). */
  readonly drills: readonly DrillEvidence[];
  readonly now: Date;
  /** An RDS/Aurora source's point-in-time window, when it could be read (lifeboat status reads it the same way). */
  readonly nativeWindow?: NativeWindowFacts;
}

/** How many recent drills the throughputs are the median of. */
export const THROUGHPUT_DRILLS = 5;
/** How many drill reports are read to find them (failed drills whose restore never finished are skipped). */
const DRILL_REPORTS_READ = 10;
/** Free space asked for beyond the bytes themselves: temp files, a retry, the restore's WAL and index builds. */
export const DISK_MARGIN = 1.25;
/** Tables per row-count query (as many as the drill counts in one). */
const COUNT_BATCH = 100;

/** What one drill measured: bytes per second of the download (artifacts) and of the restore (database). */
export interface DrillThroughput {
  readonly drillId: string;
  readonly runId: string;
  /** Artifact bytes the drill downloaded and checked (with globals.sql for PostgreSQL). */
  readonly downloadBytes: number;
  readonly downloadSeconds: number;
  /** The drilled run's database size (manifest databaseSizeBytes). */
  readonly databaseBytes: number;
  readonly restoreSeconds: number;
  readonly downloadBytesPerSecond: number;
  readonly restoreBytesPerSecond: number;
}

/** The throughputs recovery times are estimated from: each the median over `drills`, separately. */
export interface MeasuredThroughput {
  readonly downloadBytesPerSecond: number;
  readonly restoreBytesPerSecond: number;
  /** Newest first. */
  readonly drills: readonly DrillThroughput[];
}

export interface RecoveryEstimate {
  readonly label: string;
  readonly databaseBytes: number;
  readonly artifactBytes: number;
  readonly downloadSeconds: number;
  readonly restoreSeconds: number;
  readonly totalSeconds: number;
  readonly withinRto: boolean;
}

/** The bytes a restore downloads: every artifact, and globals.sql of an engine that has globals (the drill applies it). */
export function downloadBytes(manifest: Manifest): number {
  const artifacts = manifest.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0);
  return artifacts + (engineOf(manifest.engine).hasGlobals && manifest.globals ? manifest.globals.bytes : 0);
}

/**
 * A drill's throughputs, or undefined when it measured none: its restore did not finish (a
 * failure before the checks; a drill that failed a check or the RTO did finish it), the run it
 * restored is gone, or a phase took no measurable time.
 */
export function drillThroughput(evidence: DrillEvidence): DrillThroughput | undefined {
  const { report, run } = evidence;
  const restored = report.verdict === 'ok' || (DRILL_ERROR_NAMES as readonly string[]).includes(report.error?.name ?? '');
  const manifest = run?.manifest;
  if (!restored || !manifest || manifest.runId !== report.runId) return undefined;
  const { downloadSeconds, restoreSeconds } = report.timings;
  const bytes = downloadBytes(manifest);
  if (downloadSeconds <= 0 || restoreSeconds <= 0 || bytes <= 0 || manifest.databaseSizeBytes <= 0) return undefined;
  return {
    drillId: report.drillId,
    runId: report.runId,
    downloadBytes: bytes,
    downloadSeconds,
    databaseBytes: manifest.databaseSizeBytes,
    restoreSeconds,
    downloadBytesPerSecond: bytes / downloadSeconds,
    restoreBytesPerSecond: manifest.databaseSizeBytes / restoreSeconds,
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** The median download and restore throughputs of the newest `limit` drills that measured them; undefined when none did. */
export function measuredThroughput(drills: readonly DrillEvidence[], limit = THROUGHPUT_DRILLS): MeasuredThroughput | undefined {
  const measured = drills.map(drillThroughput).filter((value): value is DrillThroughput => value !== undefined).slice(0, limit);
  if (measured.length === 0) return undefined;
  return {
    downloadBytesPerSecond: median(measured.map((drill) => drill.downloadBytesPerSecond)),
    restoreBytesPerSecond: median(measured.map((drill) => drill.restoreBytesPerSecond)),
    drills: measured,
  };
}

export const ESTIMATE_SIZES: readonly (readonly [string, number])[] = [['10 GB', 10e9], ['100 GB', 100e9], ['1 TB', 1e12], ['10 TB', 10e12]];

/**
 * Recovery time for today's size and for ESTIMATE_SIZES: the download scales with the artifact
 * bytes (a database of size S dumps to S x today's artifact/database ratio), the restore with the
 * database bytes, each at its measured throughput. Linear, so a lower bound: index builds grow
 * faster than linearly, and a larger restore may need a larger machine.
 */
export function estimateRecovery(
  throughput: Pick<MeasuredThroughput, 'downloadBytesPerSecond' | 'restoreBytesPerSecond'>,
  today: { readonly databaseBytes: number; readonly artifactBytes: number } | undefined,
  rtoSeconds: number,
): RecoveryEstimate[] {
  const ratio = today && today.databaseBytes > 0 ? today.artifactBytes / today.databaseBytes : 1;
  const row = (label: string, databaseBytes: number, artifactBytes: number): RecoveryEstimate => {
    const downloadSeconds = artifactBytes / throughput.downloadBytesPerSecond;
    const restoreSeconds = databaseBytes / throughput.restoreBytesPerSecond;
    const totalSeconds = downloadSeconds + restoreSeconds;
    return { label, databaseBytes, artifactBytes, downloadSeconds, restoreSeconds, totalSeconds, withinRto: totalSeconds <= rtoSeconds };
  };
  return [
    ...(today ? [row('today', today.databaseBytes, today.artifactBytes)] : []),
    ...ESTIMATE_SIZES.map(([label, bytes]) => row(label, bytes, bytes * ratio)),
  ];
}

const fileName = (key: string) => key.split('/').pop() as string;
const rate = (bytesPerSecond: number) => `${formatSize(bytesPerSecond)}/s`;
const estimate = (seconds: number) => `~${formatElapsed(seconds)}`;

/** One query per batch of tables: table, expected rows (the manifest), found, verdict. */
export function rowCountQueries(engineName: Source['engine'], tables: readonly ManifestTable[]): string[] {
  const engine = engineOf(engineName);
  const { literal } = engine.sql;
  const count = engine.runbook.countRows;
  const queries: string[] = [];
  for (let start = 0; start < tables.length; start += COUNT_BATCH) {
    const parts = tables.slice(start, start + COUNT_BATCH).map((table) => {
      const from = engine.runbook.countFrom(engine, table.schema, table.name);
      const expected = table.exact ? String(table.rows) : `~${table.rows}`;
      const verdict = table.exact ? `CASE WHEN ${count} = ${table.rows} THEN 'ok' ELSE 'DIFFERENT' END` : `'estimate, not compared'`;
      return `SELECT ${literal(tableDisplayName(table))} AS table_name, ${literal(expected)} AS expected, ${count} AS found, ${verdict} AS verdict FROM ${from}`;
    });
    queries.push(`${parts.join('\nUNION ALL\n')};`);
  }
  return queries;
}

/** The tables of one database that differ from the manifest's set: no row when they are the same. */
export function tableSetQuery(engineName: Source['engine'], tables: readonly ManifestTable[]): string {
  const engine = engineOf(engineName);
  const str = engine.sql.literal;
  const expected = tables.length === 0
    ? engine.runbook.emptyTableSet
    : tables.map((table, index) => (index === 0
      ? `SELECT ${str(table.schema)} AS schema_name, ${str(table.name)} AS table_name`
      : `  UNION ALL SELECT ${str(table.schema)}, ${str(table.name)}`)).join('\n');
  // The same listing as the drill's (lib/drill/run-drill.ts): tables whose rows a dump holds.
  const found = engine.runbook.tableListing();
  return [
    `WITH expected AS (\n${expected}\n), found AS (\n  ${found}\n)`,
    "SELECT 'missing after the restore' AS problem, e.schema_name, e.table_name FROM expected e",
    ' WHERE NOT EXISTS (SELECT 1 FROM found f WHERE f.schema_name = e.schema_name AND f.table_name = e.table_name)',
    'UNION ALL',
    "SELECT 'not in the manifest', f.schema_name, f.table_name FROM found f",
    ' WHERE NOT EXISTS (SELECT 1 FROM expected e WHERE e.schema_name = f.schema_name AND e.table_name = f.table_name);',
  ].join('\n');
}

/** The offsite bucket's name as a person types it (an environment-agnostic synth leaves the account a token). */
function printable(name: string, placeholder: string): string {
  return Token.isUnresolved(name) ? name.replace(/\$\{Token\[[^\]]*\]\}/g, placeholder) : name;
}

export function renderRunbook(facts: RunbookFacts): string {
  const { config, source, bucket, latest, drills, now } = facts;
  const offsiteBucket = printable(facts.offsiteBucket, 'OFFSITE_ACCOUNT');
  const manifest = latest?.manifest;
  const engine = engineOf(source.engine);
  const { runbook } = engine;
  const names = storageNames(config);
  const primaryAccount = names.primaryAccount ?? 'PRIMARY_ACCOUNT';
  const offsiteAccount = names.offsiteAccount ?? names.primaryAccount ?? 'OFFSITE_ACCOUNT';
  const operatorRole = `arn:aws:iam::${primaryAccount}:role/lifeboat/operator/${names.operatorRoleName}`;
  const offsiteRole = `arn:aws:iam::${offsiteAccount}:role/lifeboat/operator/${names.offsiteRestoreRoleName}`;
  const primaryStack = `${config.appName}-Primary`;
  const primaryRegion = config.primary.region;
  const offsiteRegion = config.offsite.region;
  const runId = latest?.runId ?? 'RUN_ID';
  const runFolder = runPrefix(source.name, runId);
  const dataTime = manifest ? new Date(manifest.startedAt) : undefined;
  const throughput = measuredThroughput(drills);
  const today = manifest ? { databaseBytes: manifest.databaseSizeBytes, artifactBytes: downloadBytes(manifest) } : undefined;
  const estimates = throughput ? estimateRecovery(throughput, today, source.tier.rtoSeconds) : undefined;
  const rto = formatDuration(source.tier.rtoSeconds);
  const lines: string[] = [];
  const push = (...text: string[]) => lines.push(...text);
  const code = (...text: string[]) => push('```sh', ...text, '```', '');

  push(`# Disaster recovery runbook: ${source.name}`, '');
  push(`Generated ${now.toISOString()} by Lifeboat ${LIFEBOAT_VERSION} from the config and from s3://${bucket}. Regenerate it after every drill and keep a copy outside AWS: \`npx lifeboat runbook ${source.name} --out runbook-${source.name}.md\`.`, '');
  push('| | |', '|---|---|');
  push(`| Source | \`${source.name}\`: ${engine.name} at ${source.connection.host}:${source.connection.port}, databases ${source.connection.databases.map((name) => `\`${name}\``).join(', ')} |`);
  push(`| Tier | ${source.tier.name}: RPO ${formatDuration(source.tier.rpoSeconds)}, RTO ${rto}, backups every ${formatDuration(source.tier.scheduleSeconds)} (${source.tier.timezone}), kept ${formatDuration(source.tier.retentionSeconds)}, drilled every ${formatDuration(source.tier.drillSeconds)} |`);
  push(`| Recovery point | ${latest && manifest && dataTime ? `run **${latest.runId}**, data as of ${dataTime.toISOString()} (${formatDuration((now.getTime() - dataTime.getTime()) / 1000)} before this runbook was generated)` : '**no verified run**'} |`);
  push(`| Recovery time | ${estimates?.[0] && today ? `${estimate(estimates[0].totalSeconds)} for today's size (estimate from ${throughput?.drills.length} drill(s); RTO ${rto}: ${estimates[0].withinRto ? 'within' : '**exceeds**'}), see [Recovery time](#recovery-time-estimate) |` : 'not measured: no drill has restored this source (see [Recovery time](#recovery-time-estimate)) |'}`, '');
  push('Walk the steps in order. Every command is written for this source; replace only `$TARGET_HOST`, `$TARGET_PORT` and `$TARGET_USER` (set them once, step 5) and the values marked `…`.', '');
  if (!latest || !manifest) {
    push(`**There is no verified run of this source in s3://${bucket}/.** Steps 3 to 6 cannot succeed until one exists: see step 2 to find out why (\`npx lifeboat status\`, \`npx lifeboat list ${source.name}\`, the backup-run executions).`, '');
  }

  // 1. Prerequisites
  push('## 1. Prerequisites', '');
  push('**Access.** Everything below reads the backups; nothing writes or deletes them.', '');
  push(`- Primary region (${primaryRegion}, account ${primaryAccount}): the operator role \`${operatorRole}\` reads both copies (or attach the \`OperatorPolicyArn\` output of stack \`${primaryStack}\` to your own role).`);
  push(`- Offsite (${offsiteRegion}, account ${offsiteAccount}${names.crossAccount ? ', not the primary account' : ''}): when the primary region or account is lost, the offsite account's restore role \`${offsiteRole}\` reads the offsite copy and needs nothing of the primary account.`);
  push(`- The target database server: a user that may create databases${runbook.targetUserAlsoNeeds} there, and network access to it from where you run the restore.`, '');
  push('**Credentials.** Assume the role (in its account, as a principal that account trusts), and export what it returns:', '');
  code(
    `aws sts assume-role --role-arn ${operatorRole} --role-session-name restore-${source.name}`,
    `# primary lost: in account ${offsiteAccount}`,
    `aws sts assume-role --role-arn ${offsiteRole} --role-session-name restore-${source.name}`,
    '# then: export AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_SESSION_TOKEN=…',
    `export LIFEBOAT_BUCKET=${bucket} AWS_REGION=${primaryRegion}   # the lifeboat commands below read the primary bucket`,
  );
  push(`The target server's password comes from the environment, never from the command line (command lines are visible to every user of the machine): \`LIFEBOAT_DB_PASSWORD\` for \`lifeboat restore\`, \`${engine.passwordEnv}\` for ${runbook.passwordReaders}. Read it without echo, so that it stays out of the shell history too:`, '');
  code(
    `read -rs -p 'target password: ' ${engine.passwordEnv} && export ${engine.passwordEnv} && export LIFEBOAT_DB_PASSWORD="$${engine.passwordEnv}"`,
  );
  push('**Tools and versions.**', '');
  push(...runbook.toolPrerequisites(engine, manifest));
  push('- For the stock-tool path: the AWS CLI v2 (`aws --version`), `jq` and `sha256sum`. For the Lifeboat path: this repository checked out with `npm ci` (`npx lifeboat --help`).', '');
  push('**Disk space.**', '');
  if (manifest) {
    const artifacts = downloadBytes(manifest);
    push(`- Where the restore runs: at least **${formatSize(artifacts * DISK_MARGIN)}** free (${formatSize(artifacts)} of artifacts plus ${Math.round((DISK_MARGIN - 1) * 100)}%): every artifact is downloaded and checked before the restore starts — by \`lifeboat restore\` into a directory under \`\${TMPDIR:-/tmp}\`, by the stock-tool path into the current directory. Check with \`df -h "\${TMPDIR:-/tmp}" .\`.`);
    push(manifest.databaseSizeBytes > 0
      ? `- On the target server: the restored database is about **${formatSize(manifest.databaseSizeBytes)}** (the source's size at dump time, manifest \`databaseSizeBytes\`); give it at least ${formatSize(manifest.databaseSizeBytes * DISK_MARGIN)} free.`
      : '- On the target server: the manifest records no database size; allow several times the artifact size.');
  } else {
    push('- Unknown: no verified run, so no artifact size. Each artifact is downloaded whole before the restore (the manifest gives the bytes).');
  }
  push('');

  // 2. Assess
  push('## 2. Assess', '');
  push('**What failed.** Decide first whether this is a restore at all (data lost or damaged, the server or region gone), or a backup that failed while the database is fine:', '');
  code(
    'npx lifeboat status              # every source: last verified backup and its age against the RPO, offsite copy, last drill',
    `npx lifeboat list ${source.name}   # every run of ${source.name}: verdict, size, offsite state, drill state`,
    `aws stepfunctions list-executions --region ${primaryRegion} --status-filter FAILED --max-items 10 \\`,
    `  --state-machine-arn arn:aws:states:${primaryRegion}:${primaryAccount}:stateMachine:${config.appName}-backup-run`,
    '# a failed execution\'s last events name the state that failed and the error (ChecksumMismatch, DumpFailed, ClientTooOld, …):',
    `aws stepfunctions get-execution-history --region ${primaryRegion} --reverse-order --max-items 5 --execution-arn …`,
  );
  push(source.rds
    ? `**Which recovery point.** Two kinds: RDS's own point-in-time recovery reaches any second of its window (at least ${source.rds.requiredWindowDays} days back, to about 5 minutes ago: step 5a), and the logical dumps below reach further back, to the tier's retention, at the newest verified run's data time.`
    : source.binlog
      ? `**Which recovery point.** Any second from the newest verified dump up to the archive's newest event (its binary logs are archived every ${formatDuration(source.binlog.plan.archiveEverySeconds)}: step 5b); the dumps alone reach back to the tier's retention, at each run's data time.`
      : '**Which recovery point.** This source has no point-in-time recovery (no WAL or binlog archive): the recovery point is the newest verified run, and what was written after its data time is not in any backup.', '');
  if (latest && manifest && dataTime) {
    push(`- Newest verified run: **${latest.runId}**, data as of ${dataTime.toISOString()} (the dump's start), ${formatDuration((now.getTime() - dataTime.getTime()) / 1000)} old when this runbook was generated.`);
    push(`- Offsite copy: ${latest.offsite ? `confirmed in ${latest.offsite.bucket} (${latest.offsite.region}) at ${latest.offsite.confirmedAt}, lag ${formatDuration(latest.offsite.lagSeconds)}` : '**not confirmed** (no offsite.json): restore from the primary copy, or check the offsite bucket with step 4'}.`);
    push(`- If the damage is older than that run (a bad migration, a deletion noticed late), pick the newest run before it with \`npx lifeboat list ${source.name}\` and use its id as \`--run\` below (or \`--at TIME\`).`);
  } else {
    push(`- No verified run: \`npx lifeboat list ${source.name}\` shows why each run does not count.`);
  }
  push(`- Recovery time: ${estimates?.[0] && today ? `${estimate(estimates[0].totalSeconds)} for today's size (estimate), against an RTO of ${rto}.` : 'not measured (no drill has restored this source).'}`, '');

  // 3. Locate
  push('## 3. Locate', '');
  push('| Copy | Region | Account | Bucket | Source prefix | Run folder |', '|---|---|---|---|---|---|');
  push(`| primary | ${primaryRegion} | ${primaryAccount} | \`${bucket}\` | \`${sourcePrefix(source.name)}\` | \`${runFolder}\` |`);
  push(`| offsite (${config.offsite.storageClass}) | ${offsiteRegion} | ${offsiteAccount} | \`${offsiteBucket}\` | \`${sourcePrefix(source.name)}\` | \`${runFolder}\` |`, '');
  push(`The offsite bucket is a replica: the same keys and the same object versions. Each run folder holds the artifacts (stock \`pg_restore\` / \`mysql\` formats), \`manifest.json\` (sizes, SHA-256 and S3 version of each artifact, tables and row counts), \`verification.json\` (the verdict, and the manifest version it judged) and \`offsite.json\`.`, '');
  if (manifest && latest) {
    push(`| Object of run ${latest.runId} | Bytes | SHA-256 | S3 version |`, '|---|---|---|---|');
    for (const artifact of [...manifest.artifacts, ...(manifest.globals ? [manifest.globals] : [])]) {
      push(`| \`${artifact.key}\` | ${artifact.bytes} | \`${artifact.sha256}\` | ${artifact.versionId ? `\`${artifact.versionId}\`` : '-'} |`);
    }
    const verified = latest.verification?.manifest;
    push(`| \`${manifestKey(source.name, latest.runId)}\` | | ${verified ? `\`${verified.sha256}\`` : '-'} | ${verified?.versionId ? `\`${verified.versionId}\`` : '-'} |`);
    push(`| \`${verificationKey(source.name, latest.runId)}\` | | | |`);
    if (latest.offsite) push(`| \`${offsiteKey(source.name, latest.runId)}\` | | | |`);
    push('');
  }
  code(
    `aws s3 ls s3://${bucket}/${runFolder} --region ${primaryRegion}`,
    `aws s3 ls s3://${offsiteBucket}/${runFolder} --region ${offsiteRegion}`,
  );

  // 4. Verify
  push('## 4. Verify the backup', '');
  push('Before anything touches a server: prove the run is intact where you will restore it from.', '');
  code(
    `npx lifeboat verify ${source.name} --run ${runId}   # the verifier on demand: reads every artifact to its end`,
  );
  push(`With stock tools only: fetch the exact versions the verifier judged and compare their SHA-256 with the manifest (\`sha256sum -c\` prints \`OK\` per file). From the offsite copy, use \`--bucket ${offsiteBucket} --region ${offsiteRegion}\` instead: the version ids are the same.`, '');
  const getObject = (key: string, versionId: string | undefined, file: string) =>
    `aws s3api get-object --region ${primaryRegion} --bucket ${bucket} --key ${key}${versionId ? ` --version-id ${versionId}` : ''} ${file}`;
  if (manifest && latest) {
    const objects = [...manifest.artifacts, ...(manifest.globals ? [manifest.globals] : [])];
    code(
      `mkdir -p restore-${source.name}-${latest.runId} && cd restore-${source.name}-${latest.runId}`,
      `${getObject(manifestKey(source.name, latest.runId), latest.verification?.manifest?.versionId, 'manifest.json')}   # the version verification.json names`,
      ...(latest.verification?.manifest ? [`echo '${latest.verification.manifest.sha256}  manifest.json' | sha256sum -c -`] : []),
      ...objects.map((object) => getObject(object.key, object.versionId, fileName(object.key))),
      ...objects.map((object) => `echo '${object.sha256}  ${fileName(object.key)}' | sha256sum -c -`),
      `jq -r '.artifacts[] | "\\(.sha256)  \\(.key | split("/") | last)"' manifest.json | sha256sum -c -   # the same, from the manifest itself`,
    );
  } else {
    code(
      `aws s3 cp s3://${bucket}/${verificationKey(source.name, runId)} - | jq .manifest   # the manifest version that was verified`,
      getObject(manifestKey(source.name, runId), 'MANIFEST_VERSION', 'manifest.json'),
      `jq -r '.artifacts[] | "aws s3api get-object --bucket ${bucket} --key \\(.key) --version-id \\(.versionId) \\(.key | split("/") | last)"' manifest.json | sh`,
      `jq -r '.artifacts[] | "\\(.sha256)  \\(.key | split("/") | last)"' manifest.json | sha256sum -c -`,
    );
  }

  // 5. Restore
  push('## 5. Restore', '');
  push(`**Stop application traffic first.** Stop every service, worker, scheduled job and queue consumer that writes to ${source.connection.databases.map((name) => `\`${name}\``).join(', ')} on ${source.connection.host}:${source.connection.port} (scale it to zero, or put it in maintenance mode), and remove or block its connections. Why: a write that lands during the restore is lost or collides with restored rows, a \`--clean\` restore drops tables the application is using, and an application still running against the damaged database keeps making the damage (and the data-loss window) larger.`, '');
  push(runbook.whoIsConnected(engine, source.connection), '');
  push(`Pause this source's backup schedule too (EventBridge Scheduler in ${primaryRegion}, the schedule described "Lifeboat: back up ${source.name} (${source.tier.name}) …"): a backup of the damaged or half-restored database would otherwise become the newest verified run.`, '');
  push('Then set the target once (a new server, or the old one once it is safe to overwrite):', '');
  code(`export TARGET_HOST=… TARGET_PORT=${source.connection.port} TARGET_USER=…`);
  push('**With Lifeboat** (downloads, checks every SHA-256 against the manifest before it touches the target, refuses a target database that holds tables unless `--clean`, prints each phase\'s time):', '');
  code(
    `npx lifeboat restore ${source.name} --run ${runId} --bucket ${bucket} --region ${primaryRegion} \\`,
    `  --target-url ${engine.urlScheme}://$TARGET_USER@$TARGET_HOST:$TARGET_PORT${runbook.lifeboatRestoreFlags}`,
    '# the primary region or account is gone: the offsite copy alone is enough',
    `npx lifeboat restore ${source.name} --run ${runId} --from offsite --bucket ${offsiteBucket} --region ${offsiteRegion} \\`,
    `  --target-url ${engine.urlScheme}://$TARGET_USER@$TARGET_HOST:$TARGET_PORT${runbook.lifeboatRestoreFlags}`,
  );
  if (runbook.lifeboatRestoreNote) push(runbook.lifeboatRestoreNote, '');
  push(`**With stock tools only** (no Lifeboat installed), in the folder of step 4, whose files you just checked:`, '');
  const artifacts = manifest?.artifacts ?? source.connection.databases.map((database) => ({
    database, key: `${runFolder}${database}${runbook.plannedArtifact.suffix}`, compression: runbook.plannedArtifact.compression,
  }));
  code(...runbook.stockRestore(engine, manifest, artifacts.map((artifact) => ({
    database: artifact.database, file: fileName(artifact.key), compression: artifact.compression,
  }))));

  if (source.rds) push(...nativeRestoreSection(config, { ...source, rds: source.rds }, facts.nativeWindow));
  push(...binlogRestoreSection(source, bucket, manifest, engine.sqlClients[0] as string));

  // 6. Verify the recovery
  push('## 6. Verify the recovery', '');
  push('The drill\'s checks, to paste into the restored server. Each query prints the expected value (from the manifest, recorded at dump time) next to what it finds.', '');
  if (manifest) {
    const databases = [...new Set(manifest.artifacts.map((artifact) => artifact.database))];
    const connect = (database: string) => runbook.checkSession(engine, database);
    for (const database of databases) {
      const tables = manifest.tables.filter((table) => table.database === database);
      push(`**Database \`${database}\`**`, '');
      push(`The table set: expect **no row** (the manifest lists ${tables.length} table(s)).`, '');
      code(connect(database), tableSetQuery(source.engine, tables), 'SQL');
      if (tables.length > 0) {
        push(`Row counts: expect \`ok\` in every row (${tables.filter((table) => table.exact).length} exact count(s); counts marked \`~\` are the planner's estimates, not compared).`, '');
        code(connect(database), ...rowCountQueries(source.engine, tables), 'SQL');
        push('| Table | Expected rows |', '|---|---|');
        for (const table of tables) push(`| ${tableDisplayName(table)} | ${table.exact ? table.rows : `~${table.rows} (estimate)`} |`);
        push('');
      }
      const extensions = manifest.extensions.filter((extension) => extension.database === database);
      if (runbook.extensionsQuery && extensions.length > 0) {
        push(`Extensions: expect \`ok\` in every row (${extensions.map((extension) => `${extension.name} ${extension.version}`).join(', ')}).`, '');
        code(connect(database), runbook.extensionsQuery(engine, extensions), 'SQL');
      }
    }
  } else {
    push('No verified run, so no manifest to compare with: the table set and row counts are in the manifest of the run you restore (`jq .tables manifest.json`).', '');
  }
  if (source.drillChecks.length > 0) {
    push('The source\'s own drill checks (config `drillChecks`): each must return true (`t` in psql, `1` in mysql).', '');
    for (const check of source.drillChecks) {
      const database = check.database ?? source.connection.databases[0] as string;
      push(`- ${check.name} (database \`${database}\`):`, '');
      code(runbook.checkCommand(engine, database, shellQuote(check.sql)));
    }
  } else {
    push('The source has no drill checks of its own (config `drillChecks`): add the queries that tell your application\'s data is sound, and the drills run them too.', '');
  }
  push('Then start one instance of the application against the restored server, read-only if it can be, and check what only it can tell (a recent order, a login).', '');

  // 7. After the recovery
  push('## 7. After the recovery', '');
  push('**Record the incident** as it happens (the times are the measured RTO of this recovery):', '');
  push(`- The run restored (${latest ? `\`${latest.runId}\`` : 'its id'}), from which copy (primary \`${bucket}\` or offsite \`${offsiteBucket}\`), into which server.`);
  push(`- The data-loss window: the time the damage happened (or the restore finished) minus the run's data time${dataTime ? ` (${dataTime.toISOString()}; ${formatDuration((now.getTime() - dataTime.getTime()) / 1000)} at the time this runbook was generated)` : ''}; compare it with the RPO (${formatDuration(source.tier.rpoSeconds)}).`);
  push(`- Measured times: detected, decided to restore, traffic stopped, download and restore (\`lifeboat restore\` prints each phase), checks of step 6, traffic back; the total against the RTO (${rto}) and the estimate above.`);
  push('- What was lost, what failed and why, and what changes.', '');
  const emails = config.notifications.emails;
  push(`**Notify** the people on the alarm topic${emails.length > 0 ? ` (${emails.map((email) => `\`${email}\``).join(', ')})` : ''} and your incident channel: the topic's ARN is the \`AlarmTopicArn\` output of stack \`${primaryStack}\` (${primaryRegion}): \`aws cloudformation describe-stacks --region ${primaryRegion} --stack-name ${primaryStack} --query "Stacks[0].Outputs[?OutputKey=='AlarmTopicArn'].OutputValue" --output text\`.`, '');
  push('**Re-enable traffic** once step 6 passed: point the application at the restored server (if it is a new one, change the connection string or DNS name), start it, and watch its error rate.', '');
  push(`**Schedule a fresh backup and a drill.** If the server's host changed, set \`connection.host\` of source \`${source.name}\` in the config and \`cdk deploy\`. Re-enable the backup schedule paused in step 5; to back up now rather than at the next slot, start an execution of \`${config.appName}-backup-run\` with the input of a recent successful one (\`aws stepfunctions describe-execution --execution-arn … --query input\`) and the current slot as \`scheduledTime\`. Confirm with \`npx lifeboat status\` that a run newer than the restore is verified and offsite, then run a drill of it (state machine \`${config.appName}-restore-drill\`, or \`npx lifeboat drill ${source.name} --local\` against a copy) and regenerate this runbook.`, '');

  // Recovery time estimate
  push('## Recovery time estimate', '');
  if (throughput && estimates) {
    const drilled = throughput.drills;
    push(`Estimates, not measurements: download and restore times at the throughputs the drills measured, separately${drilled.length > 1 ? ` (the median of the last ${drilled.length} drills that restored)` : ' (the last drill that restored)'}: download **${rate(throughput.downloadBytesPerSecond)}** of artifacts, restore **${rate(throughput.restoreBytesPerSecond)}** of database. Compared with the tier's RTO of ${rto}.`, '');
    push('| Database size | Artifacts (est.) | Download (est.) | Restore (est.) | Total (est.) | RTO ' + rto + ' |', '|---|---|---|---|---|---|');
    for (const row of estimates) {
      push(`| ${row.label === 'today' ? `today: ${formatSize(row.databaseBytes)}` : row.label} | ${formatSize(row.artifactBytes)} | ${estimate(row.downloadSeconds)} | ${estimate(row.restoreSeconds)} | ${estimate(row.totalSeconds)} | ${row.withinRto ? 'within' : '**exceeds**'} |`);
    }
    push('');
    push('| Drill | Run | Downloaded | Download | Database | Restore |', '|---|---|---|---|---|---|');
    for (const drill of drilled) {
      push(`| ${drill.drillId} | ${drill.runId} | ${formatSize(drill.downloadBytes)} | ${drill.downloadSeconds.toFixed(1)}s (${rate(drill.downloadBytesPerSecond)}) | ${formatSize(drill.databaseBytes)} | ${drill.restoreSeconds.toFixed(1)}s (${rate(drill.restoreBytesPerSecond)}) |`);
    }
    push('');
    push(`Method: a database of size S dumps to S x ${today && today.databaseBytes > 0 ? Number((today.artifactBytes / today.databaseBytes).toPrecision(3)) : '1 (no database size known)'} of artifacts (today's ratio); the download is that at the download throughput, the restore S at the restore throughput, both linear in size. That is a lower bound: index builds grow faster than linearly, a larger restore may need a larger machine and more \`--jobs\`, and the totals leave out stopping traffic, preparing the target and the checks of step 6. Drills of tiny databases measure mostly fixed costs, which makes the larger rows pessimistic.`, '');
  } else if (drills.length > 0) {
    push(`No recovery time is estimated: none of the ${drills.length} most recent drill(s) measured a finished restore of a run still in the bucket (the last: ${drills[0]?.report.drillId}, ${drills[0]?.report.verdict}${drills[0]?.report.error ? `, ${drills[0].report.error.name}` : ''}). Run a drill that passes and regenerate this runbook.`, '');
  } else {
    push(`No drill has restored this source yet, so nothing about its recovery time is measured and none is estimated here. Run one (state machine \`${config.appName}-restore-drill\`, or \`npx lifeboat drill ${source.name} --local\`) and regenerate this runbook.`, '');
  }

  // Last drill
  push('## Last drill', '');
  const drill = drills[0]?.report;
  if (drill) {
    push(`${drill.finishedAt}: **${drill.verdict.toUpperCase()}**${drill.error ? ` (${drill.error.name})` : ''}, run ${drill.runId} restored from the ${drill.from} bucket into ${drill.engine} ${drill.server?.version ?? '?'}.`, '');
    push('| Phase | Seconds |', '|---|---|');
    push(`| download and verify | ${drill.timings.downloadSeconds.toFixed(1)} |`, `| restore | ${drill.timings.restoreSeconds.toFixed(1)} |`, `| checks | ${drill.timings.checkSeconds.toFixed(1)} |`);
    push(`| **measured RTO** | **${drill.measuredRtoSeconds.toFixed(1)}** (target ${formatDuration(drill.rtoTargetSeconds)}) |`, '');
    for (const check of drill.checks) push(`- ${check.ok ? 'ok' : 'FAILED'} ${check.name}: ${check.detail}`);
    push('');
  } else {
    push('No drill has run yet.', '');
  }
  return lines.join('\n');
}

/** A POSIX shell single-quoted word. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** What a runbook is made of, read from the bucket: the newest verified run, recent drills and the runs they restored. */
export async function readRunbookFacts(s3: S3Client, bucket: string, source: string): Promise<{ latest?: RunRecord; drills: DrillEvidence[] }> {
  const [latest, reports] = await Promise.all([latestVerifiedRun(s3, bucket, source), recentDrillReports(s3, bucket, source, DRILL_REPORTS_READ)]);
  const runs = new Map<string, Promise<RunRecord>>();
  for (const report of reports) if (!runs.has(report.runId)) runs.set(report.runId, readRun(s3, bucket, source, report.runId));
  const drills = await Promise.all(reports.map(async (report) => {
    const run = await runs.get(report.runId);
    return run?.manifest ? { report, run } : { report };
  }));
  return { ...(latest ? { latest } : {}), drills };
}

/** `lifeboat runbook SOURCE`: Markdown on stdout or in --out. */
export async function runbookCommand(argv: readonly string[], env: NodeJS.ProcessEnv, log: (line: string) => void = console.log): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', default: DEFAULT_CONFIG_FILE }, bucket: { type: 'string' }, region: { type: 'string' },
      endpoint: { type: 'string' }, out: { type: 'string' },
    },
  });
  const config = loadConfig(values.config as string);
  const source = config.sources.find((candidate) => candidate.name === positionals[0]);
  if (!source) {
    log(`lifeboat runbook: unknown source "${positionals[0] ?? ''}" (known: ${config.sources.map((candidate) => candidate.name).join(', ')})`);
    return 2;
  }
  const region = values.region ?? env.AWS_REGION ?? config.primary.region;
  const bucket = values.bucket ?? env.LIFEBOAT_BUCKET ?? (await primaryBucketFromStack(config, region));
  const s3 = createS3Client({ region, endpoint: values.endpoint, env });
  const facts = await readRunbookFacts(s3, bucket, source.name);
  const markdown = renderRunbook({
    config, source, bucket, offsiteBucket: storageNames(config).offsiteBucketName, ...facts, now: new Date(),
  });
  if (values.out) {
    writeFileSync(values.out, `${markdown}\n`);
    log(`runbook for ${source.name} written to ${values.out}`);
  } else {
    log(markdown);
  }
  return 0;
}
