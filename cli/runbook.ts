import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createS3Client } from '../lib/aws/s3-client';
import { latestVerifiedRun, readRun, type RunRecord } from '../lib/catalog/catalog';
import { latestDrillReport } from '../lib/catalog/drills';
import { DEFAULT_CONFIG_FILE, formatDuration, formatSize, loadConfig, type LifeboatConfig, type Source } from '../lib/config';
import type { DrillReport } from '../lib/domain/drill-report';
import { runIdToDate } from '../lib/domain/run-id';
import { LIFEBOAT_VERSION } from '../lib/domain/version';
import { storageNames } from '../lib/stacks/naming';
import { formatElapsed, primaryBucketFromStack } from './status';

export const RUNBOOK_USAGE = `Usage: lifeboat runbook SOURCE [--config FILE] [--bucket BUCKET] [--region REGION] [--endpoint URL] [--out FILE]

Writes a Markdown disaster-recovery runbook for one source, from the config and the bucket:
where its backups are (both regions), the exact restore commands, the last drill, and a
recovery-time estimate for its current size and for 10x and 100x growth.
`;

export interface RunbookFacts {
  readonly config: LifeboatConfig;
  readonly source: Source;
  readonly bucket: string;
  readonly offsiteBucket: string;
  readonly latest?: RunRecord;
  readonly drill?: DrillReport;
  /** The verified run the last drill restored (its manifest gives the size drilled). */
  readonly drilledRun?: RunRecord;
  readonly now: Date;
}

/** Recovery time for a database of `bytes`, scaled from the last good drill. */
export interface RtoEstimate {
  readonly label: string;
  readonly bytes: number;
  readonly seconds: number;
  readonly withinRto: boolean;
}

/**
 * The method: the last successful drill restored a database of known size (the drilled
 * manifest's databaseSizeBytes) in a measured download + restore time, and checked it in a
 * measured time. Both are taken to grow linearly with size. That is a lower bound: index
 * builds grow faster than linearly, and a bigger restore may need a bigger machine.
 */
export function estimateRto(drill: DrillReport, drilledBytes: number, currentBytes: number, rtoSeconds: number): RtoEstimate[] {
  const transferSeconds = drill.timings.downloadSeconds + drill.timings.restoreSeconds;
  const perByte = (transferSeconds + drill.timings.checkSeconds) / Math.max(drilledBytes, 1);
  return [['current size', 1], ['10x growth', 10], ['100x growth', 100]].map(([label, factor]) => {
    const bytes = currentBytes * (factor as number);
    const seconds = bytes * perByte;
    return { label: label as string, bytes, seconds, withinRto: seconds <= rtoSeconds };
  });
}

