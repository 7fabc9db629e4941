/**
 * `lifeboat grants` for PostgreSQL against a throwaway server that requires passwords: a backup
 * user made with exactly the printed SQL (a test password in place of the Secrets Manager read)
 * dumps every database; a privilege taken away fails the preflight, before any upload, naming
 * what is missing and the fix, and leaves nothing in the bucket.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { grantsCommand } from '../../cli/grants';
import { parseManifest } from '../../lib/domain/manifest';
import { manifestKey, runPrefix } from '../../lib/domain/layout';
import { PG_PASSWORD_VARIABLE } from '../../worker/engines/postgres-privileges';
import type { BackupJob } from '../../worker/job';
import { runJob } from '../../worker/main';
import type { BackupProgress } from '../../worker/run-backup';
import { startPostgres, type PgServer } from '../harness/postgres';
import { startS3, type S3Server } from '../harness/s3';
import { getBytes, listKeys, uploadsInProgress } from '../harness/s3-objects';

const BUCKET = 'primary';
const SEED = readFileSync(path.join(__dirname, '../fixtures/seed-postgres.sql'), 'utf8');
const ARN = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/shop-AbCdEf';
const PASSWORDS: Record<string, string> = { lifeboat_backup: 'backup-pw-5e1f', legacy_backup: 'legacy-pw-90ab' };

let pg: PgServer;
let s3: S3Server;
let dir: string;
let configFile: string;
let runCounter = 0;
const nextRunId = () => `20261127T${String(10 + runCounter++).padStart(2, '0')}0000Z`;

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres({ password: 'superuser-pw-77c1' }), startS3()]);
  await pg.createDatabase('shop');
  await pg.psql(SEED, 'shop');
  await pg.createDatabase('crm');
  await pg.psql('CREATE TABLE contacts (id serial PRIMARY KEY, name text); INSERT INTO contacts (name) SELECT \'c\' || g FROM generate_series(1, 50) g;', 'crm');
  // Without CONNECT granted to PUBLIC, the printed GRANT CONNECT is what lets the backup user in.
  await pg.psql('REVOKE CONNECT ON DATABASE shop FROM PUBLIC; REVOKE CONNECT ON DATABASE crm FROM PUBLIC;');
  await s3.createBucket(BUCKET);
  dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-grants-pg-'));
  configFile = path.join(dir, 'lifeboat.config.json');
  const source = (name: string, username: string) => ({
    name, engine: 'postgres', tier: 'tier2',
    connection: { host: pg.host, port: pg.port, databases: ['shop', 'crm'], username, passwordSecretArn: ARN },
    network: { vpcId: 'vpc-0a1b2c3d4e5f60718' },
  });
  writeFileSync(configFile, JSON.stringify({
    appName: 'Grants',
    primary: { region: 'eu-west-1', account: '111111111111' },
    offsite: { region: 'eu-central-1', account: '222222222222' },
    sources: [source('shop', 'lifeboat_backup'), source('legacy', 'legacy_backup')],
    notifications: { emails: ['oncall@example.com'] },
  }));
}, 120_000);

afterAll(async () => {
  await Promise.all([pg?.stop(), s3?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What `lifeboat grants SOURCE [args]` prints, run as the superuser with a test password in place of the Secrets Manager read. */
async function applyGrants(source: string, username: string, ...args: string[]): Promise<string> {
  let sql = '';
  expect(await grantsCommand([source, '--config', configFile, ...args], (text) => (sql += text))).toBe(0);
  const read = new RegExp(`^\\\\set ${PG_PASSWORD_VARIABLE} \`aws secretsmanager get-secret-value --secret-id '${ARN}' .*$`, 'm');
  expect(sql).toMatch(read);
  await pg.psql(sql.replace(read, `\\set ${PG_PASSWORD_VARIABLE} '${PASSWORDS[username]}'`), 'postgres');
  return sql;
}

function job(source: string, username: string, runId: string, excludeTables: string[] = []): BackupJob {
  return {
    source, engine: 'postgres', tier: 'tier2', runId, bucket: BUCKET, objectLockMode: 'GOVERNANCE', excludeTables,
    target: { host: pg.host, port: pg.port, databases: ['shop', 'crm'], username, password: PASSWORDS[username], tls: { mode: 'disable' } },
  };
}

