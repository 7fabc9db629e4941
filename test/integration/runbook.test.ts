/**
 * `lifeboat runbook`: the procedure a person on call walks, with one source's facts, read from a
 * real S3-compatible server holding runs and drill reports as the app leaves them. The runbook's
 * commands are run the way a person pastes them: its `lifeboat restore` command line, the
 * versioned downloads of the stock-tool path (through the SDK with the printed bucket, key and
 * version: there is no AWS CLI here), its `sha256sum -c` lines, its pg_restore / mariadb lines into
 * throwaway servers, and the recovery checks — which must print ok, and must stop printing ok
 * once the restored data differs from the manifest.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { restoreCommand } from '../../cli/restore';
import { readRunbookFacts, renderRunbook } from '../../cli/runbook';
import { formatElapsed } from '../../cli/status';
import { formatDuration, formatSize, type LifeboatConfig, type Source } from '../../lib/config';
import { artifactKey, globalsKey, manifestKey, runPrefix } from '../../lib/domain/layout';
import { MANIFEST_SCHEMA_VERSION, type Manifest, type ManifestTable } from '../../lib/domain/manifest';
import { runIdToDate } from '../../lib/domain/run-id';
import { LIFEBOAT_VERSION } from '../../lib/domain/version';
import { drillReport, writeDrillReport } from '../fixtures/drills';
import { testConfig } from '../fixtures/config';
import { buildRun, sha256, writeRun, writeVersionedRun, type RunFiles } from '../fixtures/runs';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startPostgres, type PgServer } from '../harness/postgres';
import { startS3, TEST_CREDENTIALS, type S3Server } from '../harness/s3';

const BUCKET = 'lifeboat-primary';
const OFFSITE_BUCKET = 'lifeboat-offsite-111111111111-eu-central-1';
const NOW = new Date('2026-11-26T05:00:00Z');

const orders: Source = {
  ...(testConfig.sources[0] as Source),
  drillChecks: [{ name: 'ten orders', sql: 'SELECT count(*) = 10 FROM orders' }],
};
const catalogue: Source = {
  ...(testConfig.sources[1] as Source),
  name: 'catalogue',
  engine: 'mariadb',
  connection: { ...(testConfig.sources[1] as Source).connection, host: 'catalogue.db.internal', databases: ['shop', 'pricing'] },
  drillChecks: [{ name: 'prices positive', sql: 'SELECT MIN(amount) > 0 FROM prices', database: 'pricing' }],
};
const config: LifeboatConfig = { ...testConfig, sources: [orders, catalogue] };

let s3Server: S3Server;
let s3: S3Client;
let pg: PgServer;
let maria: MariaDbServer;
let work: string;

/** The throwaway servers' own tools, as a person's shell would find them. */
function bash(script: string, cwd: string, env: Record<string, string>): { code: number; stdout: string; stderr: string } {
  const clean: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of ['PGPASSWORD', 'MYSQL_PWD', 'LIFEBOAT_DB_PASSWORD', 'PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE']) if (!(name in env)) delete clean[name];
  const result = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd, env: clean, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function run(command: string, args: string[], env: Record<string, string> = {}): Buffer {
  const result = spawnSync(command, args, { env: { ...process.env, ...env }, maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr.toString()}`);
  return result.stdout;
}

/** The text of one `## heading` section (up to the next `## `). */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}`);
  if (start < 0) throw new Error(`no section "## ${heading}" in the runbook`);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end < 0 ? undefined : end);
}

function shellBlocks(text: string): string[] {
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1] as string);
}

