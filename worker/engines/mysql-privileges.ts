/**
 * What the MySQL/MariaDB backup reads, as privileges: derived from the dump client's own argv
 * (worker/engines/mysql.ts mysqlDumpArgs), so that the SQL `lifeboat grants` prints and the
 * preflight's check ask for exactly what the options in use need, no more.
 *
 * Facts (the mysqldump and mariadb-dump manuals, SHOW CREATE PROCEDURE, MySQL 8.0.20 release
 * notes), checked against MariaDB 10.11 here:
 * - SELECT for dumped tables; a table the user holds no privilege on is invisible to it (SHOW
 *   TABLES, information_schema), so the dump would leave it out silently: only SELECT on the
 *   whole database covers every table, including later ones.
 * - SHOW VIEW for dumped views (SHOW CREATE VIEW fails without it).
 * - TRIGGER with --triggers: SHOW TRIGGERS lists only the triggers of tables the user holds
 *   TRIGGER on; without it they are left out silently.
 * - EVENT with --events: SHOW EVENTS fails without it.
 * - Routines with --routines: SHOW CREATE PROCEDURE/FUNCTION shows the body (else NULL, and the
 *   routine is left out silently) to its definer, and to a user with SELECT on mysql.proc or
 *   (MariaDB 11.3+) SHOW CREATE ROUTINE; on MySQL 8.0.20+ with SHOW_ROUTINE or global SELECT,
 *   on 8.0.0–8.0.19 with global SELECT, on 5.7 with SELECT on mysql.proc.
 * - LOCK TABLES unless --single-transaction (or --skip-lock-tables).
 * - PROCESS unless --no-tablespaces (MySQL 8.0.21+ and 5.7.31+ read tablespaces through
 *   INFORMATION_SCHEMA.FILES).
 * - RELOAD with --master-data/--source-data, --flush-logs or --lock-all-tables (FLUSH TABLES
 *   WITH READ LOCK); mysqldump 8.0.32+ with --single-transaction also takes RELOAD or
 *   FLUSH_TABLES when gtid_mode is ON, unless --set-gtid-purged=OFF.
 */
import { EngineError } from './types';
import { countedNames, type DbPlatform } from './privileges';

export type MysqlFlavor = 'mysql' | 'mariadb';

export interface ServerVersionParts {
  readonly major: number;
  readonly minor: number;
  /** @default 0 */
  readonly patch?: number;
}

/** What the dump client's options need, beyond SELECT and SHOW VIEW (always needed when there are tables and views). */
export interface MysqlDumpNeeds {
  readonly triggers: boolean;
  readonly events: boolean;
  readonly routines: boolean;
  readonly lockTables: boolean;
  readonly process: boolean;
  /** FLUSH TABLES WITH READ LOCK: RELOAD (or FLUSH_TABLES on MySQL 8). */
  readonly reload: boolean;
}

/** Reads what an argv of mariadb-dump / mysqldump needs (their defaults: triggers on, routines and events off, table locks on). */
export function mysqlDumpNeeds(args: readonly string[]): MysqlDumpNeeds {
  const has = (flag: string) => args.includes(flag);
  const singleTransaction = has('--single-transaction');
  const globalLock = args.some((a) => /^--(master-data|source-data|flush-logs|lock-all-tables)(=|$)/.test(a));
  const gtidLock = singleTransaction && args.some((a) => a.startsWith('--set-gtid-purged')) && !has('--set-gtid-purged=OFF');
  // MariaDB's client (its `--gtid`) reads the coordinates of its consistent snapshot without FLUSH TABLES WITH READ LOCK.
  const mariadbSnapshot = singleTransaction && has('--gtid');
  return {
    triggers: !has('--skip-triggers'),
    events: has('--events'),
    routines: has('--routines'),
    lockTables: !singleTransaction && !has('--skip-lock-tables'),
    process: !has('--no-tablespaces'),
    reload: (globalLock && !mariadbSnapshot) || gtidLock,
  };
}

/** One privilege-granting line of SHOW GRANTS: what, and on which database and table (`*` for all). */
export interface GrantLine {
  /** Upper-case names (`SELECT`, `SHOW VIEW`, `ALL PRIVILEGES`, `SHOW_ROUTINE`); column-level ones are left out. */
  readonly privileges: readonly string[];
  /** Unquoted; `*` for every database. A database-level name may hold the wildcards `%` and `_` (`\_` is a literal `_`). */
  readonly database: string;
  /** Unquoted; `*` for every table. */
  readonly table: string;
  /** MySQL partial revokes (`REVOKE … ON db.* FROM`): these global privileges do not apply to `database`. */
  readonly revoke: boolean;
}

