/**
 * The engine contract (engine-contract.ts) for every engine Lifeboat backs up, each with its real
 * clients against throwaway servers, and for a third engine defined in one test module
 * (file-engine.ts), which shows what adding an engine takes. A new engine joins with a subject here.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { mariaDbTableDigests, pgTableDigests } from '../harness/digests';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startPostgres, type PgServer } from '../harness/postgres';
import { engineContractSuite, type ContractServer, type EngineSubject } from './engine-contract';
import { FILE_ENGINE, fileSessions, filesUnder, initFileServer } from './file-engine';

const PG_SEED = readFileSync(path.join(__dirname, '../fixtures/seed-postgres.sql'), 'utf8');
const MARIADB_SEED = readFileSync(path.join(__dirname, '../fixtures/seed-mariadb.sql'), 'utf8');
/** Rows of the slow runs' table: a dump of seconds, several 8 MiB parts, so a run can be stopped mid-upload. */
const BULK_ROWS = 600_000;
const TLS_OFF = { mode: 'disable' } as const;

function pgServer(server: PgServer, password: string): ContractServer {
  return {
    host: server.host, port: server.port, user: server.user, password,
    tableDigests: () => pgTableDigests(server, 'shop'),
    changeOneRow: async () => {
      await server.psql('DELETE FROM "Kunden"."Kunden Ümlaut" WHERE id = (SELECT min(id) FROM "Kunden"."Kunden Ümlaut")', 'shop');
    },
    // The run's clients and its own connection (the exported snapshot) all say application_name 'lifeboat'.
    runSessions: async () => Number(await server.psql(
      "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('lifeboat', 'pg_dump', 'pg_dumpall') AND pid <> pg_backend_pid()")),
    stop: () => server.stop(),
  };
}

const postgres: EngineSubject = {
  name: 'PostgreSQL',
  source: 'shop',
  dumpClients: ['pg_dump', 'pg_dumpall'],
  startSource: async (password) => {
    const server = await startPostgres({ password });
    await server.createDatabase('shop');
    await server.psql(PG_SEED, 'shop');
    await server.createDatabase('bulk');
    await server.psql(`CREATE TABLE public.bulk (id bigint PRIMARY KEY, payload text NOT NULL);
      INSERT INTO public.bulk SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, ${BULK_ROWS}) g;`, 'bulk');
    return pgServer(server, password);
  },
  startTarget: async (password) => pgServer(await startPostgres({ password }), password),
  job: (server, runId, bucket, opts = {}) => ({
    source: 'shop', engine: 'postgres', tier: 'tier1', runId, bucket, objectLockMode: 'GOVERNANCE', excludeTables: [],
    target: {
      host: server.host, port: server.port, databases: [opts.slow ? 'bulk' : 'shop'], username: server.user,
      password: opts.password ?? server.password, tls: TLS_OFF,
    },
  }),
  restoreTarget: (server) => ({ engine: 'postgres', host: server.host, port: server.port, username: server.user, password: server.password, tls: TLS_OFF }),
};

const MARIADB_DATABASES = ['shop', 'crm'];

function mariaDbServer(server: MariaDbServer, password: string): ContractServer {
  return {
    host: server.host, port: server.port, user: server.user, password,
    tableDigests: () => mariaDbTableDigests(server, MARIADB_DATABASES),
    changeOneRow: async () => {
      await server.sql('DELETE FROM shop.`Kunden Ümlaut` ORDER BY id LIMIT 1;');
    },
    // Every session but this one and the event scheduler's is the run's (the suite runs nothing else meanwhile).
    runSessions: async () => Number(await server.sql(
      "SELECT count(*) FROM information_schema.processlist WHERE id <> CONNECTION_ID() AND user <> 'event_scheduler' AND command <> 'Daemon';")),
    stop: () => server.stop(),
  };
}

