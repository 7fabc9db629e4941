/**
 * End to end: the synthesized PITR backup run executed by the local runner — the host command
 * through the SSM stand-in (the document's own script, running pgBackRest 2.45 against a real
 * PostgreSQL 15 archiving into the local primary bucket), the PITR verifier, then the logical
 * run's Commit, AwaitOffsite and Record — IAM-true for every SDK call, across two accounts.
 * Faults: a host SSM cannot reach, a backup that fails on the host, a set whose WAL is gone.
 */
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { listRuns } from '../../lib/catalog/catalog';
import { parseConfig, type LifeboatConfig, type Source } from '../../lib/config';
import { pitrCatalogName } from '../../lib/domain/layout';
import type { LocalAws } from '../../local/aws';
import { startLocalPitr, type LocalPitr } from '../harness/local-pitr';
import type { LocalPitrSource } from '../../local/pitr-host';
import { runLocalPitrExecution } from '../../local/runner';
import { LocalSsm } from '../../local/ssm';
import { documentsOf } from '../../local/pitr-host';
import { listKeys } from '../harness/s3-objects';

const config: LifeboatConfig = parseConfig({
  primary: { region: 'eu-west-1', account: '111111111111' },
  offsite: { region: 'eu-central-1', account: '222222222222' },
  sources: [{
    name: 'orders', engine: 'postgres', tier: 'tier1', method: ['logical', 'pitr'],
    pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/var/lib/postgresql/15/main' },
    connection: { host: 'orders.db.internal', database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
    network: { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] },
  }],
});
const source = config.sources[0] as Source;
const catalog = pitrCatalogName(source.name);

let local: LocalPitr;
let aws: LocalAws;
let pitr: LocalPitrSource;
let slot = Date.UTC(2026, 11, 3, 0, 0, 0);
const nextSlot = () => new Date((slot += 300_000));

beforeAll(async () => {
  local = await startLocalPitr(config, source);
  ({ aws, pitr } = local);
}, 180_000);

afterAll(() => local?.stop());

afterEach(() => {
  // IAM-true: nothing any role did in a test was denied.
  expect(local.denials()).toEqual([]);
});

const run = (type: 'full' | 'diff' | 'incr', ssm = pitr.ssm) =>
  runLocalPitrExecution({ aws, source, type, scheduledTime: nextSlot(), ssm, verifierEnv: pitr.verifierEnv });

test('a full, then an incremental: each a verified, offsite-confirmed run of its set, the incremental depending on the full', async () => {
  const full = await run('full');
  expect(full.history.error).toBeUndefined();
  expect(full.history.status).toBe('SUCCEEDED');
  const states = full.history.rows.map((row) => row.state);
  for (const state of ['BackupOnHost', 'PollHost', 'VerifySet', 'Commit', 'AwaitOffsite', 'Record']) expect(states).toContain(state);
  await pitr.host.source.psql('CREATE TABLE probe (id int PRIMARY KEY, note text); INSERT INTO probe SELECT g, md5(g::text) FROM generate_series(1, 5000) g', source.connection.databases[0]);
  const incr = await run('incr');
  expect(incr.history.status).toBe('SUCCEEDED');

  const runs = await listRuns(aws.services.s3, aws.services.primaryBucket, catalog);
  expect(runs.map((record) => [record.status, record.manifest?.pitr?.type, record.offsite !== undefined])).toEqual([['verified', 'full', true], ['verified', 'incr', true]]);
  const [fullRun, incrRun] = runs;
  expect(incrRun.manifest?.pitr?.prior).toBe(fullRun.manifest?.pitr?.label);
  expect(incrRun.manifest?.dependsOn).toEqual([fullRun.runId]);
  expect(fullRun.manifest?.artifacts[0].key).toMatch(new RegExp(`^pitr/orders/backup/orders/${fullRun.manifest?.pitr?.label}/backup.manifest$`));
  // The logical catalog of the source holds none of them.
  expect(await listRuns(aws.services.s3, aws.services.primaryBucket, source.name)).toEqual([]);
}, 300_000);