/** Runs the runbook's `aws s3api get-object` lines through the SDK, exactly as printed; the other lines are returned. */
async function runDownloads(block: string, dir: string): Promise<{ downloaded: string[]; rest: string[] }> {
  const downloaded: string[] = [];
  const rest: string[] = [];
  for (const line of block.split('\n')) {
    const match = /^aws s3api get-object --region (\S+) --bucket (\S+) --key (\S+)(?: --version-id (\S+))? (\S+)/.exec(line);
    if (!match) {
      rest.push(line);
      continue;
    }
    const [, , bucket, key, versionId, file] = match as unknown as string[];
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
    writeFileSync(path.join(dir, file as string), Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()));
    downloaded.push(`${key}${versionId ? `@${versionId}` : ''}`);
  }
  return { downloaded, rest };
}

/** `npx lifeboat restore …` of the runbook (continuation lines joined), with the target's variables filled in. */
function restoreArgs(block: string, which: 'primary' | 'offsite', target: Record<string, string>): string[] {
  const commands = block.replace(/\\\n\s*/g, '').split('\n').filter((line) => line.startsWith('npx lifeboat restore '));
  const command = commands.find((line) => (which === 'offsite') === line.includes('--from offsite'));
  if (!command) throw new Error(`no ${which} lifeboat restore command in:\n${block}`);
  return command.replace(/\$(\w+)/g, (_all, name: string) => target[name] ?? `$${name}`).split(/\s+/).slice(3);
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length % 2 ? sorted[(sorted.length - 1) / 2] as number : ((sorted[sorted.length / 2 - 1] as number) + (sorted[sorted.length / 2] as number)) / 2;
};

