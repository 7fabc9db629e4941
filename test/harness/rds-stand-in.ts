/**
 * Stand-ins for a restored RDS instance (issue 14): RDS cannot run here, so what a point-in-time
 * restore would bring up is a throwaway PostgreSQL server restored from the source's latest
 * logical dump. The source is a real server seeded with test/fixtures/seed-postgres.sql; its dump
 * is made by the real worker (`lifeboat dump`) into the local S3, judged by the real verifier
 * and committed as the Commit step would; the stand-in is restored from that run by `lifeboat
 * restore` and requires a password (scram-sha-256), as an RDS instance does.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dumpCommand } from '../../cli/dump';
import { restoreCommand } from '../../cli/restore';
import { verificationKey } from '../../lib/domain/layout';
import { serializeVerification } from '../../lib/domain/verification';
import { verifyRun } from '../../lib/verify/verify-run';
import { testConfig } from '../fixtures/config';
import { startPostgres, type PgServer } from './postgres';

export const SEED_POSTGRES = readFileSync(join(__dirname, '..', 'fixtures', 'seed-postgres.sql'), 'utf8');

/** A real server seeded with the fixture in `database`: the RDS source as it was. */
export async function startSeededSource(database: string): Promise<PgServer> {
  const server = await startPostgres();
  await server.createDatabase(database);
  await server.psql(SEED_POSTGRES, database);
  return server;
}

/** A run of `source` dumped by the worker, verified and committed (verification.json ok). */
export async function dumpVerifiedRun(opts: {
  readonly s3: S3Client; readonly bucket: string; readonly server: PgServer; readonly database: string; readonly source: string; readonly runId: string;
}): Promise<void> {
  const lines: string[] = [];
  const code = await dumpCommand([
    '--source-url', `postgres://${opts.server.user}@${opts.server.host}:${opts.server.port}/${opts.database}`, '--source', opts.source,
    '--bucket', opts.bucket, '--tier', 'tier1', '--run-id', opts.runId, '--retention', 'none',
  ], {}, { s3: opts.s3, log: (line) => lines.push(line) });
  if (code !== 0) throw new Error(`dump of ${opts.source} failed (${code}):\n${lines.join('\n')}`);
  const verification = await verifyRun({ s3: opts.s3, bucket: opts.bucket, source: opts.source, runId: opts.runId, verifiedBy: 'lambda' });
  if (verification.verdict !== 'ok') throw new Error(`verification of ${opts.source}/${opts.runId}: ${verification.verdict}`);
  await opts.s3.send(new PutObjectCommand({ Bucket: opts.bucket, Key: verificationKey(opts.source, opts.runId), Body: serializeVerification(verification) }));
}

/**
 * The stand-in for the restored instance: a throwaway server with `password`, restored from the
 * newest verified run of `source` in `bucket`.
 */
export async function startStandIn(opts: { readonly s3: S3Client; readonly bucket: string; readonly source: string; readonly password: string }): Promise<PgServer> {
  const server = await startPostgres({ password: opts.password });
  try {
    await restoreInto(server, opts);
    return server;
  } catch (error) {
    await server.stop();
    throw error;
  }
}

async function restoreInto(server: PgServer, opts: { readonly s3: S3Client; readonly bucket: string; readonly source: string; readonly password: string }): Promise<void> {
  const out: string[] = [];
  let err = '';
  const url = `postgres://${server.user}@${server.host}:${server.port}`;
  const code = await restoreCommand([opts.source, '--target-url', url, '--bucket', opts.bucket], { LIFEBOAT_DB_PASSWORD: opts.password }, {
    s3: opts.s3, log: (line) => out.push(line), stderr: { write: (text: string) => (err += text) }, loadConfig: () => testConfig,
  });
  if (code !== 0) throw new Error(`restore of ${opts.source} into the stand-in failed (${code}):\n${out.join('\n')}\n${err}`.replaceAll(opts.password, '***'));
}
