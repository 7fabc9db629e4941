import { RegionInfo } from 'aws-cdk-lib/region-info';
import { z } from 'zod';
import { CONFIG_TLS_MODES, SYSTEM_CA_BUNDLE_PATH } from '../domain/tls';
import { isRdsIdentifier } from '../rds/identify';
import { DEFAULT_TIERS, TIER_FIELDS } from './tiers';
import { DURATION_HINT, SIZE_HINT, parseDuration, parseSize } from './units';

/**
 * The config file's schema: what a team writes in lifeboat.config.ts (or JSON). Field
 * shapes are checked here; rules that span fields (unique names, tier references,
 * schedule vs RPO, offsite region) live in validate.ts so that every problem is reported
 * in one pass.
 */

const duration = z.string().refine((text) => parseDuration(text) !== undefined, {
  error: `invalid duration (valid: ${DURATION_HINT})`,
});
const size = z.string().refine((text) => parseSize(text) !== undefined, {
  error: `invalid size (valid: ${SIZE_HINT})`,
});
/**
 * The regions in aws-cdk-lib's region facts. A pattern let "eu-centrl-1" through to a deploy
 * that fails much later; a region newer than the installed aws-cdk-lib needs an upgrade of it.
 */
const KNOWN_REGIONS: readonly string[] = RegionInfo.regions.map((info) => info.name);
const region = z.string().refine((name) => KNOWN_REGIONS.includes(name), {
  error: (issue) =>
    `unknown AWS region (valid: a region that aws-cdk-lib's region facts list, such as "eu-west-1"${didYouMean(issue.input, KNOWN_REGIONS)})`,
});
const account = z.string().regex(/^\d{12}$/, { error: 'invalid AWS account id (valid: 12 digits)' });
const roleArn = z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, {
  error: 'invalid role ARN (valid: arn:aws:iam::<12-digit account>:role/<name>)',
});
const httpsUrl = z.url({ protocol: /^https$/, error: 'invalid URL (valid: an https:// URL)' });

const HOST_ONLY = 'a hostname or IP address only, e.g. "orders.example.internal"';
/**
 * A host is a name or an address. A URL or "user:password@host" would put a password in the
 * template and in log lines, so both are refused, and the value echoed back has everything
 * before its last "@" masked but a user name.
 */
const host = z
  .string()
  .min(1, { error: 'host is required (valid: a hostname or IP address)' })
  .superRefine((value, ctx) => {
    const isUrl = value.includes('://');
    if (!isUrl && !value.includes('@')) return;
    ctx.addIssue({
      code: 'custom',
      input: withoutCredentials(value),
      message: isUrl
        ? `a URL, not a host (valid: ${HOST_ONLY}; username, port and database are fields of their own, and the password is read from passwordSecretArn, never written in the config)`
        : `credentials before "@" are not part of a host (valid: ${HOST_ONLY}; the user name goes in username, and the password is read from passwordSecretArn, never written in the config)`,
    });
  });

const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:(.+)$/;
/**
 * The complete ARN: Secrets Manager appends "-" and six random letters and digits to the name.
 * ECS needs the complete ARN (a partial one fails the deployment, long after synth). A name
 * whose own last "-" is followed by six letters or digits cannot be told apart from one.
 */
const COMPLETE_SECRET_NAME = /-[A-Za-z0-9]{6}$/;
const secretArn = z
  .string()
  .regex(SECRET_ARN, { error: 'invalid secret ARN (valid: arn:aws:secretsmanager:<region>:<account>:secret:<name>)' })
  .refine((arn) => !SECRET_ARN.test(arn) || COMPLETE_SECRET_NAME.test(arn), {
    error: (issue) => {
      const arn = String(issue.input);
      const name = SECRET_ARN.exec(arn)?.[1] ?? '<name>';
      return 'a secret ARN without the six-character suffix Secrets Manager adds to the name ' +
        `(valid: the complete ARN, which ECS needs, e.g. "${arn}-AbCdEf", ` +
        `as \`aws secretsmanager describe-secret --secret-id ${name} --query ARN\` prints it)`;
    },
  });

