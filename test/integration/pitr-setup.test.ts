/**
 * `lifeboat pitr setup`: the host script parses as POSIX shell, pgBackRest (the one installed
 * here) knows every option of the pgbackrest.conf it writes, the conf holds no secret, and the
 * instance profile's policy writes its own prefix and never deletes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pitrCommand } from '../../cli/pitr';
import { parseConfig, type LifeboatConfig } from '../../lib/config';
import { pitrHostSetup, pitrPrefix } from '../../lib/pitr/setup';
import { freePort } from '../harness/processes';

const TARGET = { bucket: 'lifeboat-primary-backupsbucket2936a3aa', region: 'eu-west-1', keyArn: 'arn:aws:kms:eu-west-1:111111111111:key/0a1b2c3d-0000-4000-8000-00000000abcd' };

const config: LifeboatConfig = parseConfig({
  primary: { region: 'eu-west-1' },
  offsite: { region: 'eu-central-1' },
  sources: [{
    name: 'orders',
    engine: 'postgres',
    tier: 'tier1',
    method: ['logical', 'pitr'],
    pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/var/lib/postgresql/15/main' },
    connection: { host: 'orders.example.internal', database: 'orders', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
    network: { vpcId: 'vpc-0a1b2c3d' },
  }],
});
const setup = pitrHostSetup(config.sources[0], TARGET);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lifeboat-pitr-setup-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `pgbackrest info` with the file's options as they are; only where it connects is overridden,
 * to a closed loopback port with throwaway keys: nothing leaves this machine.
 */
async function infoWith(conf: string) {
  const port = await freePort();
  return spawnSync('pgbackrest', [
    `--config=${conf}`, '--stanza=orders', '--log-level-file=off', `--lock-path=${dir}`, '--io-timeout=1',
    '--repo1-s3-endpoint=localhost', `--repo1-storage-port=${port}`, '--repo1-s3-uri-style=path', '--repo1-s3-key-type=shared', 'info',
  ], { encoding: 'utf8', env: { PATH: process.env.PATH, PGBACKREST_REPO1_S3_KEY: 'k', PGBACKREST_REPO1_S3_KEY_SECRET: 's' }, timeout: 30_000 });
}

test('the host script is POSIX shell that sh parses', () => {
  const file = join(dir, 'setup.sh');
  writeFileSync(file, setup.script);
  expect(spawnSync('sh', ['-n', file], { encoding: 'utf8' })).toMatchObject({ status: 0, stderr: '' });
  expect(setup.script).toContain("apt-get install -y --no-install-recommends 'pgbackrest=2.59.1-*'");
  expect(setup.script).toContain(`-c "ALTER SYSTEM SET archive_command = 'pgbackrest --stanza=orders archive-push %p'"`);
  expect(setup.script).toContain(`-c "ALTER SYSTEM SET archive_timeout = '300'"`);
  expect(setup.script).toContain('sudo -u postgres pgbackrest --stanza=orders stanza-create');
});