/** An identifier of SHOW GRANTS: `` `a``b` `` → a`b; `*`; or a bare name. Returns it and the rest of the text. */
function readIdent(text: string): [string, string] | undefined {
  if (text.startsWith('*')) return ['*', text.slice(1)];
  if (text.startsWith('`')) {
    let i = 1;
    let name = '';
    while (i < text.length) {
      if (text[i] === '`') {
        if (text[i + 1] === '`') {
          name += '`';
          i += 2;
          continue;
        }
        return [name, text.slice(i + 1)];
      }
      name += text[i];
      i++;
    }
    return undefined;
  }
  const bare = /^[\w$]+/.exec(text)?.[0];
  return bare === undefined ? undefined : [bare, text.slice(bare.length)];
}

/**
 * Parses one line of SHOW GRANTS. Undefined for lines that grant no privilege on a database
 * or table: role memberships (`GRANT r TO u`), PROXY, routine-level grants, SET DEFAULT ROLE.
 * Never keep or echo the line itself: its USAGE line may carry the password hash.
 */
export function parseGrantLine(line: string): GrantLine | undefined {
  const head = /^(GRANT|REVOKE)\s+/i.exec(line);
  if (!head) return undefined;
  const revoke = head[1]?.toUpperCase() === 'REVOKE';
  let rest = line.slice(head[0].length);
  // The privilege list ends at the first top-level " ON " (column lists are parenthesised and quoted).
  let depth = 0;
  let quoted = false;
  let end = -1;
  for (let i = 0; i < rest.length; i++) {
    const ch = rest[i];
    if (ch === '`') quoted = !quoted;
    else if (!quoted && ch === '(') depth++;
    else if (!quoted && ch === ')') depth--;
    else if (!quoted && depth === 0 && /^\sON\s/i.test(rest.slice(i, i + 4))) {
      end = i;
      break;
    }
  }
  if (end < 0) return undefined;
  const privilegeText = rest.slice(0, end);
  rest = rest.slice(end + 4).trimStart();
  if (/^(FUNCTION|PROCEDURE|PACKAGE)\s/i.test(rest)) return undefined;
  rest = rest.replace(/^TABLE\s+/i, '');
  const database = readIdent(rest);
  if (!database || !database[1].startsWith('.')) return undefined;
  const table = readIdent(database[1].slice(1));
  if (!table || !/^\s+(TO|FROM)\s/i.test(table[1])) return undefined;

  const privileges: string[] = [];
  depth = 0;
  quoted = false;
  let current = '';
  for (const ch of `${privilegeText},`) {
    if (ch === '`') quoted = !quoted;
    if (!quoted && ch === '(') depth++;
    if (!quoted && ch === ')') depth--;
    if (!quoted && depth === 0 && ch === ',') {
      // A privilege with a column list applies to those columns only: not a table's or database's.
      if (!current.includes('(')) privileges.push(current.trim().toUpperCase().replace(/\s+/g, ' '));
      current = '';
    } else {
      current += ch;
    }
  }
  return { privileges: privileges.filter(Boolean), database: database[0], table: table[0], revoke };
}

