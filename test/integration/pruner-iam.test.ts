/**
 * The pruners IAM-true: the real prune code run as each stack's pruner role deletes the runs its
 * policy removes, exact versions only, in its own account's bucket; run as any other role the
 * same deletes are denied per object (DeleteObjects reports each denial, as S3 does) and the
 * runs are reported kept, never removed.
 */
import { ListObjectVersionsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import * as path from 'node:path';
import { loadConfig, type Source } from '../../lib/config';
import { formatRunId } from '../../lib/domain/run-id';
import { policyForTier } from '../../lib/retention/policy';
import { pruneSource } from '../../lib/retention/prune';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { asPrincipal } from '../../local/iam';

const config = loadConfig(path.resolve(__dirname, '../../lifeboat.config.ts'));
const orders = config.sources[0] as Source;
const DAY = 86_400_000;
const NOW = new Date();

let aws: LocalAws;

beforeAll(async () => {
  aws = await startLocalAws({ config });
});
afterAll(() => aws?.stop());

/** Unverified runs (a manifest, no verdict) far older than the failed-run grace: the policy removes them. */
async function abandonedRuns(bucket: string, ages: number[]): Promise<string[]> {
  const runIds = ages.map((days) => formatRunId(new Date(Math.floor((NOW.getTime() - days * DAY) / 900_000) * 900_000)));
  for (const runId of runIds) {
    await aws.services.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `runs/orders/${runId}/orders.pgdump`, Body: 'x', IfNoneMatch: '*' }));
  }
  return runIds;
}

async function versionsUnder(bucket: string, runId: string): Promise<number> {
  const listed = await aws.services.s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: `runs/orders/${runId}/` }));
  return (listed.Versions?.length ?? 0) + (listed.DeleteMarkers?.length ?? 0);
}

const prunerRole = (stackName: string) =>
  [...aws.model.principals.values()].find((role) => role.origin.startsWith(`${stackName}/PrunerRole`))?.arn as string;

test.each([
  ['the primary pruner, in the primary bucket', 'primary'],
  ['the offsite pruner, in the offsite bucket (its own account)', 'offsite'],
])('%s deletes what the policy removes, version by version', async (_what, which) => {
  const bucket = which === 'primary' ? aws.services.primaryBucket : aws.services.offsiteBucket;
  const role = prunerRole(which === 'primary' ? aws.app.primary.stackName : aws.app.offsite.stackName);
  const runIds = await abandonedRuns(bucket, [20, 21]);
  const rows = await asPrincipal(role, () => pruneSource({ s3: aws.services.s3, bucket, source: 'orders', policy: policyForTier(orders.tier), now: NOW, dryRun: false }));
  expect(rows.filter((row) => runIds.includes(row.runId)).map((row) => row.action)).toEqual(['remove', 'remove']);
  for (const runId of runIds) expect(await versionsUnder(bucket, runId)).toBe(0);
  expect(aws.evaluator?.denials).toEqual([]);
});

test('any other role (the operator\'s) is denied each delete: the runs are kept, and say why', async () => {
  const bucket = aws.services.primaryBucket;
  const runIds = await abandonedRuns(bucket, [30]);
  const rows = await asPrincipal(aws.roles.operator, () => pruneSource({ s3: aws.services.s3, bucket, source: 'orders', policy: policyForTier(orders.tier), now: NOW, dryRun: false }));
  const row = rows.find((candidate) => candidate.runId === runIds[0]);
  expect(row?.action).toBe('skip-locked');
  expect(row?.reason).toMatch(/AccessDenied/);
  expect(await versionsUnder(bucket, runIds[0])).toBe(1);
  expect(aws.evaluator?.denials.map((decision) => `${decision.request.principal} ${decision.request.action}`)).toEqual([`${aws.roles.operator} s3:DeleteObjectVersion`]);
});

test('the primary pruner may not delete in the offsite bucket: the offsite copy is pruned only from its own account', async () => {
  const bucket = aws.services.offsiteBucket;
  const runIds = await abandonedRuns(bucket, [40]);
  const role = prunerRole(aws.app.primary.stackName);
  await expect(asPrincipal(role, () => pruneSource({ s3: aws.services.s3, bucket, source: 'orders', policy: policyForTier(orders.tier), now: NOW, dryRun: false })))
    .rejects.toMatchObject({ name: 'AccessDenied', message: expect.stringContaining(`User: ${role} is not authorized to perform: s3:ListBucket on resource: arn:aws:s3:::${bucket}`) });
  expect(await versionsUnder(bucket, runIds[0])).toBe(1);
});