beforeAll(async () => {
  [s3Server, pg, maria] = await Promise.all([startS3(), startPostgres(), startMariaDb()]);
  s3 = s3Server.client();
  await s3Server.createBucket(BUCKET, { versioning: true });
  work = mkdtempSync(path.join(tmpdir(), 'lifeboat-runbook-test-'));
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await Promise.all([s3Server?.stop(), pg?.stop(), maria?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('PostgreSQL source with drills: every step, its commands run', () => {
  const R0 = '20261126T010000Z'; // drilled, then pruned: not in the bucket
  const R1 = '20261126T020000Z';
  const R2 = '20261126T030000Z'; // the newest verified run
  const R3 = '20261126T031500Z'; // newer, but its verification failed
  const tables: ManifestTable[] = [
    { database: 'orders', schema: 'public', name: 'orders', rows: 10, exact: true },
    { database: 'orders', schema: 'public', name: 'Kunden Ümlaut', rows: 3, exact: true },
    { database: 'orders', schema: 'public', name: 'we"ird', rows: 2, exact: true },
    { database: 'orders', schema: 'audit', name: 'events', rows: 1000, exact: false },
  ];
  const GLOBALS = 'CREATE ROLE lifeboat_runbook_app;\n';
  let manifests: Record<string, Manifest>;
  let markdown: string;
  let target: Record<string, string>;

  function pgRun(runId: string, dump: Buffer, databaseSizeBytes: number, serverVersion: string, clientVersion: string): RunFiles {
    const key = artifactKey(orders.name, runId, 'orders', '.pgdump');
    const objects = new Map<string, Buffer>([[key, dump], [globalsKey(orders.name, runId), Buffer.from(GLOBALS)]]);
    const startedAt = new Date((runIdToDate(runId) as Date).getTime() + 2_000);
    return {
      objects,
      manifest: {
        schemaVersion: MANIFEST_SCHEMA_VERSION, lifeboatVersion: LIFEBOAT_VERSION, source: orders.name, engine: 'postgres', tier: 'tier1', runId,
        startedAt: startedAt.toISOString(), finishedAt: new Date(startedAt.getTime() + 5_000).toISOString(),
        server: { version: serverVersion, major: Number.parseInt(serverVersion, 10) },
        client: { tool: 'pg_dump', version: clientVersion, major: Number.parseInt(clientVersion, 10) },
        databaseSizeBytes, encoding: 'UTF8',
        artifacts: [{ database: 'orders', key, bytes: dump.length, sha256: sha256(dump), format: 'pg_dump-custom', compression: 'gzip:1', parts: 1 }],
        globals: { key: globalsKey(orders.name, runId), bytes: Buffer.byteLength(GLOBALS), sha256: sha256(GLOBALS) },
        tables, rowCountConsistency: 'same-snapshot', extensions: [{ database: 'orders', name: 'plpgsql', version: '1.0' }],
      },
    };
  }

  beforeAll(async () => {
    await pg.createDatabase('orders');
    await pg.psql(`
      CREATE TABLE orders (id int PRIMARY KEY, total numeric);
      INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 10) g;
      CREATE TABLE "Kunden Ümlaut" (id int);
      INSERT INTO "Kunden Ümlaut" SELECT generate_series(1, 3);
      CREATE TABLE "we""ird" (id int);
      INSERT INTO "we""ird" VALUES (1), (2);
      CREATE SCHEMA audit;
      CREATE TABLE audit.events (id int);
      INSERT INTO audit.events SELECT generate_series(1, 5);`, 'orders');
    const serverVersion = (await pg.psql('SHOW server_version')).trim().split(' ')[0] as string;
    const clientVersion = /(\d+\.\d+)/.exec(run('pg_dump', ['--version']).toString())?.[1] as string;
    const dump = run('pg_dump', ['-Fc', '-Z1', '-d', 'orders'], pg.env);
    await pg.psql('DROP DATABASE orders');

    manifests = {
      [R1]: await writeVersionedRun(s3, BUCKET, pgRun(R1, dump, 6e9, serverVersion, clientVersion)),
      [R2]: await writeVersionedRun(s3, BUCKET, pgRun(R2, dump, 8e9, serverVersion, clientVersion), { offsite: true }),
    };
    await writeRun(s3, BUCKET, buildRun(orders.name, R3), { verification: 'failed' });
    // A later write at the artifact's key: the runbook must fetch the version the manifest names.
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: (manifests[R2] as Manifest).artifacts[0]?.key, Body: 'not the verified dump' }));

    const r0 = { ...(manifests[R2] as Manifest), runId: R0 };
    for (const report of [
      drillReport(manifests[R2] as Manifest, { drillId: '20261126T050000Z', downloadSeconds: 3, restoreSeconds: 0.5, error: 'RestoreFailed' }),
      drillReport(manifests[R2] as Manifest, { drillId: '20261126T045000Z', downloadSeconds: 4, restoreSeconds: 20 }),
      drillReport(manifests[R2] as Manifest, { drillId: '20261126T044000Z', downloadSeconds: 10, restoreSeconds: 30, error: 'RtoExceeded' }),
      drillReport(manifests[R1] as Manifest, { drillId: '20261126T043000Z', downloadSeconds: 2, restoreSeconds: 50 }),
      drillReport(r0, { drillId: '20261126T042000Z', downloadSeconds: 0.01, restoreSeconds: 0.01 }),
    ]) await writeDrillReport(s3, BUCKET, report);

    const facts = await readRunbookFacts(s3, BUCKET, orders.name);
    markdown = renderRunbook({ config, source: orders, bucket: BUCKET, offsiteBucket: OFFSITE_BUCKET, ...facts, now: NOW });
    target = { TARGET_HOST: pg.host, TARGET_PORT: String(pg.port), TARGET_USER: pg.user };
  }, 60_000);

  test('1. prerequisites: the roles by their real names, the password from the environment, pg_restore of the dump\'s major, disk for this size', () => {
    const text = section(markdown, '1. Prerequisites');
    const manifest = manifests[R2] as Manifest;
    expect(text).toContain(`arn:aws:iam::111111111111:role/lifeboat/operator/${config.appName}-operator-${config.primary.region}`);
    expect(text).toContain(`arn:aws:iam::111111111111:role/lifeboat/operator/${config.appName}-offsite-restore-${config.offsite.region}`);
    expect(text).toMatch(/LIFEBOAT_DB_PASSWORD/);
    expect(text).toContain('read -rs -p \'target password: \' PGPASSWORD');
    expect(text).toContain(`PostgreSQL **${Math.max(manifest.server.major, manifest.client.major)} or newer**`);
    expect(text).toContain(`PostgreSQL ${manifest.server.version} by pg_dump ${manifest.client.version}`);
    const artifactBytes = manifest.artifacts[0]!.bytes + manifest.globals!.bytes;
    expect(text).toContain(`at least **${formatSize(artifactBytes * 1.25)}** free (${formatSize(artifactBytes)} of artifacts`);
    expect(text).toContain(`about **${formatSize(8e9)}**`);
  });

  test('2. assess: how to look, and the newest verified run (not the newer failed one) with its age and offsite state', () => {
    const text = section(markdown, '2. Assess');
    expect(text).toContain('npx lifeboat status');
    expect(text).toContain(`npx lifeboat list ${orders.name}`);
    expect(text).toContain(`--state-machine-arn arn:aws:states:${config.primary.region}:111111111111:stateMachine:${config.appName}-backup-run`);
    const startedAt = new Date((manifests[R2] as Manifest).startedAt);
    expect(text).toContain(`Newest verified run: **${R2}**, data as of ${startedAt.toISOString()}`);
    expect(text).toContain(`${formatDuration((NOW.getTime() - startedAt.getTime()) / 1000)} old`);
    expect(text).toMatch(/Offsite copy: confirmed in .* lag 1m/);
    expect(text).toContain('no point-in-time recovery');
    expect(text).not.toContain(R3);
  });

  test('3. locate: both buckets and the exact run folder, every object with its version', () => {
    const text = section(markdown, '3. Locate');
    expect(text).toContain(`| primary | ${config.primary.region} | 111111111111 | \`${BUCKET}\` | \`runs/orders/\` | \`${runPrefix('orders', R2)}\` |`);
    expect(text).toContain(`| offsite (STANDARD_IA) | ${config.offsite.region} | 111111111111 | \`${OFFSITE_BUCKET}\` | \`runs/orders/\` | \`${runPrefix('orders', R2)}\` |`);
    const manifest = manifests[R2] as Manifest;
    for (const object of [manifest.artifacts[0]!, manifest.globals!]) {
      expect(object.versionId).toBeDefined();
      expect(text).toContain(`| \`${object.key}\` | ${object.bytes} | \`${object.sha256}\` | \`${object.versionId}\` |`);
    }
    expect(text).toContain(`aws s3 ls s3://${OFFSITE_BUCKET}/${runPrefix('orders', R2)} --region ${config.offsite.region}`);
  });

  test('4. verify: lifeboat verify, and the stock downloads of the verified versions pass sha256sum -c', async () => {
    const text = section(markdown, '4. Verify the backup');
    expect(text).toContain(`npx lifeboat verify orders --run ${R2}`);
    const block = shellBlocks(text)[1] as string;
    const dir = path.join(work, `restore-orders-${R2}`);
    mkdirSync(dir, { recursive: true });
    const { downloaded, rest } = await runDownloads(block, dir);
    const manifest = manifests[R2] as Manifest;
    expect(downloaded).toEqual(expect.arrayContaining([
      `${manifestKey('orders', R2)}@${(await readRunbookFacts(s3, BUCKET, 'orders')).latest?.verification?.manifest?.versionId}`,
      `${manifest.artifacts[0]!.key}@${manifest.artifacts[0]!.versionId}`,
    ]));
    const checks = rest.filter((line) => line.includes('sha256sum -c') && !line.startsWith('jq '));
    const result = bash(checks.join('\n'), dir, {});
    expect(result.stderr).toBe('');
    expect(result.stdout.trim().split('\n')).toEqual(['manifest.json: OK', 'orders.pgdump: OK', 'globals.sql: OK']);
    // The same lines catch a file that is not the verified one.
    writeFileSync(path.join(work, 'orders.pgdump'), 'not the verified dump');
    expect(bash(checks.filter((line) => line.includes('orders.pgdump')).join('\n'), work, {}).code).not.toBe(0);
  });

  test('5. restore: stop traffic first, then its lifeboat restore command and its stock commands both restore the run', async () => {
    const text = section(markdown, '5. Restore');
    expect(text).toContain('**Stop application traffic first.**');
    expect(text).toContain(`writes to \`orders\` on ${orders.connection.host}:${orders.connection.port}`);
    expect(text).toMatch(/Why: a write that lands during the restore is lost/);
    expect(text).toContain(`back up ${orders.name} (${orders.tier.name})`);
    const [, lifeboat, stock] = shellBlocks(text) as [string, string, string];
    expect(restoreArgs(lifeboat, 'offsite', target)).toEqual([
      'orders', '--run', R2, '--from', 'offsite', '--bucket', OFFSITE_BUCKET, '--region', config.offsite.region,
      '--target-url', `postgres://${pg.user}@${pg.host}:${pg.port}`, '--globals', '--jobs', '4',
    ]);

    // The command as printed, against the local server.
    const lines: string[] = [];
    let err = '';
    const env = { AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey };
    const code = await restoreCommand(restoreArgs(lifeboat, 'primary', target), env, { s3, log: (line) => lines.push(line), stderr: { write: (chunk: string) => (err += chunk) } });
    expect(err).not.toMatch(/error|failed|refused/i);
    expect(code).toBe(0);
    expect(lines.join('\n')).toContain(`run orders/${R2}`);
    expect((await pg.psql('SELECT count(*) FROM orders', 'orders')).trim()).toBe('10');
    await pg.psql('DROP DATABASE orders');

    // The stock commands, in the folder step 4 filled.
    expect(stock).toContain(`pg_restore -h "$TARGET_HOST" -p "$TARGET_PORT" -U "$TARGET_USER" -d orders --jobs 4 --exit-on-error orders.pgdump`);
    const result = bash(stock, path.join(work, `restore-orders-${R2}`), target);
    expect(result.code).toBe(0);
    expect((await pg.psql('SELECT count(*) FROM "Kunden Ümlaut"', 'orders')).trim()).toBe('3');
  });

  test('6. verify the recovery: the drill\'s checks print ok with the expected values next to them, and stop when the data differs', async () => {
    const text = section(markdown, '6. Verify the recovery');
    const [tableSet, rowCounts, extensions, drillCheck] = shellBlocks(text) as [string, string, string, string];
    expect(text).toContain('| orders: public.orders | 10 |');
    expect(text).toContain('| orders: audit.events | ~1000 (estimate) |');
    expect(bash(tableSet, work, target).stdout).toContain('(0 rows)');
    const counts = bash(rowCounts, work, target).stdout;
    expect(counts).toMatch(/orders: public\.orders\s+\|\s+10\s+\|\s+10\s+\|\s+ok/);
    expect(counts).toMatch(/orders: public\.Kunden Ümlaut\s+\|\s+3\s+\|\s+3\s+\|\s+ok/);
    expect(counts).toMatch(/orders: public\.we"ird\s+\|\s+2\s+\|\s+2\s+\|\s+ok/);
    expect(counts).toMatch(/orders: audit\.events\s+\|\s+~1000\s+\|\s+5\s+\|\s+estimate, not compared/);
    expect(counts).not.toContain('DIFFERENT');
    expect(bash(extensions, work, target).stdout).toMatch(/plpgsql\s+\|\s+1\.0\s+\|\s+1\.0\s+\|\s+ok/);
    expect(bash(drillCheck, work, target).stdout).toMatch(/^\s*t$/m);

    await pg.psql('DELETE FROM "Kunden Ümlaut" WHERE id = 1; DROP TABLE "we""ird"; CREATE TABLE stray (id int); DELETE FROM orders WHERE id = 1;', 'orders');
    const set = bash(tableSet, work, target).stdout;
    expect(set).toMatch(/missing after the restore\s+\|\s+public\s+\|\s+we"ird/);
    expect(set).toMatch(/not in the manifest\s+\|\s+public\s+\|\s+stray/);
    const failed = bash(rowCounts.replace(/\nUNION ALL\nSELECT 'orders: public\.we"ird'[^\n]*/, ''), work, target).stdout;
    expect(failed).toMatch(/orders: public\.Kunden Ümlaut\s+\|\s+3\s+\|\s+2\s+\|\s+DIFFERENT/);
    expect(bash(drillCheck, work, target).stdout).toMatch(/^\s*f$/m);
  });

  test('7. after the recovery: what to record, whom to notify, traffic and a fresh backup and drill', () => {
    const text = section(markdown, '7. After the recovery');
    const startedAt = (manifests[R2] as Manifest).startedAt;
    expect(text).toContain(`The run restored (\`${R2}\`)`);
    expect(text).toContain(`data-loss window`);
    expect(text).toContain(new Date(startedAt).toISOString());
    expect(text).toContain('`oncall@example.com`, `dba@example.com`');
    expect(text).toContain(`--stack-name ${config.appName}-Primary --query "Stacks[0].Outputs[?OutputKey=='AlarmTopicArn'].OutputValue"`);
    expect(text).toContain('**Re-enable traffic**');
    expect(text).toContain(`${config.appName}-backup-run`);
    expect(text).toContain(`${config.appName}-restore-drill`);
  });

  test('recovery time: download and restore at the median of the drills that restored, each separately, against the RTO', () => {
    const text = section(markdown, 'Recovery time estimate');
    const bytes = (manifest: Manifest) => manifest.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0) + (manifest.globals?.bytes ?? 0);
    const r1 = manifests[R1] as Manifest;
    const r2 = manifests[R2] as Manifest;
    // The drills that finished a restore of a run still in the bucket: not the RestoreFailed one, not R0's.
    const download = median([bytes(r2) / 4, bytes(r2) / 10, bytes(r1) / 2]);
    const restore = median([r2.databaseSizeBytes / 20, r2.databaseSizeBytes / 30, r1.databaseSizeBytes / 50]);
    expect(text).toContain(`download **${formatSize(download)}/s** of artifacts, restore **${formatSize(restore)}/s** of database`);
    const ratio = bytes(r2) / r2.databaseSizeBytes;
    const rows: [string, number][] = [[`today: ${formatSize(r2.databaseSizeBytes)}`, r2.databaseSizeBytes], ['10 GB', 10e9], ['100 GB', 100e9], ['1 TB', 1e12], ['10 TB', 10e12]];
    const verdicts: string[] = [];
    for (const [label, size] of rows) {
      const artifacts = label.startsWith('today') ? bytes(r2) : size * ratio;
      const downloadSeconds = artifacts / download;
      const restoreSeconds = size / restore;
      const total = downloadSeconds + restoreSeconds;
      const verdict = total <= orders.tier.rtoSeconds ? 'within' : '**exceeds**';
      verdicts.push(verdict);
      expect(text).toContain(`| ${label} | ${formatSize(artifacts)} | ~${formatElapsed(downloadSeconds)} | ~${formatElapsed(restoreSeconds)} | ~${formatElapsed(total)} | ${verdict} |`);
    }
    expect(verdicts).toEqual(['within', 'within', 'within', '**exceeds**', '**exceeds**']);
    expect(text).toMatch(/Estimates, not measurements/);
    expect(text).toContain('| 20261126T044000Z | 20261126T030000Z |');
    expect(text).not.toContain('20261126T050000Z');
    expect(text).not.toContain('20261126T042000Z');
    // The summary at the top quotes today's row.
    expect(markdown).toContain(`| Recovery time | ~${formatElapsed(bytes(r2) / download + r2.databaseSizeBytes / restore)} for today's size (estimate from 3 drill(s); RTO 1h: within)`);
  });

  test('the last drill is the newest report, failed or not', () => {
    expect(section(markdown, 'Last drill')).toContain('**FAILED** (RestoreFailed), run 20261126T030000Z restored from the offsite bucket');
  });

  test('no secret: neither the password secret\'s ARN nor a credential of the environment', () => {
    expect(markdown).not.toContain(orders.connection.passwordSecretArn);
    expect(markdown).not.toMatch(/secretsmanager/);
    expect(markdown).not.toContain(TEST_CREDENTIALS.secretAccessKey);
    expect(markdown).not.toMatch(/PGPASSWORD=\S|MYSQL_PWD=\S|LIFEBOAT_DB_PASSWORD=[^"]/);
  });
});

describe('MariaDB source, never drilled', () => {
  const RUN = '20261126T030000Z';
  let manifest: Manifest;
  let markdown: string;
  let target: Record<string, string>;
  const tables: ManifestTable[] = [
    { database: 'shop', schema: 'shop', name: 'customers', rows: 7, exact: true },
    { database: 'shop', schema: 'shop', name: 'Kunden Ümlaut', rows: 3, exact: true },
    { database: 'shop', schema: 'shop', name: 'we`ird', rows: 2, exact: true },
    { database: 'pricing', schema: 'pricing', name: 'prices', rows: 4, exact: true },
  ];

  beforeAll(async () => {
    await maria.sql(`
      CREATE DATABASE shop CHARACTER SET utf8mb4; CREATE DATABASE pricing;
      CREATE TABLE shop.customers (id INT PRIMARY KEY); INSERT INTO shop.customers VALUES (1), (2), (3), (4), (5), (6), (7);
      CREATE TABLE shop.\`Kunden Ümlaut\` (id INT); INSERT INTO shop.\`Kunden Ümlaut\` VALUES (1), (2), (3);
      CREATE TABLE shop.\`we\`\`ird\` (id INT); INSERT INTO shop.\`we\`\`ird\` VALUES (1), (2);
      CREATE TABLE pricing.prices (id INT, amount DECIMAL(6, 2)); INSERT INTO pricing.prices VALUES (1, 1.5), (2, 2), (3, 9.99), (4, 0.01);`);
    const version = (await maria.sql('SELECT VERSION();')).trim();
    const objects = new Map<string, Buffer>();
    const artifacts = ['shop', 'pricing'].map((database) => {
      const sql = run('mariadb-dump', ['--no-defaults', '--protocol=TCP', '-h', maria.host, '-P', String(maria.port), '-u', maria.user, '--single-transaction', '--databases', database]);
      const data = spawnSync('zstd', ['-q', '-3', '-c'], { input: sql, maxBuffer: 64 * 1024 * 1024 }).stdout;
      const key = artifactKey(catalogue.name, RUN, database, '.sql.zst');
      objects.set(key, data);
      return { database, key, bytes: data.length, sha256: sha256(data), format: 'sql' as const, compression: 'zstd:3', parts: 1 };
    });
    await maria.sql('DROP DATABASE shop; DROP DATABASE pricing;');
    manifest = await writeVersionedRun(s3, BUCKET, {
      objects,
      manifest: {
        schemaVersion: MANIFEST_SCHEMA_VERSION, lifeboatVersion: LIFEBOAT_VERSION, source: catalogue.name, engine: 'mariadb', tier: 'tier3', runId: RUN,
        startedAt: '2026-11-26T03:00:04.000Z', finishedAt: '2026-11-26T03:00:09.000Z',
        server: { version, major: Number.parseInt(version, 10) }, client: { tool: 'mariadb-dump', version: '10.11', major: 10 },
        databaseSizeBytes: 3e6, artifacts, tables, rowCountConsistency: 'same-snapshot', extensions: [],
      },
    });
    const facts = await readRunbookFacts(s3, BUCKET, catalogue.name);
    markdown = renderRunbook({ config, source: catalogue, bucket: BUCKET, offsiteBucket: OFFSITE_BUCKET, ...facts, now: NOW });
    target = { TARGET_HOST: maria.host, TARGET_PORT: String(maria.port), TARGET_USER: maria.user };
  }, 60_000);

  test('prerequisites name the mariadb client and zstd, and the password in MYSQL_PWD', () => {
    const text = section(markdown, '1. Prerequisites');
    expect(text).toContain(`The \`mariadb\` client (the run was dumped from mariadb ${manifest.server.version} by mariadb-dump 10.11)`);
    expect(text).toContain('`zstd`');
    expect(text).toContain('read -rs -p \'target password: \' MYSQL_PWD');
  });

  test('the stock commands restore both databases from the verified versions, and the checks print ok until the data differs', async () => {
    const dir = path.join(work, `restore-catalogue-${RUN}`);
    mkdirSync(dir, { recursive: true });
    const { rest } = await runDownloads(shellBlocks(section(markdown, '4. Verify the backup'))[1] as string, dir);
    expect(bash(rest.filter((line) => line.startsWith('echo ')).join('\n'), dir, {}).stdout.trim().split('\n'))
      .toEqual(['manifest.json: OK', 'shop.sql.zst: OK', 'pricing.sql.zst: OK']);

    const stock = shellBlocks(section(markdown, '5. Restore'))[2] as string;
    expect(stock).toContain('zstd -dc shop.sql.zst | mariadb -h "$TARGET_HOST" -P "$TARGET_PORT" -u "$TARGET_USER"');
    const restored = bash(stock, dir, target);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);

    const text = section(markdown, '6. Verify the recovery');
    const blocks = shellBlocks(text);
    // Per database: the table set, then the row counts; then the configured drill check.
    expect(blocks).toHaveLength(5);
    const [shopSet, shopCounts, pricingSet, pricingCounts, check] = blocks as [string, string, string, string, string];
    expect(check).toContain("mariadb -h \"$TARGET_HOST\" -P \"$TARGET_PORT\" -u \"$TARGET_USER\" pricing -e 'SELECT MIN(amount) > 0 FROM prices'");
    expect(bash(shopSet, work, target).stdout.trim()).toBe('');
    expect(bash(pricingSet, work, target).stdout.trim()).toBe('');
    const counts = bash(shopCounts, work, target).stdout;
    expect(counts).toMatch(/\| shop\.customers\s+\| 7\s+\|\s+7 \| ok/);
    expect(counts).toMatch(/\| shop\.Kunden Ümlaut\s+\| 3\s+\|\s+3 \| ok/);
    expect(counts).toMatch(/\| shop\.we`ird\s+\| 2\s+\|\s+2 \| ok/);
    expect(bash(pricingCounts, work, target).stdout).toMatch(/\| pricing\.prices\s+\| 4\s+\|\s+4 \| ok/);
    expect(bash(check, work, target).stdout).toMatch(/^1$/m);

    await maria.sql('DELETE FROM shop.customers WHERE id = 7; CREATE TABLE shop.stray (id INT); UPDATE pricing.prices SET amount = 0 WHERE id = 4;');
    expect(bash(shopSet, work, target).stdout).toMatch(/not in the manifest\s+\|\s+shop\s+\|\s+stray/);
    expect(bash(shopCounts, work, target).stdout).toMatch(/\| shop\.customers\s+\| 7\s+\|\s+6 \| DIFFERENT/);
    expect(bash(check, work, target).stdout).toMatch(/^0$/m);
  });

  test('no drill: the recovery-time section says so and prints no figure', () => {
    const text = section(markdown, 'Recovery time estimate');
    expect(text).toContain('No drill has restored this source yet');
    expect(text).not.toMatch(/~\d|\| 10 GB|MB\/s/);
    expect(markdown).toContain('| Recovery time | not measured: no drill has restored this source');
    expect(section(markdown, 'Last drill')).toContain('No drill has run yet.');
  });
});