/** Whether a database-level grant's name (with `%`, `_` wildcards and `\` escapes) covers `database`. */
export function databasePatternMatches(pattern: string, database: string): boolean {
  if (pattern === '*') return true;
  let regex = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '\\' && i + 1 < pattern.length) {
      regex += (pattern[++i] as string).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    } else if (ch === '%') {
      regex += '.*';
    } else if (ch === '_') {
      regex += '.';
    } else {
      regex += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${regex}$`, 's').test(database);
}

/** Privileges the session holds, from its SHOW GRANTS lines (its own and its active roles'). */
export class MysqlGrants {
  private readonly lines: readonly GrantLine[];

  constructor(showGrants: readonly string[]) {
    this.lines = showGrants.map(parseGrantLine).filter((line): line is GrantLine => line !== undefined);
  }

  private holds(line: GrantLine, privilege: string): boolean {
    return line.privileges.includes(privilege) || line.privileges.includes('ALL PRIVILEGES') || line.privileges.includes('ALL');
  }

  /** A privilege held on every database (`*.*`). */
  global(privilege: string): boolean {
    return this.lines.some((line) => !line.revoke && line.database === '*' && this.holds(line, privilege));
  }

  /** A privilege held on the whole of `database`: globally (less partial revokes) or on `database`.* (wildcards apply). */
  onDatabase(privilege: string, database: string): boolean {
    const revoked = this.lines.some((line) => line.revoke && line.database === database && line.table === '*' && this.holds(line, privilege));
    if (this.global(privilege) && !revoked) return true;
    return this.lines.some(
      (line) => !line.revoke && line.database !== '*' && line.table === '*' && databasePatternMatches(line.database, database) && this.holds(line, privilege),
    );
  }

  /** A privilege held on `database`.`table`, at any level. */
  onTable(privilege: string, database: string, table: string): boolean {
    return (
      this.onDatabase(privilege, database) ||
      this.lines.some((line) => !line.revoke && line.table === table && line.database === database && this.holds(line, privilege))
    );
  }
}

/** What shows routine bodies to a user other than their definer, per server. */
export function routinePrivilege(flavor: MysqlFlavor, version?: ServerVersionParts): { grant: string; says: string } {
  if (flavor === 'mariadb') {
    return { grant: 'SELECT ON `mysql`.`proc`', says: 'SELECT on mysql.proc' };
  }
  const v = version ?? { major: 8, minor: 0, patch: 20 };
  if (v.major > 8 || (v.major === 8 && (v.minor > 0 || (v.patch ?? 0) >= 20))) return { grant: 'SHOW_ROUTINE ON *.*', says: 'SHOW_ROUTINE' };
  if (v.major === 8) return { grant: 'SELECT ON *.*', says: 'global SELECT' };
  return { grant: 'SELECT ON `mysql`.`proc`', says: 'SELECT on mysql.proc' };
}

/** Whether the session may read the bodies of routines it did not define, in each of `databases`. */
function canShowRoutines(grants: MysqlGrants, flavor: MysqlFlavor, version: ServerVersionParts, databases: readonly string[]): boolean {
  if (flavor === 'mariadb') {
    const showCreateRoutine = version.major > 11 || (version.major === 11 && version.minor >= 3);
    return grants.onTable('SELECT', 'mysql', 'proc') || (showCreateRoutine && databases.every((d) => grants.onDatabase('SHOW CREATE ROUTINE', d)));
  }
  const modern = version.major > 8 || (version.major === 8 && (version.minor > 0 || (version.patch ?? 0) >= 20));
  if (version.major >= 8) return grants.global('SELECT') || (modern && grants.global('SHOW_ROUTINE'));
  return grants.onTable('SELECT', 'mysql', 'proc');
}

/** `'name'@'host'`, as GRANT takes it. */
export function mysqlAccount(user: string, host: string): string {
  const quote = (text: string) => `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  return `${quote(user)}@${quote(host)}`;
}