const TLS_MODES_HINT = '"verify-full" (the default: the certificate must chain to the CA bundle and name the host), ' +
  '"require" (encrypted, the certificate unchecked) or "prefer" (encrypted when the server offers TLS, plain text otherwise)';

function tlsModeProblem(value: unknown): string {
  if (value === 'disable' || value === 'allow') {
    return `plain text is never a setting of its own (valid: ${TLS_MODES_HINT}; a server without TLS needs "prefer", written out)`;
  }
  if (value === 'verify-ca') {
    return `"verify-ca" checks the chain but not the host name, so any certificate of that CA would do (valid: ${TLS_MODES_HINT})`;
  }
  return `unknown TLS mode (valid: ${TLS_MODES_HINT})`;
}

/**
 * The CA bundle of `verify-full`: a PEM file's absolute path in the worker image, or the
 * complete ARN of a Secrets Manager secret whose value is the PEM (ECS injects it; the worker
 * writes it to a file of its own).
 */
const TLS_CA_HINT = `the absolute path of a PEM CA bundle in the worker image, such as "${SYSTEM_CA_BUNDLE_PATH}" (the public CAs), ` +
  'or the complete ARN of a Secrets Manager secret whose value is the PEM bundle';
const tlsCa = z.string().superRefine((value, ctx) => {
  if (value.includes('-----BEGIN')) {
    ctx.addIssue({ code: 'custom', input: '(PEM text)', message: `the PEM itself, not where it is (valid: ${TLS_CA_HINT})` });
    return;
  }
  if (value.startsWith('arn:')) {
    const parsed = secretArn.safeParse(value);
    if (!parsed.success) ctx.addIssue({ code: 'custom', message: parsed.error.issues[0]?.message ?? `invalid secret ARN (valid: ${TLS_CA_HINT})` });
    return;
  }
  if (!/^\/[^\0\n]*[^/]$/.test(value)) {
    ctx.addIssue({ code: 'custom', message: `neither an absolute file path nor a secret ARN (valid: ${TLS_CA_HINT})` });
  }
});