test('a host SSM cannot reach: HostUnreachable, explained on the alarm topic, nothing committed', async () => {
  const before = (await listRuns(aws.services.s3, aws.services.primaryBucket, catalog)).length;
  const nowhere = new LocalSsm(documentsOf(aws.app.primary));
  const result = await run('full', nowhere);
  expect(result.history.status).toBe('FAILED');
  expect(result.history.error?.name).toBe('HostUnreachable');
  expect(result.notifications.map((notification) => notification.message).join('\n')).toContain('HostUnreachable');
  expect((await listRuns(aws.services.s3, aws.services.primaryBucket, catalog)).length).toBe(before);
}, 120_000);

test('a backup that fails on the host: BackupFailed with pgBackRest\'s own words, nothing committed', async () => {
  const before = (await listRuns(aws.services.s3, aws.services.primaryBucket, catalog)).length;
  const broken = new LocalSsm(documentsOf(aws.app.primary));
  broken.register({ instanceId: pitr.instanceId, tags: {}, env: {}, parameterOverrides: { configPath: '/nonexistent/pgbackrest.conf', osUser: 'root' } });
  const result = await run('diff', broken);
  expect(result.history.status).toBe('FAILED');
  expect(result.history.error?.name).toBe('BackupFailed');
  expect(result.history.error?.cause).toMatch(/pgbackrest backup --type=diff of orders failed on i-0a1b2c3d4e5f60718 .*exit/);
  expect((await listRuns(aws.services.s3, aws.services.primaryBucket, catalog)).length).toBe(before);
}, 120_000);

test('a WAL segment the new set needs is gone from the archive: the run fails WalGap at VerifySet, its verdict recorded failed', async () => {
  const s3 = aws.services.s3;
  let removed: string | undefined;
  // On the host, right after the backup: the newest archived segment (the set's last) vanishes from the archive.
  const lossy = new LocalSsm(documentsOf(aws.app.primary));
  lossy.register({
    ...pitr.instance,
    afterCommand: async () => {
      const segments = (await listKeys(s3, aws.services.primaryBucket, 'pitr/orders/archive/')).filter((key) => /\/[0-9A-F]{24}-/.test(key)).sort();
      removed = segments.at(-1);
      await s3.send(new DeleteObjectCommand({ Bucket: aws.services.primaryBucket, Key: removed }));
    },
  });
  const result = await run('full', lossy);
  expect(removed).toBeDefined();
  expect(result.history.status).toBe('FAILED');
  expect(result.history.error?.name).toBe('WalGap');
  expect(result.history.error?.cause).toContain(/\/([0-9A-F]{24})-/.exec(removed as string)?.[1]);
  const runs = await listRuns(s3, aws.services.primaryBucket, catalog);
  expect(runs.at(-1)?.status).toBe('failed');
  const verification = await s3.send(new GetObjectCommand({ Bucket: aws.services.primaryBucket, Key: `runs/${catalog}/${runs.at(-1)?.runId}/verification.json` }));
  expect(await verification.Body?.transformToString()).toContain('WalGap');
  expect(result.notifications.map((notification) => notification.message).join('\n')).toContain('WalGap');
}, 180_000);

test('after a full, and only after a full, Expire applies the tier\'s retention to the repository as the expiry task\'s role', async () => {
  const before = (await pitr.host.runner.info()).sets.map((set) => set.label);
  const incr = await run('incr');
  expect(incr.history.status).toBe('SUCCEEDED');
  const incrStates = incr.history.rows.map((row) => row.state);
  expect(incrStates).toEqual(expect.arrayContaining(['Record', 'Full set?', 'Backed up']));
  expect(incrStates).not.toContain('Expire');

  const full = await run('full');
  expect(full.history.error).toBeUndefined();
  expect(full.history.status).toBe('SUCCEEDED');
  const states = full.history.rows.map((row) => row.state);
  expect(states.slice(states.indexOf('Record'))).toEqual(['Record', 'Full set?', 'Expire', 'Backed up']);
  // Every set is within tier1's retention (or a failed one within its grace): all kept, pgbackrest expire not run.
  const sets = (await pitr.host.runner.info()).sets.map((set) => set.label);
  expect(sets.slice(0, before.length)).toEqual(before);
  expect(full.output?.expire).toEqual({ source: 'orders', dryRun: false, applied: false, kept: sets.length, removed: [], archiveFulls: expect.any(Number) });
}, 300_000);