export function renderRunbook(facts: RunbookFacts): string {
  const { config, source, bucket, offsiteBucket, latest, drill, drilledRun, now } = facts;
  const manifest = latest?.manifest;
  const database = source.connection.databases[0];
  const scheme = source.engine === 'postgres' ? 'postgres' : source.engine;
  const lines: string[] = [];
  const push = (...text: string[]) => lines.push(...text);

  push(`# Disaster recovery runbook: ${source.name}`, '');
  push(`Generated ${now.toISOString()} by Lifeboat ${LIFEBOAT_VERSION} from the config and from s3://${bucket}. Regenerate it after every drill: \`npx lifeboat runbook ${source.name}\`.`, '');
  push('## What is protected', '');
  push('| | |', '|---|---|');
  push(`| Source | \`${source.name}\`: ${source.engine} at ${source.connection.host}:${source.connection.port}, databases ${source.connection.databases.map((name) => `\`${name}\``).join(', ')} |`);
  push(`| Tier | ${source.tier.name}: RPO ${formatDuration(source.tier.rpoSeconds)}, RTO ${formatDuration(source.tier.rtoSeconds)}, backups every ${formatDuration(source.tier.scheduleSeconds)} (${source.tier.timezone}), kept ${formatDuration(source.tier.retentionSeconds)}, drilled every ${formatDuration(source.tier.drillSeconds)} |`, '');

  push('## Where the backups are', '');
  push('| Copy | Region | Bucket | Prefix |', '|---|---|---|---|');
  push(`| primary | ${config.primary.region} | \`${bucket}\` | \`runs/${source.name}/\` |`);
  push(`| offsite (${config.offsite.storageClass}) | ${config.offsite.region} | \`${offsiteBucket}\` | \`runs/${source.name}/\` |`, '');
  push('Each bucket is self-describing: every run folder holds the artifact (stock `pg_restore` / `mysql` formats), `manifest.json` (sizes, SHA-256, tables and row counts), `verification.json` (the verifier\'s verdict; only runs whose verdict is `ok` count) and `offsite.json`. The offsite bucket alone is enough to restore when the primary region is gone.', '');
  if (manifest && latest) {
    const age = now.getTime() - (runIdToDate(latest.runId)?.getTime() ?? now.getTime());
    push(`Latest verified run: **${latest.runId}** (${formatDuration(age / 1000)} ago; offsite ${latest.offsite ? `confirmed, lag ${formatDuration(latest.offsite.lagSeconds)}` : 'not confirmed'}).`, '');
    push('| Artifact | Bytes | SHA-256 |', '|---|---|---|');
    for (const artifact of manifest.artifacts) push(`| \`${artifact.key}\` | ${artifact.bytes} | \`${artifact.sha256}\` |`);
    if (manifest.globals) push(`| \`${manifest.globals.key}\` | ${manifest.globals.bytes} | \`${manifest.globals.sha256}\` |`);
    push('');
  } else {
    push('**There is no verified run of this source.** Nothing below can succeed until one exists: check `npx lifeboat status` and the backup-run executions.', '');
  }

  push('## Restore with Lifeboat', '');
  push('```sh');
  push('export LIFEBOAT_DB_PASSWORD=…   # the target server\'s password; never on the command line');
  push(`npx lifeboat restore ${source.name} --bucket ${bucket} --target-url ${scheme}://USER@TARGET_HOST:${source.connection.port} --jobs 4`);
  push('# the primary region is gone: restore from the offsite copy (needs only that bucket)');
  push(`npx lifeboat restore ${source.name} --from offsite --bucket ${offsiteBucket} --region ${config.offsite.region} --target-url ${scheme}://USER@TARGET_HOST:${source.connection.port}`);
  push('# a point in time: the newest verified run at or before it');
  push(`npx lifeboat restore ${source.name} --bucket ${bucket} --at 2026-01-31T23:59:00Z --target-url …`);
  push('```', '');
  push('It verifies the SHA-256 against the manifest before it touches the target, refuses a non-empty target unless `--clean` is given (and says what it would replace), and prints the time of each phase. It reads exactly the object versions the manifest names (the ones that were verified).', '');

  const names = storageNames(config);
  const offsiteAccount = names.offsiteAccount ?? names.primaryAccount ?? 'OFFSITE_ACCOUNT';
  push('## When the primary account is lost or compromised', '');
  push(`The offsite copy lives in account ${offsiteAccount} (${config.offsite.region}${names.crossAccount ? ', not the primary account' : ''}): its replicas keep their Object Lock, no lifecycle rule expires them, and only the offsite stack's deployment and break-glass roles may reconfigure the bucket. That account has a restore role of its own, which needs nothing of the primary account:`, '');
  push('```sh');
  push(`# signed in to account ${offsiteAccount} (its administrators may assume the role)`);
  push(`aws sts assume-role --role-arn arn:aws:iam::${offsiteAccount}:role/lifeboat/operator/${names.offsiteRestoreRoleName} --role-session-name restore-${source.name}`);
  push('# export the returned AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, then:');
  push(`npx lifeboat restore ${source.name} --from offsite --bucket ${offsiteBucket} --region ${config.offsite.region} --target-url ${scheme}://USER@TARGET_HOST:${source.connection.port}`);
  push('```', '');
  push(`The role may read and list the offsite bucket's runs and drill reports (exact versions) and decrypt them through S3; it cannot write or delete. In the primary account, operators use \`arn:aws:iam::${names.primaryAccount ?? 'PRIMARY_ACCOUNT'}:role/lifeboat/operator/${names.operatorRoleName}\` (or attach the stack's \`OperatorPolicyArn\` output to their own role): it reads both copies.`, '');

  push('## Restore with stock tools only (no Lifeboat installed)', '');
  const run = latest?.runId ?? 'RUN_ID';
  const artifact = manifest?.artifacts[0]?.key ?? `runs/${source.name}/${run}/${database}${source.engine === 'postgres' ? '.pgdump' : '.sql.zst'}`;
  const file = artifact.split('/').pop() as string;
  const artifactVersion = manifest?.artifacts[0]?.versionId;
  push('The manifest names each artifact\'s S3 version: fetch that one (a later version at the same key, if any, is not what was verified). `verification.json` names the manifest\'s version.', '');
  push('```sh');
  push(`aws s3 cp s3://${bucket}/runs/${source.name}/${run}/verification.json . && jq .manifest verification.json   # the manifest version that was verified`);
  push(`aws s3api get-object --bucket ${bucket} --key runs/${source.name}/${run}/manifest.json --version-id MANIFEST_VERSION manifest.json`);
  push(`aws s3api get-object --bucket ${bucket} --key ${artifact} --version-id ${artifactVersion ?? 'ARTIFACT_VERSION'} ${artifact.split('/').pop() as string}   # the version in manifest.json`);
  push(`sha256sum ${file}    # must equal the artifact's sha256 in manifest.json${manifest ? ` (${manifest.artifacts[0].sha256})` : ''}`);
  if (source.engine === 'postgres') {
    push(`aws s3 cp s3://${bucket}/runs/${source.name}/${run}/globals.sql . && psql -h TARGET_HOST -U USER -d postgres -f globals.sql   # roles, no passwords`);
    push(`createdb -h TARGET_HOST -U USER ${database}`);
    push(`pg_restore -h TARGET_HOST -U USER -d ${database} --jobs 4 --exit-on-error ${file}`);
  } else {
    push(`zstd -dc ${file} | mysql -h TARGET_HOST -u USER -p    # the dump recreates database ${database}`);
  }
  push('```', '');

  push('## Last drill', '');
  if (drill) {
    push(`${drill.finishedAt}: **${drill.verdict.toUpperCase()}**, run ${drill.runId} restored from the ${drill.from} bucket into ${drill.engine} ${drill.server?.version ?? '?'}.`, '');
    push('| Phase | Seconds |', '|---|---|');
    push(`| download and verify | ${drill.timings.downloadSeconds.toFixed(1)} |`, `| restore | ${drill.timings.restoreSeconds.toFixed(1)} |`, `| checks | ${drill.timings.checkSeconds.toFixed(1)} |`);
    push(`| **measured RTO** | **${drill.measuredRtoSeconds.toFixed(1)}** (target ${formatDuration(drill.rtoTargetSeconds)}) |`, '');
    for (const check of drill.checks) push(`- ${check.ok ? 'ok' : 'FAILED'} ${check.name}: ${check.detail}`);
    push('');
  } else {
    push(`No drill has run yet, so nothing about recovery time is measured. Run one: \`npx lifeboat drill ${source.name} --local\`.`, '');
  }

  push('## Recovery time estimate', '');
  const drilledBytes = drilledRun?.manifest?.databaseSizeBytes;
  if (drill && drill.verdict === 'ok' && drilledBytes && manifest) {
    push('| Database size | Estimated recovery time | Within the RTO? |', '|---|---|---|');
    for (const estimate of estimateRto(drill, drilledBytes, manifest.databaseSizeBytes, source.tier.rtoSeconds)) {
      push(`| ${estimate.label}: ${formatSize(estimate.bytes)} | ${formatElapsed(estimate.seconds)} | ${estimate.withinRto ? 'yes' : `**no** (RTO ${formatDuration(source.tier.rtoSeconds)})`} |`);
    }
    push('');
    push(`Method: the last successful drill restored a ${formatSize(drilledBytes)} database (the drilled run's manifest) in ${drill.measuredRtoSeconds.toFixed(1)} s of download, restore and checks; the estimate scales that time linearly with the database size (current size from the latest manifest). It is a lower bound: index builds grow faster than linearly, and larger restores may need a larger machine and more \`--jobs\`.`, '');
  } else {
    push('Not available: it needs a successful drill of a verified run (the measured throughput).', '');
  }
  return lines.join('\n');
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
  const [latest, drill] = await Promise.all([latestVerifiedRun(s3, bucket, source.name), latestDrillReport(s3, bucket, source.name)]);
  const drilledRun = drill ? await readRun(s3, bucket, source.name, drill.runId) : undefined;
  const markdown = renderRunbook({
    config, source, bucket, offsiteBucket: storageNames(config).offsiteBucketName, latest, drill, drilledRun, now: new Date(),
  });
  if (values.out) {
    writeFileSync(values.out, `${markdown}\n`);
    log(`runbook for ${source.name} written to ${values.out}`);
  } else {
    log(markdown);
  }
  return 0;
}