/** A quoted identifier: `` `we``ird` ``. */
export function quoteMysqlIdent(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

/** What the preflight found, per database, for the check below. */
export interface MysqlDatabaseFacts {
  readonly database: string;
  /** Views the user can see there (with SELECT on the database it sees them all). */
  readonly views: readonly string[];
}

export interface MysqlPrivilegeContext {
  /** From CURRENT_USER(): the account the server matched. */
  readonly account: { readonly user: string; readonly host: string };
  readonly flavor: MysqlFlavor;
  readonly version: ServerVersionParts;
  /** The dump client's name, for the message. */
  readonly tool: string;
  readonly needs: MysqlDumpNeeds;
  readonly source?: string;
}

/**
 * `InsufficientPrivileges` naming, per database, each privilege the dump needs and the session
 * lacks, why it is needed, and the GRANT that fixes it; undefined when nothing is missing.
 */
export function mysqlPrivilegeError(grants: MysqlGrants, facts: readonly MysqlDatabaseFacts[], context: MysqlPrivilegeContext): EngineError | undefined {
  const { needs } = context;
  const account = mysqlAccount(context.account.user, context.account.host);
  const problems: string[] = [];
  const fixes: string[] = [];
  for (const { database, views } of facts) {
    const missing: { privilege: string; why: string }[] = [];
    if (!grants.onDatabase('SELECT', database)) {
      missing.push({ privilege: 'SELECT', why: 'to read its tables; a table without it is invisible and would be left out' });
    }
    if (views.length > 0 && !grants.onDatabase('SHOW VIEW', database)) {
      missing.push({ privilege: 'SHOW VIEW', why: `it has ${countedNames(views, 'view', 'views')}: SHOW CREATE VIEW fails without it` });
    }
    if (needs.triggers && !grants.onDatabase('TRIGGER', database)) {
      missing.push({ privilege: 'TRIGGER', why: 'triggers are dumped; without it they are invisible and would be left out' });
    }
    if (needs.events && !grants.onDatabase('EVENT', database)) {
      missing.push({ privilege: 'EVENT', why: '--events runs SHOW EVENTS, which fails without it' });
    }
    if (needs.lockTables && !grants.onDatabase('LOCK TABLES', database)) {
      missing.push({ privilege: 'LOCK TABLES', why: 'the dump locks each table (no --single-transaction)' });
    }
    if (missing.length > 0) {
      problems.push(`database "${database}": no ${missing.map((m) => `${m.privilege} (${m.why})`).join(', no ')}`);
      fixes.push(`GRANT ${missing.map((m) => m.privilege).join(', ')} ON ${quoteMysqlIdent(database)}.* TO ${account}`);
    }
  }
  if (needs.routines && !canShowRoutines(grants, context.flavor, context.version, facts.map((f) => f.database))) {
    const routine = routinePrivilege(context.flavor, context.version);
    problems.push(`no ${routine.says} (--routines: a routine's body is shown only to its definer and to holders of it; the others would be left out)`);
    fixes.push(`GRANT ${routine.grant} TO ${account}`);
  }
  if (needs.process && !grants.global('PROCESS')) {
    problems.push('no PROCESS (tablespaces are dumped: no --no-tablespaces)');
    fixes.push(`GRANT PROCESS ON *.* TO ${account}`);
  }
  if (needs.reload && !grants.global('RELOAD') && !grants.global('FLUSH_TABLES')) {
    problems.push('no RELOAD (the dump takes FLUSH TABLES WITH READ LOCK)');
    fixes.push(`GRANT RELOAD ON *.* TO ${account}`);
  }
  if (problems.length === 0) return undefined;
  return new EngineError(
    'InsufficientPrivileges',
    `user ${account} lacks privileges ${context.tool} needs, so the dump would fail part-way or silently leave objects out; it was not started. ` +
      `${problems.join('; ')}. Fix: ${fixes.join('; ')}. The complete least-privilege SQL: lifeboat grants ${context.source ?? 'SOURCE'}`,
  );
}

export interface MysqlGrantsInput {
  readonly source: string;
  readonly username: string;
  readonly databases: readonly string[];
  readonly passwordSecretArn: string;
  readonly flavor: MysqlFlavor;
  readonly platform: DbPlatform;
  /** The dump client's argv as the worker builds it (mysqlDumpArgs): the privileges follow its options. */
  readonly dumpArgs: readonly string[];
  /** The dump client's name, for the comments. */
  readonly tool: string;
  /** @default - MySQL 8.0.20 or later; any MariaDB */
  readonly serverVersion?: ServerVersionParts;
}

/** Where the password goes in the printed SQL: replaced by the operator as it runs, never saved. */
export const MYSQL_PASSWORD_PLACEHOLDER = '<password from Secrets Manager>';

/**
 * The least-privilege SQL for a MySQL/MariaDB source's backup user: the account (password
 * placeholder), then one GRANT per database and what routines need, each privilege with the
 * dump option that needs it; and the privileges not needed with the options in use, and why.
 */
export function mysqlGrantsSql(input: MysqlGrantsInput): string {
  const needs = mysqlDumpNeeds(input.dumpArgs);
  const account = mysqlAccount(input.username, '%');
  const rds = input.platform === 'rds';
  const client = input.flavor === 'mariadb' ? 'mariadb' : 'mysql';
  const options = input.dumpArgs.filter((a) =>
    ['--single-transaction', '--skip-lock-tables', '--routines', '--triggers', '--events', '--no-tablespaces', '--set-gtid-purged=OFF', '--skip-triggers'].includes(a));
  const lines: string[] = [];
  const push = (...text: string[]) => lines.push(...text);
  push(
    `-- Lifeboat: least-privilege grants for the backup user of source "${input.source}"`,
    `-- (${input.flavor}${rds ? ' on Amazon RDS / Aurora' : ', self-managed'}; databases: ${input.databases.join(', ')}).`,
    '--',
    `-- The backup runs ${input.tool} ${options.join(' ')}`,
    '-- on one database at a time.',
    '-- It writes nothing: no INSERT, UPDATE, DELETE or DDL.',
    `-- Run it with the ${client} client as ${rds ? 'the master user' : 'an administrator (root)'}:  ${client} -h HOST -u ADMIN -p < grants.sql`,
    '',
    '-- 1. The account. Its password is the SecretString of the secret connection.passwordSecretArn names,',
    `--    ${input.passwordSecretArn}`,
    '--    (the dump task receives it as LIFEBOAT_DB_PASSWORD):',
    `--      aws secretsmanager get-secret-value --secret-id '${input.passwordSecretArn}' --query SecretString --output text`,
    `--    Put it in place of ${MYSQL_PASSWORD_PLACEHOLDER} as you run this (e.g. at the ${client} prompt),`,
    '--    and keep no copy of the file with it.',
    "--    '%' lets it connect from any host: narrow it to the dump task's subnets (e.g. '10.0.%') where you can.",
    `CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY '${MYSQL_PASSWORD_PLACEHOLDER}';`,
    '',
    '-- 2. Each database:',
    '--    SELECT: read every table (a table it holds no privilege on is invisible: the dump would leave it out).',
    '--    SHOW VIEW: SHOW CREATE VIEW for the views the dump recreates (it fails without it).',
  );
  const dbPrivileges = ['SELECT', 'SHOW VIEW'];
  if (needs.triggers) {
    push('--    TRIGGER: triggers are dumped (--triggers); without it they are invisible and left out.');
    dbPrivileges.push('TRIGGER');
  }
  if (needs.events) {
    push('--    EVENT: --events runs SHOW EVENTS, which fails without it.');
    dbPrivileges.push('EVENT');
  }
  if (needs.lockTables) {
    push('--    LOCK TABLES: the dump locks each table (no --single-transaction).');
    dbPrivileges.push('LOCK TABLES');
  }
  for (const database of input.databases) push(`GRANT ${dbPrivileges.join(', ')} ON ${quoteMysqlIdent(database)}.* TO ${account};`);
  push('');

  const global: string[] = [];
  if (needs.routines) {
    const routine = routinePrivilege(input.flavor, input.serverVersion);
    push(
      '-- 3. Routines (--routines): SHOW CREATE PROCEDURE/FUNCTION shows their bodies only to their definer and to',
      `--    holders of ${routine.says}; without it every other routine is left out.`,
    );
    if (input.flavor === 'mariadb') {
      push('--    MariaDB 11.3+ offers the narrower SHOW CREATE ROUTINE instead: GRANT SHOW CREATE ROUTINE ON `db`.* TO …;');
    } else {
      push('--    MySQL 8.0.0-8.0.19: GRANT SELECT ON *.* instead; MySQL 5.7: GRANT SELECT ON `mysql`.`proc`.');
      if (rds) push('--    If the master user may not grant SHOW_ROUTINE, GRANT SELECT ON *.* works too (it reads every database).');
    }
    push(`GRANT ${routine.grant} TO ${account};`, '');
  }
  if (needs.process) global.push('PROCESS');
  if (needs.reload) global.push('RELOAD');
  if (global.length > 0) {
    push(
      '-- 4. Global privileges the options in use need:',
      ...(needs.process ? ['--    PROCESS: tablespaces are dumped (no --no-tablespaces); MySQL 8.0.21+ and 5.7.31+ need it for that.'] : []),
      ...(needs.reload ? ['--    RELOAD: the dump takes FLUSH TABLES WITH READ LOCK.'] : []),
      `GRANT ${global.join(', ')} ON *.* TO ${account};`,
      '',
    );
  }

  push('-- Not needed, because of how the dump runs:');
  if (!needs.lockTables) push('--   LOCK TABLES: --single-transaction reads InnoDB tables in one consistent snapshot, without table locks.');
  if (!needs.process) push('--   PROCESS: --no-tablespaces (MySQL 8.0.21+ and 5.7.31+ need it to dump tablespaces).');
  if (!needs.reload) {
    push(
      '--   RELOAD, FLUSH_TABLES, BACKUP_ADMIN: no FLUSH TABLES WITH READ LOCK or LOCK INSTANCE FOR BACKUP: no --master-data,',
      `--   no --flush-logs${input.dumpArgs.includes('--set-gtid-purged=OFF') ? ', --set-gtid-purged=OFF' : ''}, and the row counts take a consistent snapshot of their own.`,
    );
  }
  push('--   REPLICATION CLIENT / SLAVE MONITOR: no binary log position is recorded.');
  return `${lines.join('\n')}\n`;
}
