/**
 * A PostgreSQL source with point-in-time recovery on real components, for the tests and
 * `bench:pitr`: the local S3 server with an Object Lock bucket (default GOVERNANCE retention of a
 * day, as Lifeboat's buckets), a TLS front (pgBackRest speaks HTTPS only, to a host name), a
 * throwaway PostgreSQL archiving its WAL with `pgbackrest archive-push` (the keys in the
 * postmaster's environment only), and the runner (lib/pitr/pgbackrest.ts) for its stanza.
 * `stop()` stops every server it started, restored ones included, and removes the temp dirs.
 */
import { PutObjectLockConfigurationCommand } from '@aws-sdk/client-s3';
import { chownSync, copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  pgBackRest,
  pgBackRestArchiveCommand,
  pgBackRestServerEnvironment,
  type PgBackRest,
  type PgBackRestOptions,
  type PgBackRestRepository,
  type RestoreTarget,
} from '../../lib/pitr/pgbackrest';
import { startPostgres, type PgServer } from './postgres';
import { delay, makeTempDir, removeTempDir, unprivilegedUser } from './processes';
import { startS3, TEST_CREDENTIALS, type S3Server } from './s3';
import { startS3TlsFront, type S3TlsFront } from './s3-tls';
import { makeCertificates, type TestCertificates } from './tls-certs';

export interface PitrStack {
  readonly s3: S3Server;
  readonly front: S3TlsFront;
  readonly source: PgServer;
  readonly runner: PgBackRest;
  readonly repository: PgBackRestRepository;
  /** The temp dir everything lives in (owned by the server's user). */
  readonly work: string;
  readonly bucket: string;
  readonly stanza: string;
  /** The servers `restoreAndStart` started, oldest first. */
  readonly restored: readonly PgServer[];
  /** The server's OS user, when this process runs as root. */
  readonly owner: ReturnType<typeof unprivilegedUser>;
  /** The runner's options, with `overrides` (another work dir, another command, …). */
  options(overrides?: Partial<PgBackRestOptions>): PgBackRestOptions;
  /**
   * A database seeded with `sql`, then the stanza created and checked (a WAL segment reached the
   * repository): what every test does before its first backup.
   */
  seed(sql: string, database?: string): Promise<void>;
  /** Restores into `<work>/restore-<name>`, starts PostgreSQL on it and waits for the end of recovery. */
  restoreAndStart(name: string, target: RestoreTarget, set?: string): Promise<{ server: PgServer; set?: string; log: string }>;
  stop(): Promise<void>;
}

export interface PitrStackOptions {
  /** @default 'lifeboat-pitr' */
  readonly bucket?: string;
  /** @default 'orders' */
  readonly stanza?: string;
  /** postgresql.conf settings beyond archiving (archive_timeout, max_wal_size, …). */
  readonly settings?: Readonly<Record<string, string>>;
  /** Each line pgBackRest and the runner print. */
  readonly onLog?: (line: string) => void;
  /** Record the requests through the TLS front (method, path, headers). @default false */
  readonly recordRequests?: boolean;
  /** pgBackRest's process-max. @default 1 */
  readonly processMax?: number;
  /**
   * Archive into this S3-compatible server's existing bucket (the local cycle's primary bucket)
   * instead of a server and an Object Lock bucket of the stack's own.
   * @default - a server and bucket of its own, stopped by `stop()`
   */
  readonly s3?: { readonly port: number; readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string } };
  /** The repository's path in the bucket. @default `/pitr/<stanza>` */
  readonly repoPath?: string;
}

/** A PITR source archiving into an S3 server that is not its own (`startPitrHost`). */
export type PitrHost = Omit<PitrStack, 's3'>;

/** The stack with an S3 server and an Object Lock bucket of its own. */
export async function startPitrStack(opts: Omit<PitrStackOptions, 's3'> = {}): Promise<PitrStack> {
  return (await start(opts)) as PitrStack;
}

/** A PITR source archiving into `opts.s3`'s existing bucket (the local cycle's primary bucket). */
export function startPitrHost(opts: PitrStackOptions & Required<Pick<PitrStackOptions, 's3' | 'bucket'>>): Promise<PitrHost> {
  return start(opts);
}

