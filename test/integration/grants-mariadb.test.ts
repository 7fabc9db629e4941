/**
 * `lifeboat grants` for MariaDB against a throwaway server: an account made with exactly the
 * printed SQL (a test password in place of the placeholder) dumps every database with its views,
 * triggers, routines and events; a privilege taken away fails the preflight before any upload,
 * naming the privilege, why it is needed and the GRANT, and leaves nothing in the bucket. Some of
 * these (TRIGGER, SELECT on mysql.proc) would not fail the dump but silently leave objects out.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { grantsCommand } from '../../cli/grants';
import { artifactKey, runPrefix } from '../../lib/domain/layout';
import { MYSQL_PASSWORD_PLACEHOLDER } from '../../worker/engines/mysql-privileges';
import type { BackupJob } from '../../worker/job';
import { runJob } from '../../worker/main';
import type { BackupProgress } from '../../worker/run-backup';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startS3, type S3Server } from '../harness/s3';
import { getBytes, listKeys, uploadsInProgress } from '../harness/s3-objects';

const BUCKET = 'primary';
const SEED = readFileSync(path.join(__dirname, '../fixtures/seed-mariadb.sql'), 'utf8');
const ARN = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/catalogue-AbCdEf';
const PASSWORD = 'backup-pw-c0ffee';
const ACCOUNT = "'lifeboat_backup'@'%'";

let db: MariaDbServer;
let s3: S3Server;
let dir: string;
let configFile: string;
let runCounter = 0;
const nextRunId = () => `20261128T${String(10 + runCounter++).padStart(2, '0')}0000Z`;

beforeAll(async () => {
  [db, s3] = await Promise.all([startMariaDb({ password: 'root-pw-3b9d' }), startS3()]);
  await db.sql(SEED);
  await s3.createBucket(BUCKET);
  dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-grants-mariadb-'));
  configFile = path.join(dir, 'lifeboat.config.json');
  writeFileSync(configFile, JSON.stringify({
    appName: 'Grants',
    primary: { region: 'eu-west-1', account: '111111111111' },
    offsite: { region: 'eu-central-1', account: '222222222222' },
    sources: [{
      name: 'catalogue', engine: 'mariadb', tier: 'tier2',
      connection: { host: db.host, port: db.port, databases: ['shop', 'crm'], username: 'lifeboat_backup', passwordSecretArn: ARN },
      network: { vpcId: 'vpc-0a1b2c3d4e5f60718' },
    }],
    notifications: { emails: ['oncall@example.com'] },
  }));

  let sql = '';
  expect(await grantsCommand(['catalogue', '--config', configFile], (text) => (sql += text))).toBe(0);
  const statement = `IDENTIFIED BY '${MYSQL_PASSWORD_PLACEHOLDER}'`;
  expect(sql.split(statement)).toHaveLength(2);
  await db.sql(sql.replace(statement, `IDENTIFIED BY '${PASSWORD}'`));
}, 120_000);

afterAll(async () => {
  await Promise.all([db?.stop(), s3?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function backUp() {
  const runId = nextRunId();
  const lines: string[] = [];
  const progress: BackupProgress = { phase: 'preflight', bytesUploaded: 0 };
  const job: BackupJob = {
    source: 'catalogue', engine: 'mariadb', tier: 'tier2', runId, bucket: BUCKET, objectLockMode: 'GOVERNANCE', excludeTables: [],
    target: { host: db.host, port: db.port, databases: ['shop', 'crm'], username: 'lifeboat_backup', password: PASSWORD, tls: { mode: 'disable' } },
  };
  const outcome = await runJob(job, { s3: s3.client(), progress, log: (line) => lines.push(line) });
  return { runId, outcome, progress, output: lines.join('\n') };
}

async function expectNothingUploaded(runId: string, progress: BackupProgress, output: string): Promise<void> {
  expect(progress.phase).toBe('preflight');
  expect(progress.bytesUploaded).toBe(0);
  expect(output).not.toMatch(/^preflight: /m);
  expect(output).not.toContain(PASSWORD);
  expect(await listKeys(s3.client(), BUCKET, runPrefix('catalogue', runId))).toEqual([]);
  expect(await uploadsInProgress(s3.client(), BUCKET, runPrefix('catalogue', runId))).toEqual([]);
}

test('the printed grants are all the account has, and it dumps every table, view, trigger, routine and event', async () => {
  const grants = (await db.sql("SHOW GRANTS FOR 'lifeboat_backup'@'%';")).split('\n').filter(Boolean).map((line) => line.replace(/ IDENTIFIED BY PASSWORD '[^']*'/, ''));
  expect(grants.sort()).toEqual([
    'GRANT SELECT ON `mysql`.`proc` TO `lifeboat_backup`@`%`',
    'GRANT SELECT, SHOW VIEW, EVENT, TRIGGER ON `crm`.* TO `lifeboat_backup`@`%`',
    'GRANT SELECT, SHOW VIEW, EVENT, TRIGGER ON `shop`.* TO `lifeboat_backup`@`%`',
    'GRANT USAGE ON *.* TO `lifeboat_backup`@`%`',
  ]);

  const { runId, outcome, output } = await backUp();
  expect(outcome.error).toBeUndefined();
  expect(outcome.code).toBe(0);
  expect(output).not.toContain(PASSWORD);
  const shop = zstdDecompressSync(await getBytes(s3.client(), BUCKET, artifactKey('catalogue', runId, 'shop', '.sql.zst'))).toString('utf8');
  // mariadb-dump writes some of these inside version comments: /*!50003 CREATE*/ … /*!50003 TRIGGER orders_audit …
  for (const [kind, name] of [['VIEW', 'order_summary'], ['TRIGGER', 'orders_audit'], ['PROCEDURE', 'add_order'], ['FUNCTION', 'customer_total'], ['EVENT', 'purge_audit']]) {
    expect([kind, name, new RegExp(`CREATE\\b.*\\b${kind} \`?${name}\\b`).test(shop)]).toEqual([kind, name, true]);
  }
  expect(outcome.manifest?.tables.map((t) => `${t.database}.${t.name}`).sort()).toEqual([
    'crm.contacts', 'shop.Kunden Ümlaut', 'shop.customers', 'shop.empty_table', 'shop.order_audit', 'shop.orders', 'shop.we`ird',
  ]);
}, 120_000);

test.each([
  {
    taken: 'SHOW VIEW on shop (a view is there)',
    revoke: `REVOKE SHOW VIEW ON shop.* FROM ${ACCOUNT};`, restore: `GRANT SHOW VIEW ON shop.* TO ${ACCOUNT};`,
    says: ['database "shop": no SHOW VIEW (it has 1 view (order_summary): SHOW CREATE VIEW fails without it)', `Fix: GRANT SHOW VIEW ON \`shop\`.* TO ${ACCOUNT}.`],
  },
  {
    // Without it the dump succeeds, minus the triggers: the preflight is the only thing that notices.
    taken: 'TRIGGER on shop',
    revoke: `REVOKE TRIGGER ON shop.* FROM ${ACCOUNT};`, restore: `GRANT TRIGGER ON shop.* TO ${ACCOUNT};`,
    says: ['database "shop": no TRIGGER (triggers are dumped; without it they are invisible and would be left out)', `Fix: GRANT TRIGGER ON \`shop\`.* TO ${ACCOUNT}.`],
  },
  {
    taken: 'EVENT on crm (which has no events: --events fails all the same)',
    revoke: `REVOKE EVENT ON crm.* FROM ${ACCOUNT};`, restore: `GRANT EVENT ON crm.* TO ${ACCOUNT};`,
    says: ['database "crm": no EVENT (--events runs SHOW EVENTS, which fails without it)', `Fix: GRANT EVENT ON \`crm\`.* TO ${ACCOUNT}.`],
  },
  {
    // Without it the dump succeeds, minus the routines.
    taken: 'SELECT on mysql.proc',
    revoke: `REVOKE SELECT ON mysql.proc FROM ${ACCOUNT};`, restore: `GRANT SELECT ON mysql.proc TO ${ACCOUNT};`,
    says: ['no SELECT on mysql.proc (--routines: ', `Fix: GRANT SELECT ON \`mysql\`.\`proc\` TO ${ACCOUNT}.`],
  },
])('$taken taken away: InsufficientPrivileges before any upload, naming it, why, and the GRANT', async ({ revoke, restore, says }) => {
  await db.sql(revoke);
  try {
    const { runId, outcome, progress, output } = await backUp();
    expect(outcome.code).toBe(1);
    expect(outcome.error?.name).toBe('InsufficientPrivileges');
    expect(outcome.error?.message).toMatch(new RegExp(`^user ${ACCOUNT} lacks privileges mariadb-dump needs`));
    for (const text of says) expect(outcome.error?.message).toContain(text);
    expect(outcome.error?.message).toMatch(/lifeboat grants catalogue$/);
    expect(output).toContain('InsufficientPrivileges');
    await expectNothingUploaded(runId, progress, output);
  } finally {
    await db.sql(restore);
  }
}, 120_000);
