/**
 * `lifeboat grants SOURCE`: the least-privilege SQL for the source's backup user, from the
 * config (engine, username, databases, where the password is) and the dump options the worker
 * really uses. Prints SQL; connects to nothing, reads no secret.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_FILE, loadConfig, type Source } from '../lib/config';
import { engineGrantsSql } from '../worker/engines/grants';
import type { ServerVersionParts } from '../worker/engines/mysql-privileges';
import type { DbPlatform } from '../worker/engines/privileges';

export const GRANTS_USAGE = `Usage: lifeboat grants SOURCE [--config FILE] [--server-version VERSION] [--platform rds|self-managed]

Prints the least-privilege SQL for the backup user of SOURCE (its connection.username), for
each of its databases: what the dump reads and nothing more, each statement with a comment
saying why it is needed. Run it as an administrator of the database server (psql for
PostgreSQL, the mysql/mariadb client for MySQL/MariaDB). The password is never printed: the
SQL reads it from the Secrets Manager secret connection.passwordSecretArn names (PostgreSQL)
or marks where it goes (MySQL/MariaDB).

  --server-version VERSION  the server's version, when it changes what is granted:
                            PostgreSQL 13 or earlier has no pg_read_all_data (default: 14 or later);
                            MySQL before 8.0.20 has no SHOW_ROUTINE (default: 8.0.20 or later)
  --platform rds|self-managed
                            RDS/Aurora (no superuser: the master user runs it) or not
                            (default: rds for a host name under .rds.amazonaws.com)

The worker's preflight checks the same privileges before every run and names what is missing.
`;

const RDS_HOST = /\.rds\.amazonaws\.com(\.cn)?$/i;

/** RDS and Aurora endpoints are named under rds.amazonaws.com. */
export function platformOf(host: string): DbPlatform {
  return RDS_HOST.test(host) ? 'rds' : 'self-managed';
}

/** The SQL for one source: its engine's (worker/engines/grants.ts), for the platform its host is on. */
export function grantsFor(source: Source, options: { serverVersion?: ServerVersionParts; platform?: DbPlatform } = {}): string {
  return engineGrantsSql(source, { serverVersion: options.serverVersion, platform: options.platform ?? platformOf(source.connection.host) });
}

/** `15`, `9.6`, `8.0.20`, `10.11` → parts; undefined when it is not a version. */
export function parseServerVersion(text: string): ServerVersionParts | undefined {
  const match = /^(\d{1,2})(?:\.(\d{1,2}))?(?:\.(\d{1,3}))?$/.exec(text.trim());
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2] ?? 0), patch: Number(match[3] ?? 0) };
}

export async function grantsCommand(argv: readonly string[], log: (text: string) => void = (text) => process.stdout.write(text)): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { config: { type: 'string', default: DEFAULT_CONFIG_FILE }, 'server-version': { type: 'string' }, platform: { type: 'string' } },
  });
  const problems: string[] = [];
  if (positionals.length !== 1) problems.push(`lifeboat grants: give one source (got ${positionals.length === 0 ? 'none' : positionals.join(' ')})`);
  const versionText = values['server-version'];
  const serverVersion = versionText === undefined ? undefined : parseServerVersion(versionText);
  if (versionText !== undefined && serverVersion === undefined) {
    problems.push(`--server-version: "${versionText}" is not a version (valid: a server version such as 13, 15, 9.6, 8.0.19, 10.11)`);
  }
  const platform = values.platform;
  if (platform !== undefined && platform !== 'rds' && platform !== 'self-managed') {
    problems.push(`--platform: "${platform}" is not a platform (valid: rds, self-managed)`);
  }
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n`);
    return 2;
  }
  const config = loadConfig(values.config as string);
  const source = config.sources.find((candidate) => candidate.name === positionals[0]);
  if (!source) {
    process.stderr.write(`lifeboat grants: unknown source "${positionals[0]}" (known: ${config.sources.map((candidate) => candidate.name).join(', ') || 'none'})\n`);
    return 2;
  }
  log(grantsFor(source, { serverVersion, platform: platform as DbPlatform | undefined }));
  return 0;
}
