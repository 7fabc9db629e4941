/**
 * What a database host needs for point-in-time recovery with pgBackRest (`lifeboat pitr setup
 * SOURCE`): the install line pinned to the images' pgBackRest, `pgbackrest.conf` with the
 * repository in the primary bucket under `pitr/<source>/` (SSE-KMS with the backup key,
 * instance-profile credentials), the `postgresql.conf` lines, the stanza's creation and check,
 * and the IAM policy of the host's instance profile: its own prefix, read and write, never a
 * version removed (a delete leaves a marker; every version stays under its lock). The host never
 * expires anything (`expire-auto=n`, retention at pgBackRest's maximum):
 * Lifeboat's pruner decides what goes, with its retention policy.
 *
 * Nothing here is a secret: the host's credentials are its instance profile's.
 */
import type { Source } from '../config/types';
import { PGBACKREST_VERSION } from '../domain/versions';

export interface PitrHostSetup {
  readonly source: string;
  readonly stanza: string;
  /** A POSIX shell script, run as root on the host. */
  readonly script: string;
  readonly pgbackrestConf: string;
  readonly postgresqlConf: string;
  /** The instance profile's policy document (IAM JSON). */
  readonly iamPolicy: Record<string, unknown>;
}

export interface PitrSetupTarget {
  /** The primary bucket (the PrimaryBucketName output of the primary stack). */
  readonly bucket: string;
  readonly region: string;
  /** The bucket's KMS key (its ARN). */
  readonly keyArn: string;
  /** The AWS partition. @default 'aws' */
  readonly partition?: string;
}

/** pgBackRest's own ceiling for repo1-retention-full: the host keeps every set until Lifeboat's pruner expires it. */
const KEEP_EVERYTHING = 9_999_999;

export function pitrPrefix(source: string): string {
  return `pitr/${source}/`;
}

export function renderPgbackrestConf(source: Source, target: PitrSetupTarget): string {
  const pitr = requirePitr(source);
  return [
    `# Lifeboat: pgBackRest for source ${source.name}. Written by lifeboat pitr setup; the host never expires: Lifeboat's pruner does.`,
    '[global]',
    'repo1-type=s3',
    `repo1-s3-bucket=${target.bucket}`,
    `repo1-s3-region=${target.region}`,
    `repo1-s3-endpoint=s3.${target.region}.${domainOf(target.partition ?? 'aws')}`,
    '# The instance profile\'s credentials (no key in this file).',
    'repo1-s3-key-type=auto',
    `repo1-s3-kms-key-id=${target.keyArn}`,
    `repo1-path=/${pitrPrefix(source.name).replace(/\/$/, '')}`,
    `repo1-retention-full=${KEEP_EVERYTHING}`,
    'expire-auto=n',
    'compress-type=zst',
    'start-fast=y',
    '# WAL queues on the host while S3 is unreachable, and is pushed in parallel when it returns.',
    'archive-async=y',
    'spool-path=/var/spool/pgbackrest',
    'process-max=4',
    'log-level-console=info',
    'log-level-file=detail',
    '',
    `[${pitr.stanza}]`,
    `pg1-path=${pitr.dataDirectory}`,
    `pg1-user=${pitr.osUser}`,
    '',
  ].join('\n');
}

/** The server settings continuous archiving needs, as name and value. */
export function postgresqlSettings(source: Source): [string, string][] {
  const pitr = requirePitr(source);
  return [
    ['wal_level', 'replica'],
    ['archive_mode', 'on'],
    ['archive_command', `pgbackrest --stanza=${pitr.stanza} archive-push %p`],
    // At most a third of the RPO: an idle server still hands a segment to the archive this often.
    ['archive_timeout', String(pitr.plan.archiveTimeoutSeconds)],
  ];
}

export function renderPostgresqlConf(source: Source): string {
  return [
    `# Lifeboat: continuous WAL archiving for source ${source.name} (tier ${source.tier.name}; archive_timeout is at most a third of its RPO).`,
    ...postgresqlSettings(source).map(([name, value]) => `${name} = '${value}'`),
    '',
  ].join('\n');
}

/** S3's and KMS's endpoint domain in a partition (`amazonaws.com`, `amazonaws.com.cn` in China). */
function domainOf(partition: string): string {
  return partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com';
}

/**
 * The host's instance profile, after pgBackRest's own sample policy: list the bucket's root and
 * the repository's prefix, read and write under it, and DeleteObject there — pgBackRest removes
 * files when it resumes or cleans an interrupted backup. In the versioned, Object-Locked bucket
 * that delete only leaves a marker: every version stays under its lock, and what would remove or
 * unlock a version (DeleteObjectVersion, retention, legal hold, governance bypass) is denied.
 */