test('pgBackRest knows every option of the pgbackrest.conf, which names the repository and no secret', async () => {
  const conf = join(dir, 'pgbackrest.conf');
  writeFileSync(conf, setup.pgbackrestConf);
  expect(setup.pgbackrestConf).toContain(`repo1-s3-bucket=${TARGET.bucket}`);
  expect(setup.pgbackrestConf).toContain(`repo1-path=/${pitrPrefix('orders').slice(0, -1)}`);
  expect(setup.pgbackrestConf).toContain(`repo1-s3-kms-key-id=${TARGET.keyArn}`);
  expect(setup.pgbackrestConf).toMatch(/^repo1-s3-key-type=auto$/m);
  expect(setup.pgbackrestConf).toMatch(/^expire-auto=n$/m);
  expect(setup.pgbackrestConf).not.toMatch(/^repo1-s3-key(-secret)?=/m);
  const run = await infoWith(conf);
  expect(`${run.stdout}${run.stderr}`).not.toMatch(/invalid option|not valid|unable to load/i);
  expect(run.stdout).toMatch(/stanza: orders\n\s+status: error \(other\)\n\s+\[HostConnectError\] unable to connect to 'localhost:\d+/);
});

test('the probe above sees an option pgBackRest does not know', async () => {
  const conf = join(dir, 'bogus.conf');
  writeFileSync(conf, `${setup.pgbackrestConf.replace('expire-auto=n', 'expire-bogus=n')}`);
  const run = await infoWith(conf);
  expect(`${run.stdout}${run.stderr}`).toContain("configuration file contains invalid option 'expire-bogus'");
});

test('the instance profile may list the root and its own prefix, read and write there, use the key through S3, and never remove a version', () => {
  const statements = setup.iamPolicy.Statement as { Sid: string; Effect: string; Action: string | string[]; Resource: string; Condition?: unknown }[];
  const allowed = statements.filter((statement) => statement.Effect === 'Allow');
  expect(allowed.map((statement) => statement.Sid)).toEqual(['ListBucketRoot', 'ListOwnPrefix', 'ReadWriteOwnPrefix', 'BackupKeyThroughS3']);
  expect(allowed.find((statement) => statement.Sid === 'ListBucketRoot')?.Condition).toEqual({ StringEquals: { 's3:prefix': ['', 'pitr/orders'], 's3:delimiter': ['/'] } });
  expect(allowed.find((statement) => statement.Sid === 'ListOwnPrefix')?.Condition).toEqual({ StringLike: { 's3:prefix': ['pitr/orders/*'] } });
  const readWrite = allowed.find((statement) => statement.Sid === 'ReadWriteOwnPrefix');
  expect(readWrite?.Resource).toBe(`arn:aws:s3:::${TARGET.bucket}/pitr/orders/*`);
  // pgBackRest deletes when it resumes or cleans an interrupted backup: in a versioned, locked bucket that is a marker.
  expect(readWrite?.Action).toEqual(['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject', 's3:PutObjectTagging', 's3:DeleteObject']);
  expect(allowed.find((statement) => statement.Sid === 'BackupKeyThroughS3')?.Condition).toEqual({ StringEquals: { 'kms:ViaService': 's3.eu-west-1.amazonaws.com' } });
  const denied = statements.find((statement) => statement.Effect === 'Deny');
  expect(denied).toMatchObject({ Resource: `arn:aws:s3:::${TARGET.bucket}/*` });
  expect(denied?.Action).toEqual(['s3:DeleteObjectVersion', 's3:PutObjectRetention', 's3:PutObjectLegalHold', 's3:BypassGovernanceRetention']);
});

test('in the China partition, the endpoint and the key\'s service are amazonaws.com.cn', () => {
  const china = pitrHostSetup(config.sources[0], { ...TARGET, region: 'cn-north-1', partition: 'aws-cn', keyArn: 'arn:aws-cn:kms:cn-north-1:111111111111:key/0a1b2c3d-0000-4000-8000-00000000abcd' });
  expect(china.pgbackrestConf).toContain('repo1-s3-endpoint=s3.cn-north-1.amazonaws.com.cn');
  expect(JSON.stringify(china.iamPolicy)).toContain('"kms:ViaService":"s3.cn-north-1.amazonaws.com.cn"');
  expect(JSON.stringify(china.iamPolicy)).toContain('arn:aws-cn:s3:::');
});

test('the CLI prints one part with --only, and refuses what is missing, naming it', async () => {
  const file = join(dir, 'lifeboat.config.json');
  writeFileSync(file, JSON.stringify({
    primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' },
    sources: [{ ...config.sources[0], tier: 'tier1', method: 'pitr', pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/srv/pg' },
      connection: { host: 'orders.example.internal', database: 'orders', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
      methods: undefined, drillChecks: undefined, dumpOptions: undefined, network: { vpcId: 'vpc-0a1b2c3d' } }],
  }));
  const printed: string[] = [];
  expect(await pitrCommand(['setup', 'orders', '--config', file, '--bucket', TARGET.bucket, '--key-arn', TARGET.keyArn, '--only', 'iam-policy'], (text) => printed.push(text))).toBe(0);
  expect(JSON.parse(printed.join(''))).toMatchObject({ Version: '2012-10-17' });
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    expect(await pitrCommand(['setup', 'orders', '--config', file], () => undefined)).toBe(2);
    expect(stderr.mock.calls.map(([text]) => String(text)).join('')).toContain('--bucket: required (valid: the primary bucket, the PrimaryBucketName output of the primary stack)');
    stderr.mockClear();
    const alias = 'arn:aws:kms:eu-west-1:111111111111:alias/lifeboat';
    expect(await pitrCommand(['setup', 'orders', '--config', file, '--bucket', TARGET.bucket, '--key-arn', alias, '--region', 'eu-west-1\nLIFEBOAT_CONF'], () => undefined)).toBe(2);
    const said = stderr.mock.calls.map(([text]) => String(text)).join('');
    expect(said).toContain(`--key-arn: "${alias}" is not a KMS key ARN (valid: arn:aws:kms:REGION:ACCOUNT:key/ID; not an alias ARN, which a policy cannot grant)`);
    expect(said).toContain('--region: "eu-west-1\nLIFEBOAT_CONF" is not an AWS region (valid: a region such as eu-west-1)');
  } finally {
    stderr.mockRestore();
  }
  const script: string[] = [];
  expect(await pitrCommand(['setup', 'orders', '--config', file, '--bucket', TARGET.bucket, '--key-arn', TARGET.keyArn, '--only', 'script'], (text) => script.push(text))).toBe(0);
  expect(script.join('')).toContain('pg1-path=/srv/pg');
  expect(execFileSync('sh', ['-n', '-c', script.join('')]).toString()).toBe('');
});
