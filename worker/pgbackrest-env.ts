/**
 * What a Lifeboat task needs to run pgBackRest against a source's repository (the PITR
 * verifier, the PITR drill): the S3 endpoint pgBackRest talks to (the region's by default; the
 * local cycle's TLS front locally) and the task role's credentials.
 *
 * pgBackRest 2.45 cannot read ECS task-role credentials (pgbackrest#1532), and no release reads
 * every provider the SDK does: the task resolves its role's credentials with the SDK (the chain
 * its S3 client uses) and hands them to pgBackRest as `repo1-s3-key-type=shared`, in the child's
 * environment only (lib/pitr/pgbackrest.ts), never in argv or a file. They are the role
 * session's temporary keys.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { tmpdir } from 'node:os';
import type { PgBackRestRepository } from '../lib/pitr/pgbackrest';

export const PGBACKREST_ENV = {
  /** pgBackRest's S3 endpoint (host name, HTTPS), port, CA file and URI style. */
  endpoint: 'LIFEBOAT_PGBACKREST_S3_ENDPOINT',
  port: 'LIFEBOAT_PGBACKREST_S3_PORT',
  caFile: 'LIFEBOAT_PGBACKREST_S3_CA_FILE',
  uriStyle: 'LIFEBOAT_PGBACKREST_S3_URI_STYLE',
  /** Writable directory for pgBackRest's config, lock and spool (the root filesystem is read-only). */
  scratch: 'LIFEBOAT_SCRATCH_DIR',
} as const;

export interface PgBackRestEndpoint {
  readonly endpoint: string;
  readonly port?: number;
  readonly caFile?: string;
  readonly uriStyle: 'host' | 'path';
}

/** The regional S3 endpoint pgBackRest talks to (aws-cn regions have their own domain). */
export function s3EndpointHost(region: string): string {
  return region.startsWith('cn-') ? `s3.${region}.amazonaws.com.cn` : `s3.${region}.amazonaws.com`;
}

/** pgBackRest's endpoint for `region` from the environment; problems are pushed, naming the variable. */
export function pgbackrestEndpointFromEnv(env: Record<string, string | undefined>, region: string, problems: string[]): PgBackRestEndpoint {
  const portText = env[PGBACKREST_ENV.port]?.trim();
  const port = portText ? Number(portText) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) problems.push(`${PGBACKREST_ENV.port}: "${portText}" is not valid (valid: a TCP port)`);
  const uriStyle = env[PGBACKREST_ENV.uriStyle]?.trim() || 'host';
  if (uriStyle !== 'host' && uriStyle !== 'path') problems.push(`${PGBACKREST_ENV.uriStyle}: "${uriStyle}" is not valid (valid: host, path)`);
  const caFile = env[PGBACKREST_ENV.caFile]?.trim();
  return {
    endpoint: env[PGBACKREST_ENV.endpoint]?.trim() || s3EndpointHost(region),
    ...(port !== undefined ? { port } : {}),
    ...(caFile ? { caFile } : {}),
    uriStyle: uriStyle as 'host' | 'path',
  };
}

export function scratchFromEnv(env: Record<string, string | undefined>): string {
  return env[PGBACKREST_ENV.scratch]?.trim() || tmpdir();
}

/**
 * The repository at `path` of `bucket`, read with the credentials `s3` resolves (the task
 * role's); their secret parts are pushed to `secrets`, for redaction.
 */
export async function repositoryAsTaskRole(
  s3: S3Client, at: { readonly bucket: string; readonly region: string; readonly path: string; readonly endpoint: PgBackRestEndpoint }, secrets: string[],
): Promise<PgBackRestRepository> {
  const credentials = await s3.config.credentials();
  secrets.push(credentials.secretAccessKey, ...(credentials.sessionToken ? [credentials.sessionToken] : []));
  return {
    bucket: at.bucket,
    region: at.region,
    ...at.endpoint,
    path: at.path,
    credentials: { type: 'shared', accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}) },
  };
}