export function pitrHostPolicy(source: Source, target: PitrSetupTarget): Record<string, unknown> {
  const partition = target.partition ?? 'aws';
  const bucketArn = `arn:${partition}:s3:::${target.bucket}`;
  const prefix = pitrPrefix(source.name);
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ListBucketRoot',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { StringEquals: { 's3:prefix': ['', prefix.slice(0, -1)], 's3:delimiter': ['/'] } },
      },
      { Sid: 'ListOwnPrefix', Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn, Condition: { StringLike: { 's3:prefix': [`${prefix}*`] } } },
      {
        Sid: 'ReadWriteOwnPrefix',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject', 's3:PutObjectTagging', 's3:DeleteObject'],
        Resource: `${bucketArn}/${prefix}*`,
      },
      {
        Sid: 'BackupKeyThroughS3',
        Effect: 'Allow',
        Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
        Resource: target.keyArn,
        Condition: { StringEquals: { 'kms:ViaService': `s3.${target.region}.${domainOf(partition)}` } },
      },
      {
        Sid: 'NeverRemoveAVersion',
        Effect: 'Deny',
        Action: ['s3:DeleteObjectVersion', 's3:PutObjectRetention', 's3:PutObjectLegalHold', 's3:BypassGovernanceRetention'],
        Resource: `${bucketArn}/*`,
      },
    ],
  };
}

/** Everything `lifeboat pitr setup` prints, for a source with method 'pitr'. */
export function pitrHostSetup(source: Source, target: PitrSetupTarget): PitrHostSetup {
  const pitr = requirePitr(source);
  const pgbackrestConf = renderPgbackrestConf(source, target);
  const postgresqlConf = renderPostgresqlConf(source);
  const iamPolicy = pitrHostPolicy(source, target);
  const asUser = `sudo -u ${pitr.osUser}`;
  const script = [
    '#!/bin/sh',
    `# Lifeboat: point-in-time recovery for source ${source.name} on this host, as root. Idempotent.`,
    'set -eu',
    '',
    `# 1. pgBackRest ${PGBACKREST_VERSION}, the version Lifeboat's images run, from the PostgreSQL project's repository.`,
    'install -d -m 0755 /etc/apt/keyrings',
    'curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc | gpg --dearmor --yes -o /etc/apt/keyrings/pgdg.gpg',
    'echo "deb [signed-by=/etc/apt/keyrings/pgdg.gpg] https://apt.postgresql.org/pub/repos/apt $(. /etc/os-release && echo "$VERSION_CODENAME")-pgdg main" > /etc/apt/sources.list.d/pgdg.list',
    'apt-get update',
    `apt-get install -y --no-install-recommends 'pgbackrest=${PGBACKREST_VERSION}-*'`,
    `pgbackrest version | grep -qx 'pgBackRest ${PGBACKREST_VERSION}' || { echo "pgBackRest ${PGBACKREST_VERSION} is needed (Lifeboat's images run it)" >&2; exit 1; }`,
    `install -d -m 0750 -o ${pitr.osUser} -g ${pitr.osUser} /var/spool/pgbackrest /var/log/pgbackrest /var/lib/pgbackrest`,
    '',
    '# 2. /etc/pgbackrest/pgbackrest.conf',
    'install -d -m 0755 /etc/pgbackrest',
    "cat > /etc/pgbackrest/pgbackrest.conf <<'LIFEBOAT_CONF'",
    pgbackrestConf.trimEnd(),
    'LIFEBOAT_CONF',
    `chown root:${pitr.osUser} /etc/pgbackrest/pgbackrest.conf && chmod 0640 /etc/pgbackrest/pgbackrest.conf`,
    '',
    '# 3. Archiving, with ALTER SYSTEM (postgresql.auto.conf; the same lines as postgresql.conf text: lifeboat pitr setup --postgresql-conf).',
    `${asUser} psql -XAtq -v ON_ERROR_STOP=1 \\`,
    ...postgresqlSettings(source).map(([name, value]) => `  -c "ALTER SYSTEM SET ${name} = '${value}'" \\`),
    '  -c "SELECT pg_reload_conf()"',
    `if [ -n "$(${asUser} psql -XAtq -c "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart")" ]; then`,
    '  echo "restart PostgreSQL once (wal_level or archive_mode changed), then run this script again" >&2; exit 3',
    'fi',
    '',
    '# 4. The stanza, and a check that a WAL segment reaches the repository.',
    `${asUser} pgbackrest --stanza=${pitr.stanza} stanza-create`,
    `${asUser} pgbackrest --stanza=${pitr.stanza} check`,
    '',
  ].join('\n');
  return { source: source.name, stanza: pitr.stanza, script, pgbackrestConf, postgresqlConf, iamPolicy };
}

function requirePitr(source: Source): NonNullable<Source['pitr']> {
  if (!source.pitr) {
    throw Object.assign(new Error(`source ${source.name} has no method 'pitr' (valid: a source with method: 'pitr' and a pitr block)`), { name: 'InvalidInput' });
  }
  return source.pitr;
}