/** Storage classes of the offsite replicas: every one of them is read in milliseconds. */
const REPLICA_STORAGE_CLASSES = ['STANDARD', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER_IR'] as const;
/** Classes whose objects must be restored before a read: the offsite copy is read without one. */
const RESTORE_FIRST_STORAGE_CLASSES = ['GLACIER', 'DEEP_ARCHIVE'];

function storageClassProblem(value: unknown): string {
  if (typeof value === 'string' && RESTORE_FIRST_STORAGE_CLASSES.includes(value)) {
    return `${value} needs a restore before an object can be read, and the offsite copy is read without one: ` +
      'AwaitOffsite reads each run\'s manifest and verification there, and restores and drills from the offsite copy read its artifacts ' +
      `(valid: GLACIER_IR, archive pricing with millisecond reads; or ${REPLICA_STORAGE_CLASSES.filter((name) => name !== 'GLACIER_IR').join(', ')})`;
  }
  return `unknown storage class (valid: ${REPLICA_STORAGE_CLASSES.join(', ')})`;
}

/** EC2 ids: the prefix, then 8 hex digits (older resources) or 17 (since 2018), lower case. */
function resourceId(prefix: string, what: string) {
  return z.string().regex(new RegExp(`^${prefix}-(?:[0-9a-f]{8}|[0-9a-f]{17})$`), {
    error: `invalid ${what} (valid: "${prefix}-" followed by 8 or 17 lowercase hex digits, e.g. "${prefix}-0a1b2c3d4e5f60718")`,
  });
}

/** DB instance and cluster identifiers, as RDS takes them (lib/rds/identify.ts). */
function rdsIdentifier(what: 'instance' | 'cluster') {
  return z.string().refine(isRdsIdentifier, {
    error: `invalid DB ${what} identifier (valid: 1-63 lowercase letters, digits and hyphens, starting with a letter, without "--" or a trailing "-", e.g. "orders-${what === 'instance' ? 'db' : 'cluster'}")`,
  });
}

const NO_NETWORK = 'or neither subnetIds nor securityGroupIds to use the VPC\'s private subnets and a new security group';

const tierSchema = z.strictObject({
  rpo: duration.optional(),
  rto: duration.optional(),
  schedule: duration.optional(),
  timezone: z
    .string()
    .refine(isIanaTimeZone, { error: (issue) => timeZoneProblem(String(issue.input)) })
    .optional(),
  retention: duration.optional(),
  drill: duration.optional(),
  /** RDS/Aurora sources: the point-in-time window their automated backups must keep (at most 35 days). */
  pitrWindow: duration.optional(),
  /** RDS/Aurora sources: whether Lifeboat may raise their backup retention and start their offsite replication. */
  manageNativeBackups: z.boolean({ error: 'invalid manageNativeBackups (valid: true or false)' }).optional(),
});

/** How a source is protected (see `method`). */
export const SOURCE_METHODS = ['logical', 'pitr'] as const;

const sourceSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/, {
    error: 'invalid source name (valid: 1-40 characters of a-z, 0-9 and "-", not starting or ending with "-")',
  }),
  engine: z.enum(['postgres', 'mysql', 'mariadb'], { error: 'unknown engine (valid: postgres, mysql, mariadb)' }),
  tier: z.string().min(1, { error: 'tier is required (valid: a tier name such as "tier1")' }),
  connection: z.strictObject({
    host,
    port: z
      .number()
      .int()
      .min(1)
      .max(65535, { error: 'invalid port (valid: an integer from 1 to 65535)' })
      .optional(),
    database: z.string().min(1).optional(),
    databases: z
      .array(z.string().min(1))
      .min(1, { error: 'at least one database is required (valid: a list of database names such as ["orders"], or database: one name)' })
      .optional(),
    username: z.string().min(1, { error: 'username is required' }),
    passwordSecretArn: secretArn,
    /** TLS to the database; verify-full when not written (prefer is never a default). */
    tls: z.enum(CONFIG_TLS_MODES, { error: (issue) => tlsModeProblem(issue.input) }).optional(),
    /** verify-full's CA bundle; default: the image's RDS bundle for RDS endpoints, its public CAs otherwise. */
    tlsCa: tlsCa.optional(),
  }),
  network: z.strictObject({
    vpcId: resourceId('vpc', 'VPC id'),
    subnetIds: z
      .array(resourceId('subnet', 'subnet id'))
      .min(1, { error: `at least one subnet is required (valid: a list of subnet ids such as "subnet-0a1b2c3d4e5f60718", ${NO_NETWORK})` })
      .optional(),
    securityGroupIds: z
      .array(resourceId('sg', 'security group id'))
      .min(1, { error: `at least one security group is required (valid: a list of security group ids such as "sg-0a1b2c3d4e5f60718", ${NO_NETWORK})` })
      .optional(),
  }),
  dumpOptions: z
    .strictObject({
      compression: z
        .string()
        .regex(/^(none|gzip(:[0-9])?|zstd(:(1[0-9]|2[0-2]|[1-9]))?|lz4(:[0-9]+)?)$/, {
          error: 'invalid compression (valid: none, gzip[:0-9], zstd[:1-22], lz4[:level])',
        })
        .optional(),
      exactCountMaxSize: size.optional(),
      excludeTables: z.array(z.string().min(1)).optional(),
    })
    .optional(),
  /**
   * How the source is protected: `logical` (dumps, the default), `pitr` (PostgreSQL: pgBackRest
   * base backups and continuous WAL archiving, see `pitr`), or both (`['logical', 'pitr']`:
   * dumps for long, portable retention, PITR for the RPO).
   */
  method: z
    .union([z.enum(SOURCE_METHODS), z.array(z.enum(SOURCE_METHODS)).min(1)], {
      error: "unknown method (valid: 'logical', 'pitr', or both as ['logical', 'pitr'])",
    })
    .optional(),
  /** Point-in-time recovery with pgBackRest on the database host (method 'pitr'). */
  pitr: z
    .strictObject({
      /** How Lifeboat reaches the host to run pgBackRest: AWS Systems Manager, by instance id (`mi-…` for an on-premises host under a hybrid activation) or by tag. */
      host: z.union([
        z.strictObject({ instanceId: z.string().regex(/^(i|mi)-[0-9a-f]{8,17}$/, { error: 'invalid instance id (valid: an EC2 instance id such as "i-0a1b2c3d4e5f60718", or a managed instance id "mi-…")' }) }),
        z.strictObject({ tag: z.strictObject({ key: z.string().min(1).max(128), value: z.string().max(256) }) }),
      ], { error: 'pitr.host: give instanceId, or tag: { key, value } (the SSM-managed host that runs PostgreSQL)' }),
      /** pgBackRest's stanza. @default - the source's name */
      stanza: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, { error: 'invalid stanza (valid: 1-63 letters, digits, "_" and "-")' }).optional(),
      /** The cluster's data directory on the host (PGDATA). */
      dataDirectory: z.string().regex(/^\/[^\0\n]*$/, { error: 'invalid dataDirectory (valid: an absolute path such as "/var/lib/postgresql/15/main")' }),
      /** The OS user that runs PostgreSQL on the host. @default 'postgres' */
      osUser: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: 'invalid osUser (valid: a Unix user name such as "postgres")' }).optional(),
      /**
       * The exact check: every few minutes Lifeboat writes the time into `lifeboat.pitr_marker`
       * of the source's first database (through SSM, as the server's user), and each PITR drill
       * asserts that the newest marker restored is at or before its target and near it, and that
       * none after it was. The write also keeps an idle server archiving. @default false
       */
      marker: z.boolean().optional(),
    })
    .optional(),
  /**
   * Point-in-time recovery of a self-managed MySQL/MariaDB source (method 'pitr'): its binary logs
   * are archived over the replication protocol with the source's own connection; with `physical`,
   * mariadb-backup (MariaDB) or xtrabackup (MySQL) fulls and incrementals run on the host through
   * SSM as further bases beside the logical dumps. @default - binary logs archived, dumps as bases
   */
  binlog: z
    .strictObject({
      physical: z
        .strictObject({
          /** The SSM-managed host that runs the server: by instance id (`mi-…` on premises) or by tag. */
          host: z.union([
            z.strictObject({ instanceId: z.string().regex(/^(i|mi)-[0-9a-f]{8,17}$/, { error: 'invalid instance id (valid: an EC2 instance id such as "i-0a1b2c3d4e5f60718", or a managed instance id "mi-…")' }) }),
            z.strictObject({ tag: z.strictObject({ key: z.string().min(1).max(128), value: z.string().max(256) }) }),
          ], { error: 'binlog.physical.host: give instanceId, or tag: { key, value } (the SSM-managed host that runs the server)' }),
          /** The server's datadir on the host. @default '/var/lib/mysql' */
          dataDirectory: z.string().regex(/^\/[^\0\n]*$/, { error: 'invalid dataDirectory (valid: an absolute path such as "/var/lib/mysql")' }).optional(),
          /** The OS user the backup tool runs as, over the server's socket. @default 'mysql' */
          osUser: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: 'invalid osUser (valid: a Unix user name such as "mysql")' }).optional(),
        })
        .optional(),
    })
    .optional(),
  /**
   * An RDS instance or an Aurora / Multi-AZ DB cluster: which one (read off an RDS endpoint
   * host when not written), and its PITR drills' throwaway instance. Lifeboat then checks and
   * alarms on its native point-in-time recovery (the tier's pitrWindow), copies it offsite and
   * drills it. `false`: the host is an RDS endpoint, and Lifeboat only dumps it.
   */
  rds: z
    .union([
      z.literal(false),
      z.strictObject({
        instance: rdsIdentifier('instance').optional(),
        cluster: rdsIdentifier('cluster').optional(),
        drill: z
          .strictObject({
            /** The throwaway instance's class. @default - the source's own class */
            instanceClass: z.string().regex(/^db\.[a-z0-9]+(?:\.[a-z0-9]+)?$/, { error: 'invalid instance class (valid: an RDS DB instance class such as "db.t4g.medium", or "db.serverless" for Aurora Serverless v2)' }).optional(),
            /** The DB subnet group it is restored into. @default - the source's own */
            subnetGroup: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,254}$/, { error: 'invalid DB subnet group name (valid: 1-255 letters, digits, spaces, ".", "_" and "-")' }).optional(),
            /** Its VPC security groups, which must admit the drill checker. @default - the source's network.securityGroupIds */
            securityGroupIds: z.array(resourceId('sg', 'security group id')).min(1, { error: 'at least one security group is required (valid: a list of security group ids, or no securityGroupIds to use the source\'s)' }).optional(),
          })
          .optional(),
      }),
    ], { error: 'invalid rds (valid: { instance } or { cluster }, each optional for an RDS endpoint host, with an optional drill: { instanceClass, subnetGroup, securityGroupIds }; or false)' })
    .optional(),
  sizeHint: size.optional(),
  /** Dump throughput this source is known to reach, per second (e.g. "120MB"). */
  dumpThroughputHint: size.optional(),
  /** SQL that a restore drill runs against the restored database; each must return true. */
  drillChecks: z
    .array(z.strictObject({
      name: z.string().regex(/^[a-z0-9][a-z0-9 _-]{0,62}$/i, { error: 'invalid check name (valid: letters, digits, space, "_" and "-")' }),
      sql: z.string().min(1, { error: 'sql is required (valid: a query returning one boolean, e.g. "SELECT count(*) > 0 FROM orders")' }),
      database: z.string().min(1).optional(),
    }))
    .optional(),
});

