/**
 * IAM-true binlog PITR drill (issue 15): the drill of a real MariaDB source's dump and archive
 * runs as the synthesized task role of its drill task (`lifeboat-drill-shop-binlog`), every S3
 * and KMS request it makes evaluated against that role's, the bucket's and the key's synthesized
 * policies (local/iam): listing and reading the dumps and the archive, reading its earlier reports,
 * writing its report — all allowed. Another source's archive or dumps, the archive root, a write
 * outside its reports and a delete are denied, naming principal, action and resource.
 */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { runBinlogDrillRun } from '../../lib/binlog/drill-run';
import type { Source } from '../../lib/config';
import { binlogStateKey, verificationKey } from '../../lib/domain/layout';
import { serializeVerification } from '../../lib/domain/verification';
import { verifyRun } from '../../lib/verify/verify-run';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { asPrincipal } from '../../local/iam';
import { synthApp } from '../../local/synth';
import { runBinlogArchiveJob } from '../../worker/binlog-archive-main';
import { runBackup } from '../../worker/run-backup';
import { binlogConfig } from '../fixtures/binlog-config';
import { startMariaDb, type MariaDbServer } from '../harness/mariadb';

jest.setTimeout(240_000);

const shop = binlogConfig.sources.find((source) => source.name === 'shop') as Source;
const RUN_ID = '20261204T000000Z';
let aws: LocalAws;
let db: MariaDbServer;
let bucket: string;
let drillRole: string;
const admin = (): S3Client => aws.services.s3;

beforeAll(async () => {
  const app = synthApp(binlogConfig);
  [aws, db] = await Promise.all([startLocalAws({ config: binlogConfig, app }), startMariaDb({ binlog: { maxSize: 16 * 1024 } })]);
  bucket = aws.services.primaryBucket;
  const task = [...aws.model.taskDefinitions.values()].find((candidate) => candidate.family === 'lifeboat-drill-shop-binlog');
  if (!task?.taskRoleArn) throw new Error('no binlog drill task definition of shop (with a task role) in the synthesized templates');
  drillRole = task.taskRoleArn;

  // The source, its verified dump with coordinates and its archive, made outside any role (the
  // dump's, the verifier's and the archiver's own calls have IAM-true tests of their own).
  await db.sql(`
    CREATE DATABASE shop;
    CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, total DECIMAL(12,2)) ENGINE=InnoDB;
    INSERT INTO shop.orders (total) VALUES (1), (2), (3);
  `);
  const target = { host: db.host, port: db.port, databases: ['shop'], username: 'root', tls: { mode: 'disable' as const } };
  await runBackup({
    source: 'shop', engine: 'mariadb', tier: 'tier1', runId: RUN_ID, bucket, target,
    objectLockMode: 'GOVERNANCE', retentionSeconds: 86_400, excludeTables: [], binlogCoordinates: true,
  }, { s3: admin(), log: () => undefined });
  const verification = await verifyRun({ s3: admin(), bucket, source: 'shop', runId: RUN_ID, verifiedBy: 'lambda' });
  await admin().send(new PutObjectCommand({ Bucket: bucket, Key: verificationKey('shop', RUN_ID), Body: serializeVerification(verification) }));
  await new Promise((resolve) => setTimeout(resolve, 2100));
  await db.sql("INSERT INTO shop.orders (total) SELECT total + 10 FROM shop.orders; FLUSH BINARY LOGS; INSERT INTO shop.orders (total) VALUES (99);");
  const archived = await runBinlogArchiveJob({
    source: 'shop', engine: 'mariadb', binlogClient: 'mariadb-binlog', connection: { host: db.host, port: db.port, username: 'root', tls: { mode: 'disable' } },
    bucket, region: binlogConfig.primary.region, objectLock: { mode: 'GOVERNANCE', retentionSeconds: 86_400 }, minServerRetentionSeconds: 60,
  }, { s3: admin(), log: () => undefined });
  if (archived.code !== 0) throw new Error(`archiver run failed: ${archived.error?.name}: ${archived.error?.message}`);
}, 240_000);

afterAll(async () => {
  await Promise.all([aws?.stop(), db?.stop()]);
});

test('the drill task\'s role is its task definition\'s, under /lifeboat/drill/', () => {
  expect(drillRole).toMatch(/^arn:aws:iam::111111111111:role\/lifeboat\/drill\//);
});

test('a drill to latest, then to a random second, as the drill task\'s role: every request allowed, the reports written', async () => {
  const denied = aws.evaluator?.denials.length ?? 0;
  const drill = (random: () => number, drillChecks: Source['drillChecks']) => asPrincipal(drillRole, () => runBinlogDrillRun({
    source: { ...shop, drillChecks }, from: 'primary', s3: admin(), bucket, reportS3: admin(), reportBucket: bucket, random, log: () => undefined,
  }));
  const latest = await drill(() => 0.5, [{ name: 'every order', sql: 'SELECT count(*) = 7 FROM shop.orders' }]);
  expect(latest).toMatchObject({ verdict: 'ok', engine: 'binlog', binlog: { target: 'latest', baseRun: RUN_ID } });
  // One second later: a new drill id (a drill id is a second).
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const timed = await drill(() => 0, []);
  expect(timed).toMatchObject({ verdict: 'ok', binlog: { target: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/), baseRun: RUN_ID } });
  expect(aws.evaluator?.denials.slice(denied)).toEqual([]);
});

test.each([
  ['read another source\'s archive', 'GetObject', { Key: binlogStateKey('ledger', RUN_ID) }, 's3:GetObject', `binlog/ledger/state/${RUN_ID}.json`],
  ['read another source\'s dump', 'GetObject', { Key: `runs/ledger/${RUN_ID}/manifest.json` }, 's3:GetObject', `runs/ledger/${RUN_ID}/manifest.json`],
  ['list the archive root', 'ListObjectsV2', { Prefix: 'binlog/' }, 's3:ListBucket', ''],
  ['write into its own archive', 'PutObject', { Key: binlogStateKey('shop', '20261204T010000Z'), Body: '{}' }, 's3:PutObject', 'binlog/shop/state/20261204T010000Z.json'],
  ['delete an archived file', 'DeleteObject', { Key: 'binlog/shop/files/binlog.000001' }, 's3:DeleteObject', 'binlog/shop/files/binlog.000001'],
])('denied: %s, naming principal, action and resource', async (_what, command, input, action, key) => {
  const commands = { GetObject: GetObjectCommand, ListObjectsV2: ListObjectsV2Command, PutObject: PutObjectCommand, DeleteObject: DeleteObjectCommand } as const;
  const Command = commands[command as keyof typeof commands] as unknown as new (input: Record<string, unknown>) => Parameters<S3Client['send']>[0];
  await expect(asPrincipal(drillRole, () => admin().send(new Command({ Bucket: bucket, ...input })))).rejects.toMatchObject({
    message: expect.stringContaining(`User: ${drillRole} is not authorized to perform: ${action} on resource: arn:aws:s3:::${bucket}${key ? `/${key}` : ''}`),
  });
});