const mariadb: EngineSubject = {
  name: 'MariaDB',
  source: 'catalogue',
  dumpClients: ['mariadb-dump', 'mysqldump'],
  startSource: async (password) => {
    const server = await startMariaDb({ password });
    await server.sql(MARIADB_SEED);
    await server.sql(`CREATE DATABASE bulk; USE bulk; CREATE TABLE bulk.bulk (id INT PRIMARY KEY, payload CHAR(64) NOT NULL) ENGINE=InnoDB;
      INSERT INTO bulk.bulk SELECT seq, CONCAT(MD5(seq), MD5(seq * 7)) FROM seq_1_to_${BULK_ROWS};`);
    return mariaDbServer(server, password);
  },
  startTarget: async (password) => mariaDbServer(await startMariaDb({ password }), password),
  job: (server, runId, bucket, opts = {}) => ({
    source: 'catalogue', engine: 'mariadb', tier: 'tier2', runId, bucket, objectLockMode: 'GOVERNANCE', excludeTables: [],
    target: {
      host: server.host, port: server.port, databases: opts.slow ? ['bulk'] : MARIADB_DATABASES, username: server.user,
      password: opts.password ?? server.password, tls: TLS_OFF,
    },
  }),
  restoreTarget: (server) => ({ engine: 'mariadb', host: server.host, port: server.port, username: server.user, password: server.password, tls: TLS_OFF }),
};

const FILE_DATABASES = ['docs', 'media'];
/** The slow runs' folder: one sparse file, read by tar as zeros at memory speed, uploaded in many 8 MiB parts. */
const BULK_BYTES = 768 * 1024 ** 2;

function fileServer(root: string, password: string): ContractServer {
  return {
    host: root, port: 0, user: 'files', password,
    tableDigests: async () => Object.fromEntries(FILE_DATABASES.flatMap((database) => filesUnder(path.join(root, database)).map((file) => {
      const bytes = readFileSync(path.join(root, database, file));
      return [`${database}/${file}`, `${bytes.length} ${createHash('sha256').update(bytes).digest('hex')}`];
    }))),
    changeOneRow: async () => {
      const file = path.join(root, 'docs', 'Kunden Ümlaut.csv');
      writeFileSync(file, readFileSync(file, 'utf8').split('\n').slice(1).join('\n'));
    },
    runSessions: async () => fileSessions(root),
    stop: async () => rmSync(root, { recursive: true, force: true }),
  };
}

function startFileServer(password: string): string {
  const root = mkdtempSync(path.join(tmpdir(), 'lifeboat-files-'));
  initFileServer(root, password);
  return root;
}

/** A third engine, defined in one module (file-engine.ts): it joins the suite as the two real ones do. */
const files: EngineSubject = {
  name: 'a file engine defined in one test module (tar)',
  source: 'handbook',
  dumpClients: ['tar'],
  startSource: async (password) => {
    const root = startFileServer(password);
    mkdirSync(path.join(root, 'docs', 'chapters', 'ß and spaces'), { recursive: true });
    writeFileSync(path.join(root, 'docs', 'Kunden Ümlaut.csv'), Array.from({ length: 500 }, (_, i) => `${i},Kunde ${i},${i * 7}`).join('\n'));
    writeFileSync(path.join(root, 'docs', 'chapters', 'one.md'), '# One\n'.repeat(1000));
    writeFileSync(path.join(root, 'docs', 'chapters', 'ß and spaces', 'two.md'), '# Two\n');
    writeFileSync(path.join(root, 'docs', 'empty'), '');
    mkdirSync(path.join(root, 'media'));
    writeFileSync(path.join(root, 'media', 'random.bin'), createHash('sha512').update('seed').digest().toString('hex').repeat(4096));
    mkdirSync(path.join(root, 'bulk'));
    writeFileSync(path.join(root, 'bulk', 'large.img'), '');
    truncateSync(path.join(root, 'bulk', 'large.img'), BULK_BYTES);
    return fileServer(root, password);
  },
  startTarget: async (password) => fileServer(startFileServer(password), password),
  job: (server, runId, bucket, opts = {}) => ({
    source: 'handbook', engine: FILE_ENGINE, tier: 'tier2', runId, bucket, objectLockMode: 'GOVERNANCE', excludeTables: [],
    target: {
      host: server.host, port: server.port, databases: opts.slow ? ['bulk'] : FILE_DATABASES, username: server.user,
      password: opts.password ?? server.password, tls: TLS_OFF,
    },
  }),
  restoreTarget: (server) => ({ engine: FILE_ENGINE, host: server.host, port: server.port, username: server.user, password: server.password, tls: TLS_OFF }),
};

engineContractSuite(postgres);
engineContractSuite(mariadb);
engineContractSuite(files);