async function start(opts: PitrStackOptions): Promise<PitrHost & { readonly s3?: S3Server }> {
  const bucket = opts.bucket ?? 'lifeboat-pitr';
  const stanza = opts.stanza ?? 'orders';
  const owner = unprivilegedUser('postgres');
  const started: { certs?: TestCertificates; s3?: S3Server; front?: S3TlsFront; work?: string; source?: PgServer } = {};
  const restored: PgServer[] = [];
  const stop = async () => {
    await Promise.all(restored.map((server) => server.stop()));
    await started.source?.stop();
    await started.front?.stop();
    await started.s3?.stop();
    if (started.work) removeTempDir(started.work);
    started.certs?.remove();
  };
  try {
    const certs = (started.certs = makeCertificates(['DNS:localhost', 'IP:127.0.0.1']));
    let s3: S3Server | undefined;
    if (!opts.s3) {
      s3 = started.s3 = await startS3();
      await s3.createBucket(bucket, { objectLock: true });
      const admin = s3.client();
      await admin.send(new PutObjectLockConfigurationCommand({
        Bucket: bucket,
        ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } },
      }));
      admin.destroy();
    }
    const front = (started.front = await startS3TlsFront({
      targetPort: opts.s3?.port ?? (s3 as S3Server).port, certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, recordRequests: opts.recordRequests ?? false,
    }));

    const work = (started.work = makeTempDir('pgbackrest'));
    // pgBackRest runs as the server's user: the work dir and the CA must be reachable by it.
    if (owner) chownSync(work, owner.uid, owner.gid);
    const caFile = join(work, 'ca.crt');
    copyFileSync(certs.caFile, caFile);
    const repository: PgBackRestRepository = {
      bucket,
      region: 'us-east-1',
      endpoint: front.host,
      port: front.port,
      caFile,
      path: opts.repoPath ?? `/pitr/${stanza}`,
      uriStyle: 'path',
      credentials: { type: 'shared', ...(opts.s3?.credentials ?? TEST_CREDENTIALS) },
    };
    const workDir = join(work, 'pgbackrest');
    const source = (started.source = await startPostgres({
      settings: {
        wal_level: 'replica',
        archive_mode: 'on',
        archive_command: pgBackRestArchiveCommand({ workDir, stanza: { name: stanza } }),
        ...opts.settings,
      },
      // archive-push inherits the postmaster's environment: the keys reach it there, not in argv or a file.
      env: pgBackRestServerEnvironment(repository),
    }));
    const options = (overrides: Partial<PgBackRestOptions> = {}): PgBackRestOptions => ({
      repository,
      stanza: { name: stanza, pgPath: source.dataDir, pgPort: source.port, pgSocketPath: source.socketDir, pgUser: source.user },
      workDir,
      osUser: owner,
      compressType: 'zst',
      processMax: opts.processMax ?? 1,
      // Small, so that an unreachable S3 fails a command in seconds rather than minutes.
      timeouts: { io: 10, db: 20, protocol: 30, archive: 30 },
      ...(opts.onLog ? { onLog: opts.onLog } : {}),
      ...overrides,
    });
    const runner = pgBackRest(options());
    const restoreAndStart = async (name: string, target: RestoreTarget, set?: string) => {
      const dataDir = join(work, `restore-${name}`);
      const restoredSet = await runner.restore({ dataDir, target, ...(set ? { set } : {}) });
      // The restored server reads WAL with archive-get (restore_command): it needs the keys too. No
      // archive_command: it must not push its new timeline into the source's repository.
      const server = await startPostgres({ existingDataDir: dataDir, env: runner.serverEnvironment() });
      restored.push(server);
      while ((await server.psql('SELECT pg_is_in_recovery()')).trim() !== 'f') await delay(50);
      return { server, set: restoredSet.set, log: readFileSync(server.logPath, 'utf8') };
    };
    const seed = async (sql: string, database = 'shop') => {
      await source.createDatabase(database);
      await source.psql(sql, database);
      await runner.stanzaCreate();
      await runner.check();
    };
    return { s3, front, source, runner, repository, work, bucket, stanza, restored, owner, options, seed, restoreAndStart, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