export const configSchema = z.strictObject({
  appName: z
    .string()
    .regex(/^[A-Z][A-Za-z0-9]{0,30}$/, { error: 'invalid appName (valid: PascalCase letters and digits, e.g. "Lifeboat")' })
    .optional(),
  primary: z.strictObject({ region, account: account.optional() }),
  offsite: z.strictObject({
    region,
    account: account.optional(),
    storageClass: z.enum(REPLICA_STORAGE_CLASSES, { error: (issue) => storageClassProblem(issue.input) }).optional(),
  }),
  objectLock: z
    .strictObject({
      mode: z.enum(['governance', 'compliance'], { error: 'unknown Object Lock mode (valid: governance, compliance)' }),
      /** The offsite bucket's mode; compliance is recommended there (no one, root included, can shorten a lock). */
      offsiteMode: z.enum(['governance', 'compliance'], { error: 'unknown Object Lock mode (valid: governance, compliance)' }).optional(),
    })
    .optional(),
  /**
   * A role that may still change the backup buckets' policy, lifecycle, versioning and Object
   * Lock configuration, and bypass governance retention, besides the deployment role.
   */
  breakGlassRoleArn: roleArn.optional(),
  /**
   * The roles that deploy the stacks (CloudFormation's execution role), exempt from the same
   * bucket-policy denies. Default: the CDK bootstrap's cfn-exec role of each account and region.
   */
  deploymentRoleArns: z
    .array(roleArn)
    .min(1, { error: 'at least one role is required (valid: a list of role ARNs, or no deploymentRoleArns to use the CDK bootstrap\'s cfn-exec role)' })
    .optional(),
  tiers: z.record(z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, { error: 'invalid tier name (valid: a-z, 0-9, "-")' }), tierSchema).optional(),
  sources: z.array(sourceSchema).min(1, {
    error: 'at least one source is required (valid: a list of sources, each with name, engine, tier, connection and network)',
  }),
  notifications: z
    .strictObject({
      emails: z.array(z.email({ error: 'invalid e-mail address' })).optional(),
      httpsEndpoints: z.array(httpsUrl).optional(),
      heartbeatUrls: z.array(httpsUrl).optional(),
    })
    .optional(),
});

