import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pruneCommand } from '../../cli/prune';
import { buildRun, writeRun } from '../fixtures/runs';
import { startS3, type S3Server } from '../harness/s3';
import { listKeys } from '../harness/s3-objects';

let server: S3Server;
const dir = mkdtempSync(path.join(tmpdir(), 'lifeboat-prune-cli-'));

beforeAll(async () => {
  // The CLI takes credentials from the SDK's usual chain: the environment here.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'lifeboat-test', AWS_SECRET_ACCESS_KEY: 'lifeboat-test-secret', AWS_REGION: 'us-east-1' });
  server = await startS3();
  await server.createBucket('primary');
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
    primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' },
    sources: [{
      name: 'orders', engine: 'postgres', tier: 'tier3',
      connection: { host: 'db', database: 'orders', username: 'backup', passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf' },
      network: { vpcId: 'vpc-0a1b2c3d' },
    }],
  }));
  const s3 = server.client();
  // Twelve daily runs ending three weeks ago, the newest failed.
  for (let day = 21; day < 33; day++) {
    const runId = new Date(Date.UTC(2026, 10, 26) - day * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
    await writeRun(s3, 'primary', buildRun('orders', runId), { verification: day === 21 ? 'failed' : 'ok' });
  }
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await server?.stop();
});

test('lifeboat prune is a dry run by default: it prints every decision with its reason and deletes nothing', async () => {
  const before = await listKeys(server.client(), 'primary', 'runs/');
  const lines: string[] = [];
  const code = await pruneCommand(['--config', path.join(dir, 'config.json'), '--bucket', 'primary', '--endpoint', server.endpoint],
    process.env, (line) => lines.push(line));
  const output = lines.join('\n');
  expect(code).toBe(0);
  expect(output).toContain('orders (dry run: nothing deleted)');
  expect(output).toMatch(/newest verified \(1 of 3\)/);
  expect(output.split('\n').filter((line) => /^2026\d{4}T\d{6}Z/.test(line))).toHaveLength(12);
  expect(await listKeys(server.client(), 'primary', 'runs/')).toEqual(before);
});

test('an unknown source is refused', async () => {
  const lines: string[] = [];
  expect(await pruneCommand(['--config', path.join(dir, 'config.json'), '--bucket', 'primary', '--source', 'nope'], {}, (line) => lines.push(line))).toBe(2);
  expect(lines.join('\n')).toContain('unknown source "nope" (known: orders)');
});
