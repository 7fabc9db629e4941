/**
 * A PITR source on this machine for the local cycle and the tests: a throwaway PostgreSQL
 * archiving its WAL with pgBackRest into the local primary bucket (through a TLS front:
 * pgBackRest speaks HTTPS only), registered with the local SSM stand-in as the instance the
 * config names, with what the PITR verifier needs to reach the same repository.
 *
 * What is not IAM-evaluated here: pgBackRest's own S3 requests (the host's and the verifier's
 * go to the S3 server through the TLS front, not through the SDK). The host's are the subject
 * of test/integration/pitr-host-iam.test.ts (recorded, then replayed through the evaluator
 * against the synthesized policies).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { Source } from '../lib/config/types';
import type { ResolvedStack } from './cfn/resolve';
import type { LocalAws } from './aws';
import { startPitrHost, type PitrHost } from './servers/pitr';
import { LocalSsm, type LocalDocument, type LocalManagedInstance } from './ssm';

export interface LocalPitrSource {
  readonly host: PitrHost;
  readonly ssm: LocalSsm;
  /** The instance id the SSM stand-in answers to. */
  readonly instanceId: string;
  /** The instance as registered with `ssm` (tests register variants of it with another LocalSsm). */
  readonly instance: LocalManagedInstance;
  /** The PITR verifier's environment beyond its task definition's: pgBackRest's S3 endpoint here. */
  readonly verifierEnv: Record<string, string>;
  stop(): Promise<void>;
}

/** The SSM documents of a synthesized stack. */
export function documentsOf(stack: ResolvedStack): LocalDocument[] {
  return stack.ofType('AWS::SSM::Document').map((id) => {
    const properties = stack.properties(id);
    return { name: String(stack.resolve(properties.Name)), content: stack.resolve(properties.Content) as LocalDocument['content'] };
  });
}

export async function startLocalPitrSource(aws: LocalAws, source: Source, opts: {
  /** SQL the source's first database is seeded with before the stanza is created. */
  readonly seedSql: string;
  /** Settings beyond archiving (archive_timeout, …). */
  readonly settings?: Readonly<Record<string, string>>;
  readonly log?: (line: string) => void;
}): Promise<LocalPitrSource> {
  const pitr = source.pitr;
  if (!pitr) throw new Error(`source ${source.name} has no method 'pitr'`);
  const port = Number(new URL(aws.services.endpoint).port);
  const host = await startPitrHost({
    s3: { port, credentials: aws.services.credentials },
    bucket: aws.services.primaryBucket,
    stanza: pitr.stanza,
    repoPath: `/pitr/${source.name}`,
    settings: { archive_timeout: String(Math.min(pitr.plan.archiveTimeoutSeconds, 60)), ...opts.settings },
  });
  try {
    await host.seed(opts.seedSql, source.connection.databases[0]);
    const instanceId = 'instanceId' in pitr.host ? pitr.host.instanceId : 'i-0000000000local0';
    const tags = 'tag' in pitr.host ? { [pitr.host.tag.key]: pitr.host.tag.value } : {};
    const ssm = new LocalSsm(documentsOf(aws.app.primary), opts.log);
    const instance: LocalManagedInstance = {
      instanceId,
      tags,
      // The instance profile's stand-in: the local S3 server's keys, in the environment only.
      env: host.runner.serverEnvironment(),
      // This machine's pgbackrest.conf and server user instead of the host's /etc/pgbackrest and postgres.
      parameterOverrides: {
        configPath: host.runner.configFile,
        configIncludePath: join(dirname(host.runner.configFile), 'conf.d'),
        osUser: host.owner ? 'postgres' : userInfo().username,
        // The marker document's psql: this server's port and socket.
        port: String(host.source.port),
        socketDir: host.source.socketDir,
      },
    };
    ssm.register(instance);
    // The task's /scratch volume.
    const scratch = mkdtempSync(join(tmpdir(), 'lifeboat-pitr-verify-'));
    // Traversable: run as root, a drill restores under it as the server's user.
    chmodSync(scratch, 0o711);
    const verifierEnv: Record<string, string> = {
      LIFEBOAT_SCRATCH_DIR: scratch,
      LIFEBOAT_PGBACKREST_S3_ENDPOINT: host.repository.endpoint,
      LIFEBOAT_PGBACKREST_S3_PORT: String(host.repository.port),
      LIFEBOAT_PGBACKREST_S3_URI_STYLE: 'path',
      ...(host.repository.caFile ? { LIFEBOAT_PGBACKREST_S3_CA_FILE: host.repository.caFile } : {}),
    };
    return { host, ssm, instanceId, instance, verifierEnv, stop: async () => {
      await ssm.settle();
      await host.stop();
      rmSync(scratch, { recursive: true, force: true });
    } };
  } catch (error) {
    await host.stop();
    throw error;
  }
}
