/**
 * The installed `lifeboat` command stops what it is doing on SIGTERM however it was started.
 * Run directly (node_modules/.bin/lifeboat, `node bin/lifeboat-cli.js`, a container's entry
 * point) the signal reaches it. Through `npx lifeboat …`, npm passes SIGTERM to the `sh -c` it
 * started the command with, and that shell exits without passing it on: the command is
 * orphaned, notices, and aborts the same way.
 */
import { ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import * as path from 'node:path';
import { abortOnTermination } from '../../worker/signals';
import { startS3, type S3Server } from '../harness/s3';

const ROOT = path.resolve(__dirname, '../..');

test('an orphaned command aborts as on SIGTERM, naming why', async () => {
  let parent = 4242;
  const lines: string[] = [];
  const signal = abortOnTermination('the test work', (line) => lines.push(line), { parentPid: () => parent, pollMs: 10 });
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(signal.aborted).toBe(false);
  parent = 1;
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(signal.aborted).toBe(true);
  expect((signal.reason as Error).name).toBe('Aborted');
  expect(lines).toEqual(['the parent process (pid 4242) exited, as the shell of npx does on SIGTERM: stopping the test work']);
});

describe('npx lifeboat dump, sent SIGTERM through npx', () => {
  let s3: S3Server;
  let silent: Server;
  let port: number;
  beforeAll(async () => {
    s3 = await startS3();
    await s3.createBucket('signals', { objectLock: true });
    // A database that accepts connections and never answers: the dump's preflight waits.
    silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    port = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    silent?.close();
    await s3?.stop();
  });

  test('the command (npx\'s grandchild) stops and exits; nothing is committed', async () => {
    const npx = spawn('npx', ['--no-install', 'lifeboat', 'dump', '--source-url', `postgres://backup@127.0.0.1:${port}/shop`, '--source', 'shop',
      '--bucket', 'signals', '--endpoint', s3.endpoint, '--retention', 'none'], {
      cwd: ROOT,
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'lifeboat-test', AWS_SECRET_ACCESS_KEY: 'lifeboat-test-secret', AWS_REGION: 'us-east-1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const closed = new Promise<void>((resolve) => {
      let open = 2;
      const done = () => (--open === 0 ? resolve() : undefined);
      npx.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      npx.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      // The pipes close when the last process holding them (the command itself) has exited.
      npx.stdout.on('close', done);
      npx.stderr.on('close', done);
    });
    const started = Date.now();
    while (!output.includes('backup shop/') && Date.now() - started < 30_000) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(output).toContain('backup shop/');
    npx.kill('SIGTERM');
    const killed = Date.now();
    await closed;
    expect(output).toMatch(/the parent process \(pid \d+\) exited, as the shell of npx does on SIGTERM: stopping the dump/);
    expect(output).toMatch(/failed: (Aborted|SourceUnreachable)/);
    // Stopped within the preflight's connect timeout (10 s), not after the whole run.
    expect(Date.now() - killed).toBeLessThan(15_000);
    const listed = await s3.client().send(new ListObjectVersionsCommand({ Bucket: 'signals' }));
    expect(listed.Versions ?? []).toEqual([]);
  }, 60_000);
});
