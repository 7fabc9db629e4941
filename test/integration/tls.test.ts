/**
 * TLS to real servers, through the real worker (driver preflight + pg_dump / mariadb-dump) and
 * the real restore (driver inspection + pg_restore / mariadb): throwaway PostgreSQL and MariaDB
 * servers with an openssl-made certificate for "localhost", which accept TLS connections only
 * (pg_hba hostssl, require_secure_transport), and twins without TLS.
 *
 * - verify-full with the right CA: backed up and restored over TLS;
 * - verify-full with another CA: TlsVerifyFailed, nothing in the bucket / nothing restored;
 * - verify-full to 127.0.0.1 (the certificate names localhost): TlsVerifyFailed, host name mismatch;
 * - verify-full and require to a server without TLS: TlsRequired, never plain text;
 * - require with a CA nobody trusts: encrypted, backed up;
 * - prefer (only when asked) to a server without TLS: plain text, and the log says so.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { dumpCommand } from '../../cli/dump';
import { restoreCommand } from '../../cli/restore';
import { runPrefix, verificationKey } from '../../lib/domain/layout';
import { serializeVerification } from '../../lib/domain/verification';
import { verifyRun } from '../../lib/verify/verify-run';
import { testConfig } from '../fixtures/config';
import { mariaDbTableDigests, pgTableDigests } from '../harness/digests';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';
import { startPostgres, type PgServer } from '../harness/postgres';
import { startS3, type S3Server } from '../harness/s3';
import { listKeys } from '../harness/s3-objects';
import { makeCertificates, type TestCertificates } from '../harness/tls-certs';

const BUCKET = 'primary';
const PG_SEED = readFileSync(path.join(__dirname, '../fixtures/seed-postgres.sql'), 'utf8');
const MARIADB_SEED = readFileSync(path.join(__dirname, '../fixtures/seed-mariadb.sql'), 'utf8');

let certs: TestCertificates;
let s3: S3Server;
let pgTls: PgServer;
let pgPlain: PgServer;
let myTls: MariaDbServer;
let myPlain: MariaDbServer;
let counter = 0;
const nextRunId = () => `20261202T${String(10 + counter++).padStart(2, '0')}0000Z`;

beforeAll(async () => {
  certs = makeCertificates(['DNS:localhost']);
  const pem = { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile };
  [s3, pgTls, pgPlain, myTls, myPlain] = await Promise.all([
    startS3(),
    startPostgres({ tls: { ...pem, only: true }, logConnections: true }),
    startPostgres(),
    startMariaDb({ tls: { ...pem, caFile: certs.caFile, only: true } }),
    startMariaDb(),
  ]);
  await s3.createBucket(BUCKET);
  for (const server of [pgTls, pgPlain]) {
    await server.createDatabase('shop');
    await server.psql(PG_SEED, 'shop');
  }
  await myPlain.sql(MARIADB_SEED);
}, 180_000);

afterAll(async () => {
  await Promise.all([s3?.stop(), pgTls?.stop(), pgPlain?.stop(), myTls?.stop(), myPlain?.stop()]);
  certs?.remove();
});

interface Outcome { readonly code: number; readonly out: string; readonly runId: string }

async function dump(source: string, url: string, databases?: string): Promise<Outcome> {
  const runId = nextRunId();
  const lines: string[] = [];
  const code = await dumpCommand(
    ['--source-url', url, ...(databases ? ['--databases', databases] : []), '--source', source, '--bucket', BUCKET, '--run-id', runId,
      '--retention', 'none', '--tier', 'tier2'],
    {}, { s3: s3.client(), log: (line) => lines.push(line) });
  return { code, out: lines.join('\n'), runId };
}

async function runKeys(source: string, runId: string): Promise<string[]> {
  return listKeys(s3.client(), BUCKET, runPrefix(source, runId));
}

/** A refused run: the error's name and the cause in its message, nothing at the run's prefix. */
async function expectRefused(outcome: Outcome, source: string, name: string, cause: RegExp): Promise<void> {
  expect(outcome.code).not.toBe(0);
  expect(outcome.out).toContain(name);
  expect(outcome.out).toMatch(cause);
  expect(outcome.out).not.toMatch(/committed /);
  expect(await runKeys(source, outcome.runId)).toEqual([]);
}

