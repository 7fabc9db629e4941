/**
 * `lifeboat demo --fault corrupt-artifact`: the same cycle with a bit flipped before Verify.
 * (Its own file: the Lambda handlers read their configuration once per process, as in Lambda,
 * so one process runs the cycle against one set of local services.)
 */
import * as path from 'node:path';
import { loadConfig } from '../../lib/config';
import { runLocalCycle } from '../../local/cycle';
import { faultHooks } from '../../local/faults';

const config = loadConfig(path.resolve(__dirname, '../../lifeboat.config.ts'));

test('with a corrupted artifact: a failed execution, the SNS message on the local topic, a failure heartbeat, exit 1', async () => {
  const lines: string[] = [];
  const code = await runLocalCycle({ config, log: (line) => lines.push(line), hooks: faultHooks('corrupt-artifact') });
  const output = lines.join('\n');
  expect(output).toMatch(/Execution FAILED in .*: ChecksumMismatch/);
  expect(output).toContain('SNS message on the alarm topic (local SNS) — Lifeboat: orders backup failed at Verify: ChecksumMismatch');
  expect(output).toContain('First thing to check:');
  expect(output).toMatch(/POST \{"event":"failure","source":"orders"/);
  expect(output).toMatch(/NO BACKUP|AT RISK/);
  expect(code).toBe(1);
  // The whole cycle, its PITR part included, as local-cycle.test.ts runs it: about 55 s alone,
  // up to twice that beside CI's other worker (121 s once, at 120 s).
}, 300_000);
