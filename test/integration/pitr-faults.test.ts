/**
 * pgBackRest killed mid-backup (issue 13, acceptance 2), on real components (test/harness/pitr.ts):
 * the runner reports BackupFailed naming the signal, the repository lists no new set (nothing
 * that counts was committed), the archive is untouched, and the next backup is a sound set.
 */
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { verifySet } from '../../lib/pitr/verify-set';
import { descendantProcesses } from '../contract/engine-contract';
import { defaultPgBinDir } from '../harness/postgres';
import { delay, run } from '../harness/processes';
import { startPitrStack, type PitrStack } from '../harness/pitr';

let stack: PitrStack;
let s3: S3Client;

beforeAll(async () => {
  stack = await startPitrStack();
  s3 = stack.s3.client();
  await stack.source.createDatabase('shop');
  // Large enough that a full takes seconds: there is a moment to kill it in.
  const init = await run(join(defaultPgBinDir(), 'pgbench'), ['-i', '-q', '-s', '10', 'shop'], { env: { ...process.env, ...stack.source.env } });
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  await stack.runner.stanzaCreate();
  await stack.runner.check();
}, 180_000);

afterAll(async () => {
  s3?.destroy();
  await stack?.stop();
});

test('pgBackRest SIGKILLed mid-backup: BackupFailed naming the signal, no new set, and the next backup is sound', async () => {
  const before = (await stack.runner.info()).sets;
  const backup = stack.runner.backup({ type: 'full' }).then(() => undefined, (error: Error) => error);
  // Every pgbackrest process of the backup (the command and its local workers), once it copies files.
  let killed: number[] = [];
  for (const deadline = Date.now() + 60_000; killed.length === 0;) {
    if (Date.now() > deadline) throw new Error('the backup never got to copying files');
    const processes = descendantProcesses(['pgbackrest']);
    if (processes.some((process) => process.argv.includes('backup:local'))) {
      for (const { pid } of processes) process.kill(pid, 'SIGKILL');
      killed = processes.map((process) => process.pid);
    }
    await delay(20);
  }
  const error = await backup;
  expect(error?.name).toBe('BackupFailed');
  expect(error?.message).toMatch(/pgbackrest backup --type=full failed \((signal SIGKILL|exit \d+)\)/);
  expect((await stack.runner.info()).sets.map((set) => set.label)).toEqual(before.map((set) => set.label));

  const next = await stack.runner.backup({ type: 'full' });
  const verdict = await verifySet({ s3, bucket: stack.bucket, repoPath: stack.repository.path, stanza: stack.stanza, runner: stack.runner, set: next });
  expect(verdict).toMatchObject({ verdict: 'ok', findings: [] });
  expect((await stack.runner.info()).sets.map((set) => set.label)).toEqual([...before.map((set) => set.label), next.label]);
}, 180_000);
