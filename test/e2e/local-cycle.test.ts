/**
 * `npm start` (lifeboat demo) as a test: the example config's first source, one whole local
 * cycle; the output a person reads must say what happened, and the exit code must say it too.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../../lib/config';
import { runLocalCycle } from '../../local/cycle';

const config = loadConfig(path.resolve(__dirname, '../../lifeboat.config.ts'));

test('a whole cycle: backup run, offsite copy, drill from offsite, status, heartbeats', async () => {
  const lines: string[] = [];
  const code = await runLocalCycle({ config, log: (line) => lines.push(line) });
  const output = lines.join('\n');
  expect(output).toMatch(/Execution SUCCEEDED in/);
  expect(output).toContain('local replicator (stands in for S3 Cross-Region Replication)');
  expect(output).toMatch(/measured RTO [\d.]+ s \(target 1h\): OK/);
  expect(output).toMatch(/Heartbeat \(local monitor for each heartbeat URL\): POST \{"event":"start"/);
  expect(output).toMatch(/Heartbeat \(local monitor for each heartbeat URL\): POST \{"event":"success","source":"orders"/);
  expect(output).toContain('SNS: nothing published to the alarm topic');
  expect(output).toMatch(/^orders\s+tier1\s+\d{8}T\d{6}Z .* OK$/m);
  // The example's orders is an Aurora cluster: a local stack has no RDS to read its window from, and says so.
  expect(output).toContain('orders: native point-in-time recovery of the RDS DB cluster orders: not read here (no RDS in a local stack');
  // The runbook of the run just made, with the recovery-time table the drill just measured.
  const runbookFile = /^Runbook \(lifeboat runbook orders\): (.+)$/m.exec(output)?.[1];
  expect(runbookFile).toBeDefined();
  const runbook = readFileSync(runbookFile as string, 'utf8');
  const runId = /^Execution orders-(\d{8}T\d{6}Z)/m.exec(output)?.[1];
  expect(runbook).toContain(`Newest verified run: **${runId}**`);
  for (const step of ['1. Prerequisites', '2. Assess', '3. Locate', '4. Verify the backup', '5. Restore', '6. Verify the recovery', '7. After the recovery', 'Recovery time estimate']) {
    expect(runbook).toContain(`\n## ${step}\n`);
  }
  expect(runbook).toMatch(/^\| today: .* \| ~[\d.]+s \| ~[\d.]+s \| ~[\d.]+s \| within \|$/m);
  // Point-in-time recovery of the example's PITR source: its full and incremental through the
  // PITR run, a PITR drill from offsite with its measured RTO, and the archive in status.
  expect(output).toMatch(/^Execution ledger-full .*\n[\s\S]*?Execution SUCCEEDED in/m);
  expect(output).toMatch(/^Execution ledger-incr .*\n[\s\S]*?Execution SUCCEEDED in/m);
  expect(output).toMatch(/PITR drill of ledger from the offsite bucket[\s\S]*?restore [\d.]+ s \+ WAL replay [\d.]+ s \+ checks [\d.]+ s = measured RTO [\d.]+ s \(target 1h\): OK/);
  expect(output).toMatch(/^ledger\s+tier1\s+\d{8}T\d{6}Z .* OK$/m);
  expect(output).toMatch(/^ {2}archive: \d+ segment\(s\), newest [0-9A-F]{24}, age \d+s \/ RPO 15m$/m);
  expect(output).toMatch(/^ {2}restorable window: \S+ to \S+$/m);
  // The MariaDB source's binary logs: archived by its schedule's task, restored to latest, equal to the source.
  expect(output).toMatch(/ECS RunTask of lifeboat-binlog-catalogue → stored \d+ completed file\(s\), active binlog\.\d{6}/);
  expect(output).toMatch(/^ {4}plan: restore catalogue to latest/m);
  expect(output).toMatch(/restored to latest in [\d.]+ s .*: row counts equal the source's/);
  expect(output).toMatch(/^catalogue \(pitr, binary logs via mariadb-binlog\): newest archiver run \d{8}T\d{6}Z ok/m);
  expect(code).toBe(0);
}, 300_000);
