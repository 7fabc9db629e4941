/**
 * A PITR source's status from the bucket alone (lib/pitr/backup-info.ts, pitr-status.ts), on real
 * components (test/harness/pitr.ts): backup.info read without pgBackRest gives the sets pgBackRest
 * itself lists; `lifeboat status` shows the newest full, differential and incremental, the
 * archive's age against the RPO and the restorable window, and the window broken at a gap.
 */
import { DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { renderStatus, sourceStatuses } from '../../cli/status';
import { parseConfig, type Source } from '../../lib/config';
import { listArchivedSegments } from '../../lib/pitr/archive-state';
import { readBackupSets } from '../../lib/pitr/backup-info';
import { startPitrStack, type PitrStack } from '../harness/pitr';

let stack: PitrStack;
let s3: S3Client;
let source: Source;

beforeAll(async () => {
  stack = await startPitrStack();
  s3 = stack.s3.client();
  [source] = parseConfig({
    primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' },
    sources: [{
      name: 'orders', engine: 'postgres', tier: 'tier1', method: 'pitr',
      pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, stanza: stack.stanza, dataDirectory: stack.source.dataDir },
      connection: { host: 'orders.example.internal', database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
      network: { vpcId: 'vpc-0a1b2c3d' },
    }],
  }).sources;
  await stack.source.createDatabase('shop');
  await stack.source.psql('CREATE TABLE orders AS SELECT g AS id FROM generate_series(1, 1000) g;', 'shop');
  await stack.runner.stanzaCreate();
}, 180_000);

afterAll(async () => {
  s3?.destroy();
  await stack?.stop();
});

const location = () => ({ s3, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza });

test('before any set: NO BACKUP, saying why', async () => {
  const [status] = await sourceStatuses(s3, stack.bucket, [source], new Date());
  expect(status.verdict).toBe('NO BACKUP');
  expect(status.reasons).toContain('pitr: no backup set');
});

test('backup.info read from the bucket gives the sets pgBackRest lists; status shows them, the archive age and the window', async () => {
  await stack.runner.check();
  await stack.runner.backup({ type: 'full' });
  await stack.source.psql('INSERT INTO orders SELECT g FROM generate_series(1001, 2000) g;', 'shop');
  await stack.runner.backup({ type: 'diff' });
  await stack.source.psql('INSERT INTO orders SELECT g FROM generate_series(2001, 3000) g;', 'shop');
  await stack.runner.backup({ type: 'incr' });

  const fromBucket = await readBackupSets(location());
  const { sets } = await stack.runner.info();
  expect(fromBucket.map(({ label, type, prior, startTime, stopTime, walStart, walStop, size, repoSize, writtenBy }) =>
    ({ label, type, prior, startTime, stopTime, walStart, walStop, size, repoSize, writtenBy })))
    .toEqual(sets.map(({ label, type, prior, startTime, stopTime, walStart, walStop, size, repoSize, writtenBy }) =>
      ({ label, type, prior, startTime, stopTime, walStart, walStop, size, repoSize, writtenBy })));

  const [status] = await sourceStatuses(s3, stack.bucket, [source], new Date());
  expect(status.pitr?.problems).toEqual([]);
  expect(status.pitr?.window.earliest).toEqual(sets[0].stopTime);
  const text = renderStatus([status]);
  expect(text).toContain(`orders (pitr, stanza ${stack.stanza}): last full ${sets[0].label} (${sets[0].stopTime.toISOString()}), ` +
    `differential ${sets[1].label} (${sets[1].stopTime.toISOString()}), incremental ${sets[2].label} (${sets[2].stopTime.toISOString()})`);
  expect(text).toMatch(/\n {2}archive: \d+ segment\(s\), newest [0-9A-F]{24}, age \d+s \/ RPO 15m\n/);
  expect(text).toMatch(new RegExp(`\\n {2}restorable window: ${sets[0].stopTime.toISOString().replace(/\./g, '\\.')} to \\S+\\n`));
  // No logical dumps, no PITR drill yet: the one reason left is the drill's.
  expect(status.reasons).toEqual(['never drilled']);
}, 120_000);

test('a segment removed from the middle of the archive: status shows the window broken at it', async () => {
  await stack.source.psql('SELECT pg_switch_wal();');
  await stack.runner.check();
  const segments = await listArchivedSegments(location());
  const middle = segments[Math.floor(segments.length / 2)];
  const key = (await s3.send(new ListObjectsV2Command({ Bucket: stack.bucket, Prefix: `pitr/${stack.stanza}/archive/` })))
    .Contents!.map((object) => object.Key as string).find((candidate) => candidate.includes(`/${middle.name}-`));
  await s3.send(new DeleteObjectCommand({ Bucket: stack.bucket, Key: key }));

  const [status] = await sourceStatuses(s3, stack.bucket, [source], new Date());
  expect(status.verdict).toBe('AT RISK');
  expect(status.reasons).toContain(`pitr: archive gap at ${middle.name} (1 segment(s))`);
  expect(renderStatus([status])).toContain(`, broken at ${middle.name}`);
}, 60_000);
