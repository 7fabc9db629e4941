/**
 * `lifeboat pitr setup SOURCE`: what a PostgreSQL host needs for point-in-time recovery with
 * pgBackRest (lib/pitr/setup.ts). Prints; connects to nothing, reads no secret.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../lib/config';
import { pitrHostSetup } from '../lib/pitr/setup';

export const PITR_USAGE = `Usage: lifeboat pitr setup SOURCE --bucket BUCKET --key-arn ARN [--config FILE] [--region REGION]
                           [--only script|pgbackrest-conf|postgresql-conf|iam-policy]

Prints what the host of SOURCE (a PostgreSQL source with method 'pitr') needs for
point-in-time recovery with pgBackRest:
  - a shell script, run as root on the host: pgBackRest installed at the version Lifeboat's
    images run, /etc/pgbackrest/pgbackrest.conf, archiving switched on with ALTER SYSTEM,
    the stanza created and checked;
  - pgbackrest.conf: the repository in the primary bucket under pitr/SOURCE/, SSE-KMS with the
    backup key, the instance profile's credentials; the host never expires anything;
  - the postgresql.conf lines (wal_level, archive_mode, archive_command, archive_timeout at
    most a third of the tier's RPO);
  - the IAM policy of the host's instance profile: its own prefix, read and write; it can never
    remove a version (a delete leaves a marker, every version stays under its lock).

  --bucket BUCKET   the primary bucket (the PrimaryBucketName output of the primary stack)
  --key-arn ARN     its KMS key (aws s3api get-bucket-encryption --bucket BUCKET)
  --region REGION   the primary bucket's region (default: the config's primary.region)
  --only PART       print one part alone, e.g. --only iam-policy > policy.json
`;

const PARTS = ['script', 'pgbackrest-conf', 'postgresql-conf', 'iam-policy'] as const;
type Part = (typeof PARTS)[number];

export async function pitrCommand(argv: readonly string[], out: (text: string) => void = (text) => process.stdout.write(text)): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      config: { type: 'string', default: DEFAULT_CONFIG_FILE }, bucket: { type: 'string' }, 'key-arn': { type: 'string' },
      region: { type: 'string' }, only: { type: 'string' },
    },
  });
  const problems: string[] = [];
  const [subcommand, sourceName, ...extra] = positionals;
  if (subcommand !== 'setup') problems.push(`lifeboat pitr: unknown subcommand ${subcommand === undefined ? '(none)' : `"${subcommand}"`} (valid: setup)`);
  if (sourceName === undefined || extra.length > 0) problems.push(`lifeboat pitr setup: give one source (got ${[sourceName, ...extra].filter(Boolean).join(' ') || 'none'})`);
  if (!values.bucket) problems.push('--bucket: required (valid: the primary bucket, the PrimaryBucketName output of the primary stack)');
  if (values.bucket && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(values.bucket)) problems.push(`--bucket: "${values.bucket}" is not a bucket name`);
  const keyArn = values['key-arn'];
  if (!keyArn) problems.push('--key-arn: required (valid: the primary bucket\'s KMS key ARN, from aws s3api get-bucket-encryption --bucket BUCKET)');
  // A key's ARN: an alias ARN in a policy's Resource grants nothing on the key behind it.
  if (keyArn && !/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/.test(keyArn)) {
    problems.push(`--key-arn: "${keyArn}" is not a KMS key ARN (valid: arn:aws:kms:REGION:ACCOUNT:key/ID; not an alias ARN, which a policy cannot grant)`);
  }
  if (values.region !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(values.region)) {
    problems.push(`--region: "${values.region}" is not an AWS region (valid: a region such as eu-west-1)`);
  }
  const only = values.only as Part | undefined;
  if (only !== undefined && !PARTS.includes(only)) problems.push(`--only: "${only}" is not a part (valid: ${PARTS.join(', ')})`);
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n\n${PITR_USAGE}`);
    return 2;
  }
  const config = loadConfig(values.config as string);
  const source = config.sources.find((candidate) => candidate.name === sourceName);
  if (!source?.pitr) {
    process.stderr.write(source
      ? `source ${sourceName} has no method 'pitr' (valid: method: 'pitr' or ['logical', 'pitr'] with a pitr block, in ${values.config})\n`
      : `unknown source "${sourceName}" (known: ${config.sources.map((candidate) => candidate.name).join(', ')})\n`);
    return 2;
  }
  const region = values.region ?? config.primary.region;
  const setup = pitrHostSetup(source, { bucket: values.bucket as string, region, keyArn: keyArn as string, partition: keyArn?.split(':')[1] });
  const parts: Record<Part, string> = {
    script: setup.script,
    'pgbackrest-conf': setup.pgbackrestConf,
    'postgresql-conf': setup.postgresqlConf,
    'iam-policy': `${JSON.stringify(setup.iamPolicy, null, 2)}\n`,
  };
  if (only) {
    out(parts[only]);
    return 0;
  }
  out([
    `# Point-in-time recovery for ${source.name} (stanza ${setup.stanza}) — the host script:`, '', parts.script,
    '# pgbackrest.conf (the script writes it):', '', parts['pgbackrest-conf'],
    '# postgresql.conf lines (the script sets them with ALTER SYSTEM):', '', parts['postgresql-conf'],
    '# The IAM policy of the host\'s instance profile (lifeboat pitr setup … --only iam-policy > policy.json):', '', parts['iam-policy'],
  ].join('\n'));
  return 0;
}