async function backUp(source: string, username: string, excludeTables: string[] = []) {
  const runId = nextRunId();
  const lines: string[] = [];
  const progress: BackupProgress = { phase: 'preflight', bytesUploaded: 0 };
  const outcome = await runJob(job(source, username, runId, excludeTables), { s3: s3.client(), progress, log: (line) => lines.push(line) });
  return { runId, outcome, progress, output: lines.join('\n') };
}

/** Tables pg_dump writes rows of, by the superuser's reading. */
async function tablesOf(database: string): Promise<string[]> {
  return (await pg.psql(`SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`, database))
    .split('\n').filter(Boolean);
}

async function expectCommittedWithEveryTable(source: string, runId: string): Promise<void> {
  const manifest = parseManifest((await getBytes(s3.client(), BUCKET, manifestKey(source, runId))).toString('utf8'));
  for (const database of ['shop', 'crm']) {
    expect(manifest.tables.filter((t) => t.database === database).map((t) => `${t.schema}.${t.name}`).sort()).toEqual(await tablesOf(database));
  }
  expect(manifest.globals).toBeDefined();
  expect(manifest.artifacts.map((a) => a.database).sort()).toEqual(['crm', 'shop']);
}

async function expectNothingUploaded(source: string, runId: string, progress: BackupProgress, output: string): Promise<void> {
  expect(progress.phase).toBe('preflight');
  expect(progress.bytesUploaded).toBe(0);
  expect(output).not.toMatch(/^preflight: /m);
  expect(await listKeys(s3.client(), BUCKET, runPrefix(source, runId))).toEqual([]);
  expect(await uploadsInProgress(s3.client(), BUCKET, runPrefix(source, runId))).toEqual([]);
}

describe('PostgreSQL 14+ form (pg_read_all_data)', () => {
  test('a backup user with exactly the printed grants dumps both databases, large objects and globals included', async () => {
    const sql = await applyGrants('shop', 'lifeboat_backup');
    expect(sql).toContain('GRANT pg_read_all_data TO lifeboat_backup;');
    expect(await pg.psql("SELECT rolsuper, rolbypassrls, rolcreaterole, rolreplication FROM pg_roles WHERE rolname = 'lifeboat_backup'")).toBe('f|f|f|f\n');
    const { runId, outcome, output } = await backUp('shop', 'lifeboat_backup');
    expect(outcome.error).toBeUndefined();
    expect(outcome.code).toBe(0);
    await expectCommittedWithEveryTable('shop', runId);
    expect(output).not.toContain(PASSWORDS.lifeboat_backup);
  }, 120_000);

  test('a large object created after the grants: InsufficientPrivileges naming it and its GRANT, nothing uploaded', async () => {
    const oid = (await pg.psql("SELECT lo_from_bytea(0, '\\x6c617465'::bytea)", 'shop')).trim();
    try {
      const { runId, outcome, progress, output } = await backUp('shop', 'lifeboat_backup');
      expect(outcome.code).toBe(1);
      expect(outcome.error?.name).toBe('InsufficientPrivileges');
      expect(outcome.error?.message).toContain(`database "shop": no SELECT on 1 large object (${oid})`);
      expect(outcome.error?.message).toContain(`GRANT SELECT ON LARGE OBJECT ${oid} TO lifeboat_backup`);
      expect(outcome.error?.message).toMatch(/lifeboat grants shop$/);
      await expectNothingUploaded('shop', runId, progress, output);
    } finally {
      await pg.psql(`SELECT lo_unlink(${oid})`, 'shop');
    }
  }, 120_000);

  test('CONNECT taken away: InsufficientPrivileges (not retried as unreachable) naming the database and its GRANT', async () => {
    await pg.psql('REVOKE CONNECT ON DATABASE crm FROM lifeboat_backup;');
    try {
      const { runId, outcome, progress, output } = await backUp('shop', 'lifeboat_backup');
      expect(outcome.error?.name).toBe('InsufficientPrivileges');
      expect(outcome.error?.message).toContain('permission denied for database "crm"');
      expect(outcome.error?.message).toContain('fix: GRANT CONNECT ON DATABASE crm TO lifeboat_backup (or run the SQL of lifeboat grants shop)');
      await expectNothingUploaded('shop', runId, progress, output);
    } finally {
      await pg.psql('GRANT CONNECT ON DATABASE crm TO lifeboat_backup;');
    }
  }, 120_000);
});

