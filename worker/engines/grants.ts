import type { Source } from '../../lib/config/types';
import { mysqlDumpArgs } from './mysql-clients';
import { mysqlGrantsSql, type ServerVersionParts } from './mysql-privileges';
import { postgresGrantsSql } from './postgres-privileges';
import type { DbPlatform } from './privileges';

/**
 * The least-privilege SQL of a source's backup user, per engine: what its dump reads and
 * nothing more (`lifeboat grants`; the preflight checks the same privileges).
 */
export function engineGrantsSql(source: Source, options: { serverVersion?: ServerVersionParts; platform: DbPlatform }): string {
  const { connection } = source;
  const platform = options.platform;
  if (source.engine === 'postgres') {
    const version = options.serverVersion;
    return postgresGrantsSql({
      source: source.name,
      username: connection.username,
      databases: connection.databases,
      passwordSecretArn: connection.passwordSecretArn,
      platform,
      serverMajor: version === undefined ? undefined : version.major >= 10 ? version.major : version.major + version.minor / 10,
    });
  }
  // The client the worker image runs for this flavour (mysqlClientCandidates picks it first).
  const flavor = source.engine;
  const dumpArgs = mysqlDumpArgs({
    client: { flavor, major: flavor === 'mysql' ? 8 : 10 },
    serverFlavor: flavor,
    host: connection.host,
    port: connection.port,
    username: connection.username,
    databases: connection.databases,
  });
  return mysqlGrantsSql({
    source: source.name,
    username: connection.username,
    databases: connection.databases,
    passwordSecretArn: connection.passwordSecretArn,
    flavor,
    platform,
    dumpArgs,
    tool: flavor === 'mysql' ? 'mysqldump' : 'mariadb-dump',
    serverVersion: options.serverVersion,
  });
}