async function markVerified(source: string, runId: string): Promise<void> {
  const verification = await verifyRun({ s3: s3.client(), bucket: BUCKET, source, runId, verifiedBy: 'lambda' });
  expect(verification.verdict).toBe('ok');
  await s3.client().send(new PutObjectCommand({ Bucket: BUCKET, Key: verificationKey(source, runId), Body: serializeVerification(verification) }));
}

async function restore(args: string[]) {
  const out: string[] = [];
  let err = '';
  const code = await restoreCommand([...args, '--bucket', BUCKET], {}, {
    s3: s3.client(), log: (line) => out.push(line), stderr: { write: (text: string) => (err += text) }, loadConfig: () => testConfig,
  });
  return { code, out: `${out.join('\n')}\n${err}` };
}

const verifyFull = (ca: string) => `sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`;

describe('PostgreSQL', () => {
  const url = (server: PgServer, host: string, query: string, database = 'shop') =>
    `postgres://${server.user}@${host}:${server.port}/${database}?${query}`;

  test('verify-full with the right CA: the preflight, pg_dumpall and pg_dump all connect over TLS, and the run commits', async () => {
    const before = (readFileSync(pgTls.logPath, 'utf8').match(/SSL enabled/g) ?? []).length;
    const outcome = await dump('shop-tls', url(pgTls, 'localhost', verifyFull(certs.caFile)));
    expect(outcome.out).toMatch(new RegExp(`TLS verify-full \\(CA ${certs.caFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\): TLSv1\\.[23] `));
    expect(outcome.code).toBe(0);
    expect(outcome.out).toContain(`committed shop-tls/${outcome.runId}`);
    // The server accepts TLS only (hostssl; hostnossl reject): every connection it authorized was TLS.
    const log = readFileSync(pgTls.logPath, 'utf8');
    expect((log.match(/SSL enabled/g) ?? []).length).toBeGreaterThanOrEqual(before + 2);
    expect(log).not.toMatch(/no pg_hba\.conf entry .* no encryption/);
    await markVerified('shop-tls', outcome.runId);

    // Restored into the same server under another name, over verify-full.
    const restored = await restore(['shop-tls', '--target-url', url(pgTls, 'localhost', verifyFull(certs.caFile), 'shop_restored'), '--run', outcome.runId, '--no-owner']);
    expect(restored.out).not.toContain('restore failed');
    expect(restored.code).toBe(0);
    expect(await pgTableDigests(pgTls, 'shop_restored')).toEqual(await pgTableDigests(pgTls, 'shop'));

    // With another CA, the restore is refused before anything is created.
    const refused = await restore(['shop-tls', '--target-url', url(pgTls, 'localhost', verifyFull(certs.otherCaFile), 'shop_refused'), '--run', outcome.runId, '--no-owner']);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain('TlsVerifyFailed');
    expect(refused.out).toMatch(/certificate verify failed|self[- ]signed|unable to/);
    expect((await pgTls.psql("SELECT count(*) FROM pg_database WHERE datname = 'shop_refused'")).trim()).toBe('0');
  });

  test('verify-full with another CA: TlsVerifyFailed, nothing uploaded', async () => {
    await expectRefused(await dump('shop-tls', url(pgTls, 'localhost', verifyFull(certs.otherCaFile))), 'shop-tls', 'TlsVerifyFailed',
      /certificate verify failed: the server's certificate does not chain to the CA bundle/);
  });

  test('verify-full to 127.0.0.1 when the certificate names localhost: TlsVerifyFailed, host name mismatch', async () => {
    await expectRefused(await dump('shop-tls', url(pgTls, '127.0.0.1', verifyFull(certs.caFile))), 'shop-tls', 'TlsVerifyFailed',
      /host name mismatch/);
  });

  test('verify-full and require to a server without TLS: TlsRequired, nothing sent in plain text', async () => {
    for (const query of [verifyFull(certs.caFile), 'sslmode=require']) {
      await expectRefused(await dump('shop-plain', url(pgPlain, 'localhost', query)), 'shop-plain', 'TlsRequired', /the server offers no TLS/);
    }
  });

  test('require with a CA nobody trusts: encrypted, unchecked, committed', async () => {
    const outcome = await dump('shop-tls', url(pgTls, 'localhost', 'sslmode=require'));
    expect(outcome.out).toMatch(/TLS require: TLSv1\.[23] /);
    expect(outcome.code).toBe(0);
  });

  test('prefer, asked for, to a server without TLS: plain text, and the log says so', async () => {
    const outcome = await dump('shop-plain', url(pgPlain, 'localhost', 'sslmode=prefer'));
    expect(outcome.out).toMatch(/TLS prefer: plain text/);
    expect(outcome.code).toBe(0);
  });
});

describe('MariaDB', () => {
  const url = (server: MariaDbServer, host: string, query: string) => `mariadb://${server.user}@${host}:${server.port}/?${query}`;

  test('verify-full with the right CA: restored into a TLS-only server over TLS; another CA refused before anything is created', async () => {
    const outcome = await dump('catalogue', url(myPlain, '127.0.0.1', 'sslmode=prefer'), 'shop,crm');
    expect(outcome.code).toBe(0);
    await markVerified('catalogue', outcome.runId);

    const refused = await restore(['catalogue', '--target-url', url(myTls, 'localhost', verifyFull(certs.otherCaFile)), '--run', outcome.runId]);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain('TlsVerifyFailed');
    expect((await myTls.sql("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name IN ('shop', 'crm')")).trim()).toBe('0');

    const restored = await restore(['catalogue', '--target-url', url(myTls, 'localhost', verifyFull(certs.caFile)), '--run', outcome.runId]);
    expect(restored.out).not.toContain('restore failed');
    expect(restored.code).toBe(0);
    expect(await mariaDbTableDigests(myTls, ['shop', 'crm'])).toEqual(await mariaDbTableDigests(myPlain, ['shop', 'crm']));
  });

  test('verify-full with the right CA: the preflight and mariadb-dump connect over TLS, and the run commits', async () => {
    const outcome = await dump('catalogue-tls', url(myTls, 'localhost', verifyFull(certs.caFile)), 'shop');
    expect(outcome.out).toMatch(/TLS verify-full \(CA .*\): TLSv1\.[23] /);
    expect(outcome.code).toBe(0);
    expect(outcome.out).toContain(`committed catalogue-tls/${outcome.runId}`);
  });

  test('verify-full with another CA: TlsVerifyFailed, nothing uploaded', async () => {
    await expectRefused(await dump('catalogue-tls', url(myTls, 'localhost', verifyFull(certs.otherCaFile)), 'shop'), 'catalogue-tls',
      'TlsVerifyFailed', /certificate verify failed/);
  });

  test('verify-full to 127.0.0.1 when the certificate names localhost: TlsVerifyFailed, host name mismatch', async () => {
    await expectRefused(await dump('catalogue-tls', url(myTls, '127.0.0.1', verifyFull(certs.caFile)), 'shop'), 'catalogue-tls',
      'TlsVerifyFailed', /host name mismatch/);
  });

  test('verify-full and require to a server without TLS: TlsRequired, nothing sent in plain text', async () => {
    for (const query of [verifyFull(certs.caFile), 'sslmode=require']) {
      await expectRefused(await dump('catalogue-plain', url(myPlain, 'localhost', query), 'shop'), 'catalogue-plain', 'TlsRequired',
        /the server offers no TLS/);
    }
  });

  test('require with a CA nobody trusts: encrypted, unchecked, committed', async () => {
    const outcome = await dump('catalogue-tls', url(myTls, 'localhost', 'sslmode=require'), 'shop');
    expect(outcome.out).toMatch(/TLS require: TLSv1\.[23] /);
    expect(outcome.code).toBe(0);
  });
});