describe('PostgreSQL 13 form (per schema)', () => {
  test('the printed per-schema grants dump both databases, tables created later included (default privileges)', async () => {
    const sql = await applyGrants('legacy', 'legacy_backup', '--server-version', '13');
    expect(sql).not.toContain('GRANT pg_read_all_data TO legacy_backup;');
    expect(await pg.psql("SELECT pg_has_role('legacy_backup', 'pg_read_all_data', 'USAGE')")).toBe('f\n');
    await pg.psql('CREATE TABLE sales.created_later (id int PRIMARY KEY); INSERT INTO sales.created_later VALUES (1), (2);', 'shop');
    try {
      const { runId, outcome } = await backUp('legacy', 'legacy_backup');
      expect(outcome.error).toBeUndefined();
      await expectCommittedWithEveryTable('legacy', runId);
    } finally {
      await pg.psql('DROP TABLE sales.created_later;', 'shop');
    }
  }, 120_000);

  test('SELECT taken away on one table: the preflight names the table and the fix, before any upload', async () => {
    await pg.psql('REVOKE SELECT ON sales.orders_2025 FROM legacy_backup;', 'shop');
    try {
      const { runId, outcome, progress, output } = await backUp('legacy', 'legacy_backup');
      expect(outcome.code).toBe(1);
      expect(outcome.error?.name).toBe('InsufficientPrivileges');
      expect(outcome.error?.message).toMatch(/^user "legacy_backup" cannot read all that pg_dump reads/);
      expect(outcome.error?.message).toContain('database "shop": no SELECT on 1 table (sales.orders_2025)');
      // The server is 15: pg_read_all_data is the fix that covers it (and whatever else is added later).
      expect(outcome.error?.message).toContain('fix (connected to shop): GRANT pg_read_all_data TO legacy_backup');
      expect(outcome.error?.message).not.toContain('database "crm"');
      expect(output).toContain('InsufficientPrivileges');
      expect(output).not.toContain(PASSWORDS.legacy_backup);
      await expectNothingUploaded('legacy', runId, progress, output);

      // The same table left out of the dump needs no privilege.
      const excluded = await backUp('legacy', 'legacy_backup', ['sales.orders_2025']);
      expect(excluded.outcome.error).toBeUndefined();
      expect(excluded.outcome.code).toBe(0);
    } finally {
      await pg.psql('GRANT SELECT ON sales.orders_2025 TO legacy_backup;', 'shop');
    }
  }, 120_000);

  test('USAGE taken away on a schema and SELECT on a sequence: both named, with their counts', async () => {
    await pg.psql('REVOKE USAGE ON SCHEMA "Kunden" FROM legacy_backup; REVOKE SELECT ON sales.invoice_no FROM legacy_backup;', 'shop');
    try {
      const { runId, outcome, progress, output } = await backUp('legacy', 'legacy_backup');
      expect(outcome.error?.name).toBe('InsufficientPrivileges');
      expect(outcome.error?.message).toContain('no SELECT on 1 sequence (sales.invoice_no), no USAGE on 1 schema ("Kunden")');
      await expectNothingUploaded('legacy', runId, progress, output);
    } finally {
      await pg.psql('GRANT USAGE ON SCHEMA "Kunden" TO legacy_backup; GRANT SELECT ON sales.invoice_no TO legacy_backup;', 'shop');
    }
  }, 120_000);

  test('row-level security the user does not bypass: named with ALTER ROLE … BYPASSRLS', async () => {
    await pg.psql('ALTER TABLE public.cache ENABLE ROW LEVEL SECURITY;', 'shop');
    try {
      const { runId, outcome, progress, output } = await backUp('legacy', 'legacy_backup');
      expect(outcome.error?.message).toContain('row-level security it does not bypass on 1 table (public.cache)');
      expect(outcome.error?.message).toContain('ALTER ROLE legacy_backup BYPASSRLS');
      await expectNothingUploaded('legacy', runId, progress, output);
    } finally {
      await pg.psql('ALTER TABLE public.cache DISABLE ROW LEVEL SECURITY;', 'shop');
    }
  }, 120_000);
});