/** What a config file contains, before defaults are applied. */
export type LifeboatConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type SourceInput = z.input<typeof sourceSchema>;

export const KNOWN_TIER_FIELDS = TIER_FIELDS;
export const DEFAULT_TIER_NAMES = Object.keys(DEFAULT_TIERS);

/**
 * EventBridge Scheduler evaluates a schedule in an IANA timezone; Intl also takes UTC offsets
 * ("+05:00") and any casing, which Scheduler does not. Intl's list holds one canonical name
 * per zone (Node 22 lists "Asia/Calcutta", not "Asia/Kolkata"; neither "UTC" nor "Etc/…"), so a
 * name is accepted when it is spelt as IANA spells names and Intl resolves it to a listed zone,
 * to UTC ("UTC", "Etc/UTC", "GMT") or to a fixed "Etc/GMT±N" zone.
 */
const LISTED_TIME_ZONES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('timeZone'));
const IANA_SPELLING = /^[A-Z][A-Za-z0-9_+-]*(\/[A-Z][A-Za-z0-9_+-]*)*$/;
const UTC_OFFSET = /^[+-]\d{2}:\d{2}$/;

function resolvedTimeZone(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

function isIanaTimeZone(name: string): boolean {
  const resolved = resolvedTimeZone(name);
  return resolved !== undefined && IANA_SPELLING.test(name) &&
    (LISTED_TIME_ZONES.has(resolved) || resolved === 'UTC' || /^Etc\/GMT[+-]\d{1,2}$/.test(resolved));
}

function timeZoneProblem(name: string): string {
  const valid = 'valid: an IANA name such as "UTC" or "Europe/Berlin"';
  const resolved = resolvedTimeZone(name);
  if (resolved !== undefined && UTC_OFFSET.test(resolved)) {
    // Etc/GMT-5 is UTC+5: the POSIX sign convention of the Etc zones.
    const [hours, minutes] = resolved.slice(1).split(':').map(Number);
    const etc = hours === 0 ? 'UTC' : `Etc/GMT${resolved.startsWith('+') ? '-' : '+'}${hours}`;
    const fixed = minutes === 0 && isIanaTimeZone(etc)
      ? `; a fixed offset of ${resolved} is "${etc}"${hours === 0 ? '' : ', the Etc sign is inverted'}`
      : '';
    return `a UTC offset, not an IANA timezone name, which EventBridge Scheduler needs (${valid}${fixed})`;
  }
  if (resolved !== undefined) {
    const listed = [...LISTED_TIME_ZONES, 'UTC'].find((zone) => zone.toLowerCase() === name.toLowerCase());
    const suggestion = listed ?? (isIanaTimeZone(resolved) ? resolved : undefined);
    return `unknown timezone (${valid}${suggestion ? `; did you mean "${suggestion}"?` : ''})`;
  }
  return `unknown timezone (${valid}${didYouMean(name, [...LISTED_TIME_ZONES, 'UTC'], 2)})`;
}

/**
 * "; did you mean "x"?" naming the known values closest to a misspelt one (edit distance, ties
 * all named), or "" when none is close enough to be a likely typo.
 */
export function didYouMean(value: unknown, known: readonly string[], maxDistance = 3): string {
  if (typeof value !== 'string' || value === '') return '';
  const scored = known.map((candidate) => ({ candidate, distance: editDistance(value.toLowerCase(), candidate.toLowerCase()) }));
  const best = Math.min(...scored.map((entry) => entry.distance));
  if (best > maxDistance) return '';
  const names = scored.filter((entry) => entry.distance === best).slice(0, 3).map((entry) => `"${entry.candidate}"`);
  const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : names[0];
  return `; did you mean ${list}?`;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/**
 * A host value fit for an error message: the scheme, a user name followed by ":" (the rest of
 * everything before the last "@" becomes "***"), the host and port, and a plain path; anything
 * after that (a query string may hold a password) becomes "***".
 */
function withoutCredentials(value: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(value)?.[0] ?? '';
  let rest = value.slice(scheme.length);
  let credentials = '';
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const user = /^([A-Za-z0-9._-]+):/.exec(rest.slice(0, at))?.[1];
    credentials = user ? `${user}:***@` : '***@';
    rest = rest.slice(at + 1);
  }
  const hostAndPort = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]*)(:\d{1,5}(?!\d))?/.exec(rest)?.[0] ?? '';
  const path = /^\/[A-Za-z0-9._~-]*/.exec(rest.slice(hostAndPort.length))?.[0] ?? '';
  const tail = rest.slice(hostAndPort.length + path.length);
  return `${scheme}${credentials}${hostAndPort}${path}${tail === '' ? '' : `${/^[?#;&]/.test(tail) ? tail[0] : ''}***`}`;
}
