/**
 * The `<app>-binlog-physical` SSM document (lib/constructs/binlog-physical-document.ts): its
 * parameters refuse what would not be a plain word in the script, its step parses under sh (as
 * SSM runs it) and its script under bash, and cdk-nag has nothing to say about it.
 */
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BINLOG_PHYSICAL_BASH, BINLOG_PHYSICAL_SCRIPT, BinlogPhysicalDocument, binlogPhysicalParameters } from '../../lib/constructs/binlog-physical-document';

const KEY_ARN = 'arn:aws:kms:eu-west-1:111111111111:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';
function documentStack(app = new App()): Stack {
  const stack = new Stack(app, 'Physical', { env: { account: '111111111111', region: 'eu-west-1' } });
  new BinlogPhysicalDocument(stack, 'BinlogPhysical', {
    appName: 'lifeboat', bucket: s3.Bucket.fromBucketName(stack, 'Bucket', 'lifeboat-primary'), bucketKey: kms.Key.fromKeyArn(stack, 'Key', KEY_ARN),
  });
  return stack;
}
const template = Template.fromStack(documentStack());
const parameters = binlogPhysicalParameters('lifeboat-primary', KEY_ARN, 'eu-west-1');

test('one Command document, schema 2.2, one aws:runShellScript step, the deployment\'s bucket, key and region as defaults', () => {
  template.hasResourceProperties('AWS::SSM::Document', {
    Name: 'lifeboat-binlog-physical',
    DocumentType: 'Command',
    Content: {
      schemaVersion: '2.2',
      parameters: Match.objectLike({
        bucket: Match.objectLike({ default: 'lifeboat-primary' }),
        kmsKeyId: Match.objectLike({ default: KEY_ARN }),
        region: Match.objectLike({ default: 'eu-west-1' }),
        type: Match.objectLike({ allowedValues: ['full', 'incr'] }),
      }),
      mainSteps: [Match.objectLike({ action: 'aws:runShellScript', inputs: { timeoutSeconds: '86400', runCommand: BINLOG_PHYSICAL_SCRIPT } })],
    },
  });
});

const allowed = (name: string, value: string) => new RegExp(String(parameters[name]?.allowedPattern)).test(value);

test.each([
  ['runPrefix', 'runs/shop-pitr/20261204T100000Z/', true],
  ['runPrefix', 'runs/shop/20261204T100000Z/', false],
  ['runPrefix', 'runs/shop-pitr/20261204T100000Z/"; rm -rf / #', false],
  ['runPrefix', 'runs/../shop-pitr/20261204T100000Z/', false],
  ['incrementalLsn', '44744', true],
  ['incrementalLsn', '', true],
  ['incrementalLsn', '1 --apply-log-only', false],
  ['osUser', 'mysql', true],
  ['osUser', 'mysql;id', false],
  ['socket', '/run/mysqld/mysqld.sock', true],
  ['socket', '/run/$(id)', false],
  ['expectedSize', '123456', true],
  ['expectedSize', '1e9', false],
  ['endpointUrl', '', true],
  ['endpointUrl', 'http://127.0.0.1:9000', true],
  ['endpointUrl', 'http://x/"$(id)"', false],
  ['kmsKeyId', KEY_ARN, true],
  ['kmsKeyId', 'alias/aws/s3', false],
])('parameter %s = %j is allowed: %s', (name, value, expected) => {
  expect(allowed(name, value)).toBe(expected);
});

test('the step parses under sh (dash: SSM runs it so) and hands a script to bash that parses there', () => {
  const sh = spawnSync('sh', ['-n', '-c', BINLOG_PHYSICAL_SCRIPT.join('\n')], { encoding: 'utf8' });
  expect({ status: sh.status, stderr: sh.stderr }).toEqual({ status: 0, stderr: '' });
  const bash = spawnSync('bash', ['-n', '-c', BINLOG_PHYSICAL_BASH.join('\n')], { encoding: 'utf8' });
  expect({ status: bash.status, stderr: bash.stderr }).toEqual({ status: 0, stderr: '' });
  expect(BINLOG_PHYSICAL_BASH[0]).toBe('set -euo pipefail');
  // The here-document's terminator must not occur inside the script.
  expect(BINLOG_PHYSICAL_BASH.some((line) => line.includes('LIFEBOAT_PHYSICAL_EOF'))).toBe(false);
});

test('every parameter the script substitutes is declared, and every declared one is used', () => {
  const used = new Set([...BINLOG_PHYSICAL_BASH.join('\n').matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((match) => match[1]));
  expect([...used].sort()).toEqual(Object.keys(parameters).sort());
});

test('cdk-nag AwsSolutions: no finding', () => {
  const app = new App();
  documentStack(app);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  expect(() => app.synth()).not.toThrow();
});

test('a host whose AWS CLI cannot send If-None-Match is told so before anything runs (exit 2), naming its version', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lifeboat-old-cli-'));
  try {
    // An AWS CLI from before S3's conditional writes: its put-object skeleton has no IfNoneMatch.
    writeFileSync(join(dir, 'aws'), [
      '#!/bin/sh',
      'case "$*" in',
      '  --version) echo "aws-cli/2.9.19 Python/3.11.2 Linux/6.1 source/x86_64.debian.12"; exit 0;;',
      '  *generate-cli-skeleton*) echo \'{ "Bucket": "", "Key": "" }\'; exit 0;;',
      'esac',
      'echo "unexpected: aws $*" >&2; exit 99',
      '',
    ].join('\n'), { mode: 0o755 });
    writeFileSync(join(dir, 'mariadb-backup'), '#!/bin/sh\necho "mariadb-backup must not run" >&2; exit 98\n', { mode: 0o755 });
    const script = BINLOG_PHYSICAL_BASH.join('\n').replace(/\{\{\s*(\w+)\s*\}\}/g, (_match, name: string) => (name === 'type' ? 'full' : name === 'tool' ? 'mariadb-backup' : ''));
    const run = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { PATH: `${dir}:/usr/bin:/bin`, TMPDIR: dir } });
    expect(run.status).toBe(2);
    expect(run.stdout).toContain("lifeboat: this host's AWS CLI (aws-cli/2.9.19) cannot send If-None-Match");
    expect(`${run.stdout}${run.stderr}`).not.toMatch(/must not run|unexpected/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
