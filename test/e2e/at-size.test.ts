/**
 * The embedded default at real sizes: `lifeboat run SOURCE --local --target-url URL --config
 * FILE` (the CLI's own main) on a generated PostgreSQL database of 300 MiB and a MariaDB one of
 * 100 MiB, as a new user would try it: the synthesized backup run executed locally (dump,
 * verify, commit, offsite copy, record), the drill from offsite, status and runbook. Then, with
 * the local S3 server still up, `lifeboat restore --from offsite` as the offsite account's own
 * restore role into a fresh server, compared with the source table by table (row count and a
 * digest of the rows in order).
 *
 * Timings are printed (generation, cycle, restore, comparison); the sizes are asserted, so a
 * generator that shrinks cannot pass for "at size".
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { main } from '../../cli/main';
import { restoreCommand } from '../../cli/restore';
import { latestVerifiedRun } from '../../lib/catalog/catalog';
import type { LocalAws } from '../../local/aws';
import { asPrincipal } from '../../local/iam';
import { LOCAL_DIR_ENV } from '../../local/stack';
import { generateMariaDb, generatePostgres, type GeneratedDatabase } from '../fixtures/generate-data';
import { mariaDbTableDigests, pgTableDigests } from '../harness/digests';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startPostgres, type PgServer } from '../harness/postgres';

const MiB = 1024 ** 2;
const PG_BYTES = 300 * MiB;
const MARIADB_BYTES = 100 * MiB;
/** A second, smaller database of the MariaDB source: a source lists several. */
const PRICING_BYTES = 8 * MiB;
const MARIADB_DATABASES = ['catalogue', 'pricing'];
/**
 * Database bytes per artifact byte: real data compresses a few times (tables and indexes on
 * disk against a gzip or zstd dump); repeated strings would compress a hundred times.
 */
const REALISTIC_RATIO = { min: 2, max: 12 };
/**
 * Above jest's 60 s because the work is: generating both databases takes 20 s on a quiet
 * 2-core machine and 80 s under a load of 15 (other suites, other checkouts); each test 20 s
 * quiet, and up to 105 s seen beside the whole suite under such a load.
 */
const GENERATION_TIMEOUT_MS = 240_000;
const CYCLE_TIMEOUT_MS = 240_000;

const config = {
  appName: 'Lifeboat',
  primary: { region: 'eu-west-1', account: '111111111111' },
  offsite: { region: 'eu-central-1', account: '222222222222', storageClass: 'GLACIER_IR' },
  objectLock: { mode: 'governance', offsiteMode: 'compliance' },
  sources: [
    {
      name: 'shop', engine: 'postgres', tier: 'tier2', sizeHint: '400MB',
      connection: {
        host: 'shop.cluster-abc123.eu-west-1.rds.amazonaws.com', database: 'shop', username: 'lifeboat_backup',
        passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/shop-AbCdEf',
      },
      network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
    },
    {
      name: 'catalogue', engine: 'mariadb', tier: 'tier2', sizeHint: '150MB',
      connection: {
        host: 'catalogue.db.internal', databases: MARIADB_DATABASES, username: 'lifeboat_backup',
        passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/catalogue-AbCdEf',
      },
      network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-1a1b2c3d'] },
    },
  ],
  notifications: { emails: ['oncall@example.com'] },
};

