/**
 * The operator commands under the minimal policy docs/permissions.md documents, IAM-true: the
 * real `lifeboat status`, `runbook`, `restore` and `prune` code, run as the primary stack's
 * operator role (its managed policy, the role's only grant) and, for a restore when the primary
 * account is lost, as the offsite stack's restore role. What the policy does not allow (a
 * prune that deletes) is denied, naming the call. `restore --at` of a PITR source too: its own
 * reads evaluated as they are made, and every request pgBackRest made with the operator's keys
 * (recorded on the wire) replayed against the synthesized policies.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pruneCommand } from '../../cli/prune';
import { restoreCommand } from '../../cli/restore';
import { runbookCommand } from '../../cli/runbook';
import { statusCommand } from '../../cli/status';
import { loadConfig, type Source } from '../../lib/config';
import { runIdToDate, slotRunId } from '../../lib/domain/run-id';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { asPrincipal, requestsForCall } from '../../local/iam';
import { LocalReplicator } from '../../local/replicator';
import { runLocalDrillExecution, runLocalExecution } from '../../local/runner';
import { startPitrStack, type PitrStack } from '../harness/pitr';
import { startPostgres, type PgServer } from '../harness/postgres';
import type { RecordedRequest } from '../harness/s3-tls';

const CONFIG_FILE = path.resolve(__dirname, '../../lifeboat.config.ts');
const config = loadConfig(CONFIG_FILE);
const orders = config.sources[0] as Source;
// The current slot: status judges the run's age against the RPO.
const RUN_ID = slotRunId(new Date(), orders.tier.scheduleSeconds);
const SLOT = runIdToDate(RUN_ID) as Date;

let aws: LocalAws;
let source: PgServer;
let target: PgServer;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  [aws, source, target] = await Promise.all([startLocalAws({ config }), startPostgres(), startPostgres()]);
  await source.createDatabase('orders');
  await source.psql(readFileSync(path.join(__dirname, '../../local/demo-seed.sql'), 'utf8'), 'orders');
  env = { AWS_ACCESS_KEY_ID: aws.services.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: aws.services.credentials.secretAccessKey, AWS_REGION: config.primary.region };
  Object.assign(process.env, env);
  // A verified run with its offsite copy and a drill report, made by the app itself (IAM-true).
  const replicator = new LocalReplicator({
    source: aws.services.s3, sourceBucket: aws.services.primaryBucket, destination: aws.services.s3, destinationBucket: aws.services.offsiteBucket,
    intervalMs: 50, iam: { evaluator: aws.evaluator!, requests: aws.replicationRequests },
  });
  replicator.start();
  try {
    const run = await runLocalExecution({ aws, source: orders, target: { host: source.host, port: source.port, username: source.user }, scheduledTime: SLOT, offsitePollMs: 50 });
    expect(run.history.status).toBe('SUCCEEDED');
  } finally {
    await replicator.stop();
  }
  expect((await runLocalDrillExecution({ aws, source: orders, from: 'offsite' })).history.status).toBe('SUCCEEDED');
  expect(aws.evaluator?.denials).toEqual([]);
}, 180_000);

afterAll(async () => {
  await Promise.all([aws?.stop(), source?.stop(), target?.stop()]);
});

const endpoint = () => ['--endpoint', aws.services.endpoint];
const asOperator = <T>(fn: () => Promise<T>) => asPrincipal(aws.roles.operator, fn);

test('status, as the operator role: read from the bucket alone, every source judged', async () => {
  const lines: string[] = [];
  const code = await asOperator(() => statusCommand(['--config', CONFIG_FILE, '--bucket', aws.services.primaryBucket, ...endpoint()], env, (line) => lines.push(line)));
  expect(lines.join('\n')).toMatch(new RegExp(`^orders\\s+tier1\\s+${RUN_ID} .* OK$`, 'm'));
  // The example's second source was never backed up here: status says so, and exits 1.
  expect(lines.join('\n')).toMatch(/^catalogue\s+tier2\s+-.*NO BACKUP/m);
  expect(code).toBe(1);
});

test('runbook, as the operator role: written with the latest verified run and drill', async () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), 'lifeboat-runbook-')), 'orders.md');
  const code = await asOperator(() => runbookCommand(['orders', '--config', CONFIG_FILE, '--bucket', aws.services.primaryBucket, ...endpoint(), '--out', out], env, () => undefined));
  expect(code).toBe(0);
  const runbook = readFileSync(out, 'utf8');
  expect(runbook).toContain(`Newest verified run: **${RUN_ID}**`);
  // The roles it names are the synthesized ones: the operator role, and for when the primary
  // account is lost, the offsite account's own restore role.
  expect(aws.roles.operator).toBe('arn:aws:iam::111111111111:role/lifeboat/operator/Lifeboat-operator-eu-west-1');
  expect(aws.roles.offsiteRestore).toBe('arn:aws:iam::222222222222:role/lifeboat/operator/Lifeboat-offsite-restore-eu-central-1');
  expect(runbook).toContain(`aws sts assume-role --role-arn ${aws.roles.operator}`);
  expect(runbook).toContain(`aws sts assume-role --role-arn ${aws.roles.offsiteRestore}`);
  // The drill the setup ran measured both throughputs: the table has figures, marked as estimates.
  expect(runbook).toMatch(/^\| today: .* \| ~[\d.]+s \| ~[\d.]+s \| ~[\d.]+s \| within \|$/m);
  expect(runbook).toMatch(/^\| 10 TB \| .* \| (within|\*\*exceeds\*\*) \|$/m);
});

test.each([
  ['the primary bucket, as the operator role', 'primary', () => aws.roles.operator],
  ['the offsite bucket (another account), as the operator role', 'offsite', () => aws.roles.operator],
  ['the offsite bucket, as the offsite account\'s own restore role (the primary account lost)', 'offsite', () => aws.roles.offsiteRestore],
])('restore from %s', async (_what, from, principal) => {
  const database = `orders_${from}_${principal() === aws.roles.operator ? 'operator' : 'restore'}`;
  const bucket = from === 'primary' ? aws.services.primaryBucket : aws.services.offsiteBucket;
  const lines: string[] = [];
  let err = '';
  const code = await asPrincipal(principal(), () => restoreCommand(
    ['orders', '--target-url', `postgres://${target.user}@${target.host}:${target.port}/${database}`, '--bucket', bucket, '--from', from, ...endpoint()],
    env, { log: (line) => lines.push(line), stderr: { write: (text: string) => (err += text) } },
  ));
  expect(err).not.toMatch(/AccessDenied|restore failed/);
  expect(code).toBe(0);
  expect(lines.join('\n')).toContain(`run orders/${RUN_ID}`);
  expect((await target.psql('SELECT count(*) FROM customers', database)).trim()).toBe((await source.psql('SELECT count(*) FROM customers', 'orders')).trim());
}, 60_000);

test('the offsite restore role reads only its own account\'s copy: the primary bucket is denied to it', async () => {
  let err = '';
  const code = await asPrincipal(aws.roles.offsiteRestore, () => restoreCommand(
    ['orders', '--target-url', `postgres://${target.user}@${target.host}:${target.port}/never`, '--bucket', aws.services.primaryBucket, ...endpoint()],
    env, { log: () => undefined, stderr: { write: (text: string) => (err += text) } },
  ));
  expect(code).toBe(1);
  expect(err).toMatch(new RegExp(`is not authorized to perform: s3:ListBucket on resource: arn:aws:s3:::${aws.services.primaryBucket}`));
});

test('prune, as the operator role: the decisions are read (a dry run); a delete is not the operator\'s to make', async () => {
  const lines: string[] = [];
  const dry = await asOperator(() => pruneCommand(['--config', CONFIG_FILE, '--bucket', aws.services.primaryBucket, ...endpoint()], env, (line) => lines.push(line)));
  expect(lines.join('\n')).toMatch(new RegExp(`${RUN_ID}\\s+verified\\s+keep`));
  expect(dry).toBe(0);
  // Only the pruner deletes: `prune --apply` is its job (lambdas/prune), not an operator's.
  const decision = await aws.evaluator!.evaluate({
    principal: aws.roles.operator, action: 's3:DeleteObjectVersion',
    resource: `${aws.model.bucket(aws.services.primaryBucket).arn}/runs/orders/${RUN_ID}/manifest.json`,
  });
  expect(decision).toMatchObject({ allowed: false, explanation: expect.stringMatching(/^no identity-based policy allows the s3:DeleteObjectVersion action/) });
});

describe('restore --at of a PITR source, as the operator role', () => {
  let pitr: PitrStack;
  let pitrConfig: string;

  beforeAll(async () => {
    // The repository in a bucket of the synthesized primary bucket's name: the operator's calls
    // are evaluated against its policies, while pgBackRest reaches it through the TLS front.
    pitr = await startPitrStack({ bucket: aws.services.primaryBucket, recordRequests: true });
    await pitr.seed('CREATE TABLE orders AS SELECT g AS id FROM generate_series(1, 2000) g;');
    await pitr.runner.backup({ type: 'full' });
    await pitr.source.psql('INSERT INTO orders SELECT g FROM generate_series(2001, 3000) g;', 'shop');
    await pitr.runner.check();
    pitrConfig = path.join(pitr.work, 'lifeboat.json');
    writeFileSync(pitrConfig, JSON.stringify({
      primary: { region: config.primary.region, account: '111111111111' }, offsite: { region: config.offsite.region, account: '222222222222' },
      sources: [{
        name: 'orders', engine: 'postgres', tier: 'tier1', method: 'pitr',
        pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, stanza: pitr.stanza, dataDirectory: pitr.source.dataDir },
        connection: { host: 'orders.example.internal', database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
        network: { vpcId: 'vpc-0a1b2c3d' },
      }],
    }));
  }, 180_000);

  afterAll(async () => {
    await pitr?.stop();
  });

  /** The S3 call a request pgBackRest made is; a restore only reads, so anything else fails the test. */
  const asCall = (request: RecordedRequest): { command: string; input: Record<string, unknown> } => {
    const url = new URL(request.path, 'https://localhost');
    const [, bucket, ...rest] = decodeURIComponent(url.pathname).split('/');
    const key = rest.join('/');
    if (request.method === 'GET' && key === '') {
      return { command: 'ListObjectsV2', input: { Bucket: bucket, Prefix: url.searchParams.get('prefix') ?? '', ...(url.searchParams.has('delimiter') ? { Delimiter: url.searchParams.get('delimiter') } : {}) } };
    }
    if (request.method === 'GET') return { command: 'GetObject', input: { Bucket: bucket, Key: key } };
    if (request.method === 'HEAD') return { command: 'HeadObject', input: { Bucket: bucket, Key: key } };
    throw new Error(`a restore wrote to the repository: ${request.method} ${request.path}`);
  };

  test('the plan, the restore and the replay are allowed: each SDK call as made, each of pgBackRest\'s requests replayed', async () => {
    const recorded = pitr.front.requests.length;
    const deniedBefore = aws.evaluator!.denials.length;
    const lines: string[] = [];
    let err = '';
    const s3 = pitr.s3.client();
    const code = await asOperator(() => restoreCommand([
      'orders', '--at', 'latest', '--target-dir', path.join(pitr.work, 'restored-as-operator'), '--config', pitrConfig, '--bucket', aws.services.primaryBucket,
      '--region', config.primary.region, '--repo-endpoint', `https://${pitr.front.host}:${pitr.front.port}`, '--repo-ca-file', pitr.repository.caFile as string,
    ], env, { s3, log: (line) => lines.push(line), stderr: { write: (text: string) => (err += text) } }));
    s3.destroy();
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(lines.join('\n')).toMatch(/^restored orders to latest/m);
    // The plan's own reads (backup.info, the archive's listing, the drill reports), evaluated as they were made.
    expect(aws.evaluator!.denials.slice(deniedBefore)).toEqual([]);
    // pgBackRest's: the restore (backup.info, manifest, the set's files) and the replay's archive-get.
    const calls = pitr.front.requests.slice(recorded).map(asCall);
    expect(calls.map((call) => call.command)).toEqual(expect.arrayContaining(['ListObjectsV2', 'GetObject']));
    expect(calls.some((call) => String(call.input.Key).startsWith('pitr/orders/archive/orders/'))).toBe(true);
    const denied: string[] = [];
    for (const { command, input } of calls) {
      for (const request of requestsForCall(aws.model, aws.roles.operator, 'S3', command, input).requests) {
        const decision = await aws.evaluator!.evaluate(request);
        if (!decision.allowed) denied.push(`${request.action} ${request.resource}: ${decision.explanation}`);
      }
    }
    expect([...new Set(denied)]).toEqual([]);
  }, 180_000);

  test.each([
    ['write a PITR repository', 'PutObject', { Key: 'pitr/orders/archive/orders/archive.info' }],
    ['remove a set\'s file', 'DeleteObject', { Key: 'pitr/orders/backup/orders/backup.info' }],
  ])('the operator may not %s', async (_what, command, input) => {
    const { requests } = requestsForCall(aws.model, aws.roles.operator, 'S3', command, { Bucket: aws.services.primaryBucket, ...input });
    const decisions = await Promise.all(requests.map((request) => aws.evaluator!.evaluate(request)));
    expect(decisions.some((decision) => !decision.allowed)).toBe(true);
  });
});
