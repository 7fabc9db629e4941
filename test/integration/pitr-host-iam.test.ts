/**
 * IAM-true for the database host (lifeboat pitr setup's instance-profile policy): every S3
 * request a real pgBackRest session made (stanza-create, check, archive-push, a full and an
 * incremental backup, a restore — recorded on the wire by the TLS front) is replayed against
 * the synthesized primary bucket's policy and key policy with the rendered host policy, through
 * the same evaluator the local runs use (local/iam). Every one must be allowed; what would
 * remove or unlock a version, or touch another source's prefix or runs/, must be denied.
 */
import { loadConfig, parseConfig, type Source } from '../../lib/config';
import { pitrHostPolicy } from '../../lib/pitr/setup';
import { IamEvaluator, IamModel, requestsForCall } from '../../local/iam';
import { synthApp } from '../../local/synth';
import { startPitrStack, type PitrStack } from '../harness/pitr';
import type { RecordedRequest } from '../harness/s3-tls';
import { recordedCall } from '../harness/s3-requests';

const HOST = 'arn:aws:iam::111111111111:role/orders-db-host';

let stack: PitrStack;
let model: IamModel;
let bucket: string;
let source: Source;

/** The SDK command and input a recorded request is, on `bucket` (the synthesized primary bucket). */
const asCall = (request: RecordedRequest) => recordedCall(request, bucket);

beforeAll(async () => {
  const config = loadConfig('lifeboat.config.ts');
  const app = synthApp(config);
  model = IamModel.fromApp(app);
  const primary = [...model.buckets.values()].find((candidate) => candidate.account === app.primary.account && candidate.objectLockEnabled && candidate.keyArn && candidate.origin.startsWith(`${app.primary.stackName}/`));
  if (!primary?.keyArn) throw new Error('no primary backup bucket with a key in the synthesized templates');
  bucket = primary.name;
  [source] = parseConfig({
    primary: { region: config.primary.region, account: '111111111111' }, offsite: { region: config.offsite.region, account: '111111111111' },
    sources: [{
      name: 'orders', engine: 'postgres', tier: 'tier1', method: 'pitr', pitr: { host: { instanceId: 'i-0a1b2c3d4e5f60718' }, dataDirectory: '/srv/pg' },
      connection: { host: 'orders.example.internal', database: 'shop', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
      network: { vpcId: 'vpc-0a1b2c3d' },
    }],
  }).sources;
  const keyArn = model.key(primary.keyArn).arn;
  model.addPrincipal({
    arn: HOST, name: 'orders-db-host', account: primary.account, origin: 'lifeboat pitr setup orders (instance profile)', assumedBy: ['ec2.amazonaws.com'],
    policies: [{ name: 'lifeboat-pitr-orders', document: pitrHostPolicy(source, { bucket, region: primary.region, keyArn }) as never }],
  });

  // A real session, recorded on the wire.
  stack = await startPitrStack({ recordRequests: true });
  await stack.seed('CREATE TABLE orders AS SELECT g AS id FROM generate_series(1, 5000) g;');
  await stack.runner.backup({ type: 'full' });
  await stack.source.psql('INSERT INTO orders SELECT g FROM generate_series(5001, 6000) g; SELECT pg_switch_wal();', 'shop');
  await stack.runner.backup({ type: 'incr' });
  await stack.restoreAndStart('latest', 'latest');
}, 240_000);

afterAll(async () => {
  await stack?.stop();
});

test('every request of a real pgBackRest session is allowed to the host by the synthesized bucket and key policies', async () => {
  const evaluator = new IamEvaluator(model);
  const calls = stack.front.requests.map(asCall);
  expect(calls.map((call) => call.command)).toEqual(expect.arrayContaining(['ListObjectsV2', 'GetObject', 'PutObject']));
  const denied: string[] = [];
  for (const { command, input } of calls) {
    const { requests } = requestsForCall(model, HOST, 'S3', command, input);
    for (const request of requests) {
      const decision = await evaluator.evaluate(request);
      if (!decision.allowed) denied.push(`${request.action} ${request.resource}: ${decision.explanation}`);
    }
  }
  expect([...new Set(denied)]).toEqual([]);
  expect(calls.length).toBeGreaterThan(100);
}, 120_000);

test.each([
  ['remove a version', 'DeleteObject', { Key: 'pitr/orders/archive/orders/archive.info', VersionId: 'v1' }],
  ['shorten a lock', 'PutObjectRetention', { Key: 'pitr/orders/archive/orders/archive.info', Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 86_400_000) } }],
  ['write another source\'s repository', 'PutObject', { Key: 'pitr/billing/archive/billing/archive.info' }],
  ['write a logical run', 'PutObject', { Key: 'runs/orders/20261203T000000Z/manifest.json' }],
  ['read another source\'s runs', 'GetObject', { Key: 'runs/billing/20261203T000000Z/manifest.json' }],
])('the host may not %s', async (_what, command, input) => {
  const evaluator = new IamEvaluator(model);
  const { requests } = requestsForCall(model, HOST, 'S3', command, { Bucket: bucket, ...input });
  const decisions = await Promise.all(requests.map((request) => evaluator.evaluate(request)));
  expect(decisions.some((decision) => !decision.allowed)).toBe(true);
});