let dir: string;
let configFile: string;
let pgSource: PgServer;
let pgTarget: PgServer;
let mySource: MariaDbServer;
let myTarget: MariaDbServer;
let shop: GeneratedDatabase;
let catalogue: GeneratedDatabase;
let pricing: GeneratedDatabase;
/** The sources' table digests, taken once generated (nothing writes to them afterwards). */
let shopDigests: Record<string, string>;
let catalogueDigests: Record<string, string>;

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
const megabytes = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-at-size-'));
  configFile = path.join(dir, 'lifeboat.config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  // The whole cycle, even where a developer's `lifeboat local up` stack is running (run --local
  // then only backs up into it): this process looks for a local stack in an empty directory.
  process.env[LOCAL_DIR_ENV] = path.join(dir, 'no-local-stack');
  [pgSource, pgTarget, mySource, myTarget] = await Promise.all([startPostgres(), startPostgres(), startMariaDb(), startMariaDb()]);
  const started = Date.now();
  await pgSource.createDatabase('shop');
  // Both servers generate at once: each is one busy process, and the machine has two cores.
  [shop, [catalogue, pricing]] = await Promise.all([
    generatePostgres(pgSource, 'shop', { targetBytes: PG_BYTES, seed: 1 }),
    (async () => [
      await generateMariaDb(mySource, 'catalogue', { targetBytes: MARIADB_BYTES, seed: 2 }),
      await generateMariaDb(mySource, 'pricing', { targetBytes: PRICING_BYTES, seed: 3 }),
    ])(),
  ]);
  console.log(`generated in ${seconds(started)}: PostgreSQL shop ${megabytes(shop.bytes)} (${rowsOf(shop)}); ` +
    `MariaDB catalogue ${megabytes(catalogue.bytes)} (${rowsOf(catalogue)}), pricing ${megabytes(pricing.bytes)}`);
  const digested = Date.now();
  [shopDigests, catalogueDigests] = await Promise.all([pgTableDigests(pgSource, 'shop'), mariaDbTableDigests(mySource, MARIADB_DATABASES)]);
  console.log(`source digests in ${seconds(digested)}`);
}, GENERATION_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all([pgSource?.stop(), pgTarget?.stop(), mySource?.stop(), myTarget?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function rowsOf(db: GeneratedDatabase): string {
  return Object.entries(db.rows).map(([table, rows]) => `${table.replace(/^.*\./, '')} ${rows}`).join(', ');
}

interface CycleOutcome {
  readonly code: number;
  readonly output: string;
  readonly artifactBytes: number;
  readonly restore: { readonly code: number; readonly output: string; readonly errors: string };
  readonly timings: string;
}

/**
 * `lifeboat run SOURCE --local --target-url URL --config FILE`, then, before the local AWS side
 * stops, `lifeboat restore SOURCE --from offsite --target-url RESTORE_URL` as the offsite
 * account's restore role (the primary account lost: the offsite copy alone must be enough).
 */
async function runAndRestoreFromOffsite(source: string, targetUrl: string, restoreUrl: string): Promise<CycleOutcome> {
  const lines: string[] = [];
  const started = Date.now();
  let cycleSeconds = '';
  let restoreSeconds = '';
  let artifactBytes = 0;
  let restore: CycleOutcome['restore'] = { code: -1, output: '(lifeboat restore did not run: the cycle never finished)', errors: '' };
  const code = await main(['run', source, '--local', '--target-url', targetUrl, '--config', configFile], {
    log: (line) => lines.push(line),
    onFinished: async (aws: LocalAws) => {
      cycleSeconds = seconds(started);
      const run = await asPrincipal(aws.roles.operator, () => latestVerifiedRun(aws.services.s3, aws.services.primaryBucket, source));
      artifactBytes = run?.manifest?.artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0) ?? 0;
      const restoreStarted = Date.now();
      const env = { AWS_ACCESS_KEY_ID: aws.services.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: aws.services.credentials.secretAccessKey };
      Object.assign(process.env, env); // the SDK's credential chain reads them there
      const out: string[] = [];
      let errors = '';
      const restored = await asPrincipal(aws.roles.offsiteRestore, () => restoreCommand(
        [source, '--from', 'offsite', '--config', configFile, '--endpoint', aws.services.endpoint, '--target-url', restoreUrl],
        env, { log: (line) => out.push(line), stderr: { write: (text: string) => (errors += text) } },
      ));
      restore = { code: restored, output: out.join('\n'), errors };
      restoreSeconds = seconds(restoreStarted);
    },
  });
  const execution = /Execution SUCCEEDED in ([^\n]*)/.exec(lines.join('\n'))?.[1] ?? 'did not succeed';
  const drill = /measured RTO ([\d.]+ s)/.exec(lines.join('\n'))?.[1] ?? 'none';
  return {
    code, output: lines.join('\n'), artifactBytes, restore,
    timings: `cycle ${cycleSeconds} (execution ${execution.trim()}, drill RTO ${drill}), restore from offsite ${restoreSeconds}`,
  };
}

interface AtSizeCase {
  readonly source: string;
  /** The databases generated for the source, the first the one that must be at size. */
  readonly generated: readonly GeneratedDatabase[];
  readonly atLeast: number;
  readonly sourceUrl: string;
  readonly restoreUrl: string;
  readonly tables: number;
  readonly expected: Record<string, string>;
  restored(): Promise<Record<string, string>>;
}

const url = (scheme: string, server: PgServer | MariaDbServer) => `${scheme}://${server.user}@${server.host}:${server.port}`;

test.each<[string, () => AtSizeCase]>([
  ['PostgreSQL at 300 MiB', () => ({
    source: 'shop', generated: [shop], atLeast: PG_BYTES, sourceUrl: url('postgres', pgSource), restoreUrl: url('postgres', pgTarget),
    tables: 5, expected: shopDigests, restored: () => pgTableDigests(pgTarget, 'shop'),
  })],
  ['MariaDB at 100 MiB (two databases)', () => ({
    source: 'catalogue', generated: [catalogue, pricing], atLeast: MARIADB_BYTES, sourceUrl: url('mariadb', mySource), restoreUrl: url('mariadb', myTarget),
    tables: 10, expected: catalogueDigests, restored: () => mariaDbTableDigests(myTarget, MARIADB_DATABASES),
  })],
])('%s: run --local SUCCEEDED, drill from offsite OK, restore from offsite equal table by table', async (name, of) => {
  const at = of();
  expect(at.generated[0].bytes).toBeGreaterThanOrEqual(at.atLeast);
  const outcome = await runAndRestoreFromOffsite(at.source, at.sourceUrl, at.restoreUrl);
  // The whole output on a failure: the history says which state failed and why.
  expect(outcome.output).toMatch(/Execution SUCCEEDED in/);
  expect(outcome.output).toMatch(/measured RTO [\d.]+ s \(target 4h\): OK/);
  expect(outcome.code).toBe(0);
  expect({ code: outcome.restore.code, errors: outcome.restore.errors.match(/^.*(failed|error|denied).*$/gim) ?? [] }).toEqual({ code: 0, errors: [] });
  expect(outcome.restore.output).toMatch(new RegExp(`run ${at.source}/\\d{8}T\\d{6}Z`));

  const compared = Date.now();
  const restored = await at.restored();
  expect(Object.keys(restored)).toHaveLength(at.tables);
  expect(restored).toEqual(at.expected);
  const bytes = at.generated.reduce((sum, db) => sum + db.bytes, 0);
  const ratio = bytes / outcome.artifactBytes;
  console.log(`${name}: ${at.source} ${megabytes(bytes)}, artifacts ${megabytes(outcome.artifactBytes)} (${ratio.toFixed(1)}x): ` +
    `${outcome.timings}, comparison ${seconds(compared)}`);
  expect(ratio).toBeGreaterThanOrEqual(REALISTIC_RATIO.min);
  expect(ratio).toBeLessThanOrEqual(REALISTIC_RATIO.max);
}, CYCLE_TIMEOUT_MS);
