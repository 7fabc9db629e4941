/**
 * The physical backups' pure code (lib/binlog/physical.ts): both tools' argv (MySQL's
 * xtrabackup is argv- and parser-tested only: there is no Oracle server here), the parsers of
 * what they write (samples as MariaDB 10.11's mariadb-backup and Percona XtraBackup 8.0 write
 * them), the chain, the manifest block, and that retention keeps a kept incremental's chain.
 */
import {
  copyBackArgv, extractArgv, nextPhysicalBackup, parseBackupInfo, parseBinlogInfo, parseCheckpoints, physicalBackupArgv, physicalChain,
  physicalManifestBlock, physicalObjectKey, prepareSteps, type PhysicalRunRef,
} from '../../lib/binlog/physical';
import { physicalBaseFor } from '../../lib/binlog/physical-restore';
import { MANIFEST_SCHEMA_VERSION, parseManifest, serializeManifest, type Manifest, type PhysicalBackupManifest } from '../../lib/domain/manifest';
import { decide, type RetentionPolicy } from '../../lib/retention/policy';

const MARIADB_CHECKPOINTS = 'backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 44744\nlast_lsn = 48168\nrecover_binlog_info = 0\n';
const MARIADB_INCR_CHECKPOINTS = 'backup_type = incremental\nfrom_lsn = 44744\nto_lsn = 51210\nlast_lsn = 52001\nrecover_binlog_info = 0\n';
const XTRABACKUP_CHECKPOINTS = 'backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 19543521\nlast_lsn = 19543531\nflushed_lsn = 19543521\nredo_memory = 0\nredo_frames = 0\n';
const MARIADB_INFO = `uuid = 98212b3d-f012-11f1-8d6b-02fc00000001
name = 
tool_name = mariadb-backup
tool_command = --backup --stream=xbstream --target-dir=/tmp/t --extra-lsndir=/tmp/l
tool_version = 10.11.19-MariaDB
ibbackup_version = 10.11.19-MariaDB
server_version = 10.11.19-MariaDB-0+deb12u1-log
start_time = 2026-12-04 18:43:26
end_time = 2026-12-04 18:43:27
lock_time = 1796409806
binlog_pos = filename 'binlog.000002', position '847', GTID of the last change '0-1-3'
innodb_from_lsn = 0
innodb_to_lsn = 44744
partial = N
incremental = N
format = mbstream
compressed = N
`;
const XTRABACKUP_INFO = `uuid = 2f6a8f43-b2c1-11ee-9c34-0242ac110002
name =
tool_name = xtrabackup
tool_command = --backup --stream=xbstream --target-dir=/tmp/t --extra-lsndir=/tmp/l
tool_version = 8.0.35-30
ibbackup_version = 8.0.35-30
server_version = 8.0.36
start_time = 2026-12-04 10:00:01
end_time = 2026-12-04 10:00:09
lock_time = 1
binlog_pos = filename 'binlog.000003', position '157', GTID of the last change '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-23'
innodb_from_lsn = 0
innodb_to_lsn = 19543521
partial = N
incremental = N
format = xbstream
compressed = N
encrypted = N
`;

describe('argv', () => {
  test.each(['mariadb-backup', 'xtrabackup'])('%s: a full streams with its checkpoints beside it', (tool) => {
    expect(physicalBackupArgv(tool, { type: 'full', targetDir: '/w/tool', extraLsnDir: '/w/lsn', socket: '/run/mysqld/mysqld.sock', dataDir: '/var/lib/mysql' })).toEqual({
      command: tool,
      argv: ['--backup', '--stream=xbstream', '--target-dir=/w/tool', '--extra-lsndir=/w/lsn', '--datadir=/var/lib/mysql', '--socket=/run/mysqld/mysqld.sock'],
    });
  });

  test.each(['mariadb-backup', 'xtrabackup'])('%s: an incremental starts at the prior\'s to_lsn', (tool) => {
    expect(physicalBackupArgv(tool, { type: 'incr', targetDir: '/w/t', extraLsnDir: '/w/l', incrementalLsn: '44744' }).argv)
      .toEqual(['--backup', '--stream=xbstream', '--target-dir=/w/t', '--extra-lsndir=/w/l', '--incremental-lsn=44744']);
  });

  test.each([
    ['an incremental without its base', { type: 'incr' as const }, /needs incrementalLsn/],
    ['a full with a base', { type: 'full' as const, incrementalLsn: '5' }, /takes no incrementalLsn \(given: 5\)/],
    ['an LSN that is not a number', { type: 'incr' as const, incrementalLsn: '5; rm -rf /' }, /incrementalLsn: "5; rm -rf \/" is not a log sequence number/],
  ])('refused: %s', (_what, args, message) => {
    expect(() => physicalBackupArgv('mariadb-backup', { targetDir: '/t', extraLsnDir: '/l', ...args })).toThrow(message);
  });

  test('an unknown tool is refused, naming the valid ones', () => {
    expect(() => physicalBackupArgv('mysqlbackup', { type: 'full', targetDir: '/t', extraLsnDir: '/l' })).toThrow('physical backup tool "mysqlbackup" is not known (valid: mariadb-backup, xtrabackup)');
    expect(() => extractArgv('tar', '/d')).toThrow('(valid: mbstream, xbstream)');
  });

  test('the stream tools unpack stdin into a directory', () => {
    expect(extractArgv('mbstream', '/w/full')).toEqual({ command: 'mbstream', argv: ['-x', '-C', '/w/full'] });
    expect(extractArgv('xbstream', '/w/full')).toEqual({ command: 'xbstream', argv: ['-x', '-C', '/w/full'] });
  });

  test('mariadb-backup prepares each step fully; xtrabackup skips the rollback on every step but the last', () => {
    expect(prepareSteps('mariadb-backup', '/w/full', ['/w/incr1', '/w/incr2']).map((step) => [step.step, ...step.argv])).toEqual([
      ['prepare full', '--prepare', '--target-dir=/w/full'],
      ['prepare incremental 1', '--prepare', '--target-dir=/w/full', '--incremental-dir=/w/incr1'],
      ['prepare incremental 2', '--prepare', '--target-dir=/w/full', '--incremental-dir=/w/incr2'],
    ]);
    expect(prepareSteps('xtrabackup', '/w/full', ['/w/incr1', '/w/incr2']).map((step) => [step.step, ...step.argv])).toEqual([
      ['prepare full', '--prepare', '--target-dir=/w/full', '--apply-log-only'],
      ['prepare incremental 1', '--prepare', '--target-dir=/w/full', '--apply-log-only', '--incremental-dir=/w/incr1'],
      ['prepare incremental 2', '--prepare', '--target-dir=/w/full', '--incremental-dir=/w/incr2'],
    ]);
    expect(prepareSteps('xtrabackup', '/w/full', []).map((step) => step.argv)).toEqual([['--prepare', '--target-dir=/w/full']]);
  });

  test('copy-back and move-back into the datadir', () => {
    expect(copyBackArgv('mariadb-backup', '/w/full', '/srv/data')).toEqual({ command: 'mariadb-backup', argv: ['--copy-back', '--target-dir=/w/full', '--datadir=/srv/data'] });
    expect(copyBackArgv('xtrabackup', '/w/full', '/srv/data', true).argv[0]).toBe('--move-back');
  });

  test('the objects live in the source\'s PITR catalog', () => {
    expect(physicalObjectKey('shop', '20261204T100000Z', 'backup.xbstream')).toBe('runs/shop-pitr/20261204T100000Z/backup.xbstream');
  });
});

describe('parsers', () => {
  test.each([
    ['mariadb-backup full', MARIADB_CHECKPOINTS, { backupType: 'full-backuped', fromLsn: '0', toLsn: '44744', lastLsn: '48168' }],
    ['mariadb-backup incremental', MARIADB_INCR_CHECKPOINTS, { backupType: 'incremental', fromLsn: '44744', toLsn: '51210', lastLsn: '52001' }],
    ['xtrabackup 8.0 full', XTRABACKUP_CHECKPOINTS, { backupType: 'full-backuped', fromLsn: '0', toLsn: '19543521', lastLsn: '19543531' }],
  ])('xtrabackup_checkpoints of %s', (_what, text, expected) => {
    expect(parseCheckpoints(text)).toEqual(expected);
  });

  test('an LSN beyond 2^53 stays exact (kept as digits)', () => {
    expect(parseCheckpoints(MARIADB_CHECKPOINTS.replace('44744', '18446744073709551615')).toLsn).toBe('18446744073709551615');
  });

  test('a damaged checkpoints file names every field that is wrong', () => {
    expect(() => parseCheckpoints('backup_type = partial\nfrom_lsn = x\nto_lsn = 5\n', 'runs/shop-pitr/20261204T100000Z/xtrabackup_checkpoints'))
      .toThrow('runs/shop-pitr/20261204T100000Z/xtrabackup_checkpoints is not a backup\'s checkpoints file: backup_type: "partial" (valid: full-backuped, incremental, log-applied, full-prepared); from_lsn: "x" (valid: decimal digits); last_lsn: missing (valid: decimal digits)');
  });

  test.each([
    ['MariaDB, with its GTID position', 'binlog.000002\t847\t0-1-3\n', { file: 'binlog.000002', position: 847, gtid: '0-1-3' }],
    ['MariaDB, several domains', 'mariadb-bin.000010\t4\t0-1-100,1-2-7\n', { file: 'mariadb-bin.000010', position: 4, gtid: '0-1-100,1-2-7' }],
    ['MySQL without GTID mode', 'binlog.000003\t157\n', { file: 'binlog.000003', position: 157 }],
    ['MySQL, a GTID set over several lines', 'binlog.000003\t157\t3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n7f2a0b1c-71ca-11e1-9e33-c80aa9429562:1-3\n',
      { file: 'binlog.000003', position: 157, gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,7f2a0b1c-71ca-11e1-9e33-c80aa9429562:1-3' }],
  ])('xtrabackup_binlog_info: %s', (_what, text, expected) => {
    expect(parseBinlogInfo(text)).toEqual(expected);
  });

  test('no coordinates (log_bin off) is refused, saying so', () => {
    expect(() => parseBinlogInfo('')).toThrow(/holds no binary log coordinates .*is log_bin on\?/);
    expect(() => parseBinlogInfo('binlog\t12\n')).toThrow('binary log file "binlog" is not a file name (valid: such as binlog.000042)');
  });

  test('xtrabackup_info of mariadb-backup', () => {
    expect(parseBackupInfo(MARIADB_INFO)).toEqual({
      toolName: 'mariadb-backup', toolVersion: '10.11.19-MariaDB', serverVersion: '10.11.19-MariaDB-0+deb12u1-log',
      startTime: new Date('2026-12-04T18:43:26Z'), endTime: new Date('2026-12-04T18:43:27Z'), incremental: false,
      binlog: { file: 'binlog.000002', position: 847, gtid: '0-1-3' },
    });
  });

  test('xtrabackup_info of xtrabackup 8.0', () => {
    expect(parseBackupInfo(XTRABACKUP_INFO)).toMatchObject({
      toolName: 'xtrabackup', toolVersion: '8.0.35-30', serverVersion: '8.0.36',
      binlog: { file: 'binlog.000003', position: 157, gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-23' },
    });
  });

  test('an info without binlog_pos parses without coordinates; the manifest block then refuses it', () => {
    const info = parseBackupInfo(MARIADB_INFO.replace(/^binlog_pos.*\n/m, ''));
    expect(info.binlog).toBeUndefined();
    expect(() => physicalManifestBlock({ type: 'full', checkpoints: parseCheckpoints(MARIADB_CHECKPOINTS), info, key: 'k' })).toThrow(/log_bin must be on/);
  });
});

const physical = (type: 'full' | 'incr', fromLsn: string, toLsn: string, prior?: string, endTime = '2026-12-04T10:00:09.000Z'): PhysicalBackupManifest => ({
  tool: 'mariadb-backup', version: '10.11.19-MariaDB', type, fromLsn, toLsn, binlog: { file: 'binlog.000002', position: 847 }, ...(prior ? { prior } : {}), endTime,
});

function manifest(runId: string, block: PhysicalBackupManifest, dependsOn?: string[]): Manifest {
  return {
    schemaVersion: MANIFEST_SCHEMA_VERSION, lifeboatVersion: '0.0.0', source: 'shop-pitr', engine: 'mariadb', tier: 'tier2', runId,
    startedAt: '2026-12-04T10:00:00.000Z', finishedAt: '2026-12-04T10:00:09.000Z',
    server: { version: '10.11.19-MariaDB', major: 10 }, client: { tool: 'mariadb-backup', version: '10.11.19-MariaDB', major: 10 },
    databaseSizeBytes: 1, tables: [], rowCountConsistency: 'same-snapshot', extensions: [],
    artifacts: [{ database: '*', key: `runs/shop-pitr/${runId}/backup.xbstream`, bytes: 1, sha256: 'a'.repeat(64), format: 'xbstream', compression: 'none', parts: 1 }],
    ...(dependsOn ? { dependsOn } : {}), physical: block,
  };
}

describe('the chain', () => {
  const runs: PhysicalRunRef[] = [
    { runId: '20261204T100000Z', verdict: 'ok', manifest: manifest('20261204T100000Z', physical('full', '0', '100', undefined, '2026-12-04T10:00:09.000Z')) },
    { runId: '20261204T110000Z', verdict: 'ok', manifest: manifest('20261204T110000Z', physical('incr', '100', '200', '20261204T100000Z', '2026-12-04T11:00:09.000Z'), ['20261204T100000Z']) },
    { runId: '20261204T120000Z', verdict: 'ok', manifest: manifest('20261204T120000Z', physical('incr', '200', '300', '20261204T110000Z', '2026-12-04T12:00:09.000Z'), ['20261204T100000Z', '20261204T110000Z']) },
  ];

  test('an incremental\'s chain runs back to its full, full first', () => {
    expect(physicalChain(runs, '20261204T120000Z').map((run) => run.runId)).toEqual(['20261204T100000Z', '20261204T110000Z', '20261204T120000Z']);
    expect(physicalChain(runs, '20261204T100000Z').map((run) => run.runId)).toEqual(['20261204T100000Z']);
  });

  test('a chain whose LSNs do not meet is refused, naming both runs', () => {
    const broken = runs.map((run) => (run.runId === '20261204T110000Z' ? { ...run, manifest: manifest(run.runId, physical('incr', '100', '250', '20261204T100000Z')) } : run));
    expect(() => physicalChain(broken, '20261204T120000Z')).toThrow('run 20261204T120000Z starts at LSN 200, but its prior 20261204T110000Z ends at 250');
  });

  test('a missing or unverified prior is refused', () => {
    expect(() => physicalChain(runs.slice(1), '20261204T120000Z')).toThrow(/run 20261204T100000Z, the prior of 20261204T110000Z is not a physical backup/);
    const unverified = runs.map((run) => (run.runId === '20261204T100000Z' ? { ...run, verdict: 'failed' as const } : run));
    expect(() => physicalChain(unverified, '20261204T120000Z', { requireVerified: true })).toThrow(/is not verified \(verdict: failed\)/);
  });

  test('the next incremental builds on the newest verified run; with none it is a full', () => {
    expect(nextPhysicalBackup(runs, 'incr')).toEqual({ type: 'incr', prior: { runId: '20261204T120000Z', toLsn: '300' } });
    expect(nextPhysicalBackup(runs.map((run, i) => (i === 2 ? { ...run, verdict: 'failed' as const } : run)), 'incr')).toEqual({ type: 'incr', prior: { runId: '20261204T110000Z', toLsn: '200' } });
    expect(nextPhysicalBackup([], 'incr')).toEqual({ type: 'full' });
    expect(nextPhysicalBackup(runs, 'full')).toEqual({ type: 'full' });
  });

  test('a restore\'s base is the newest verified chain that ended at or before the target', () => {
    expect(physicalBaseFor(runs, new Date('2026-12-04T11:30:00Z'), 'shop').map((run) => run.runId)).toEqual(['20261204T100000Z', '20261204T110000Z']);
    expect(physicalBaseFor(runs, 'latest', 'shop').map((run) => run.runId)).toEqual(['20261204T100000Z', '20261204T110000Z', '20261204T120000Z']);
    expect(() => physicalBaseFor(runs, new Date('2026-12-04T09:00:00Z'), 'shop'))
      .toThrow('shop has no verified physical backup that ended at or before 2026-12-04T09:00:00.000Z (verified physical runs of shop-pitr: 20261204T100000Z, 20261204T110000Z, 20261204T120000Z)');
  });

  test('the manifest block: an incremental depends on its whole chain; its start must be its prior\'s end', () => {
    const prior = runs[1] as PhysicalRunRef;
    const block = physicalManifestBlock({
      type: 'incr', checkpoints: parseCheckpoints(MARIADB_INCR_CHECKPOINTS.replace('44744', '200')), info: parseBackupInfo(MARIADB_INFO), key: 'k',
      prior: { runId: prior.runId, physical: prior.manifest?.physical as PhysicalBackupManifest, dependsOn: prior.manifest?.dependsOn },
    });
    expect(block.dependsOn).toEqual(['20261204T100000Z', '20261204T110000Z']);
    expect(block.physical).toMatchObject({ type: 'incr', fromLsn: '200', toLsn: '51210', prior: '20261204T110000Z', binlog: { file: 'binlog.000002', position: 847, gtid: '0-1-3' } });
    expect(() => physicalManifestBlock({
      type: 'incr', checkpoints: parseCheckpoints(MARIADB_INCR_CHECKPOINTS), info: parseBackupInfo(MARIADB_INFO), key: 'k',
      prior: { runId: prior.runId, physical: prior.manifest?.physical as PhysicalBackupManifest },
    })).toThrow('k: the incremental starts at LSN 44744, but its prior 20261204T110000Z ends at 200');
    expect(() => physicalManifestBlock({ type: 'full', checkpoints: parseCheckpoints(MARIADB_INCR_CHECKPOINTS), info: parseBackupInfo(MARIADB_INFO), key: 'k' }))
      .toThrow('a full backup\'s checkpoints say backup_type incremental (expected full-backuped)');
  });

  test('the manifest schema takes the physical block and round-trips it; a bad LSN is refused', () => {
    const written = manifest('20261204T120000Z', physical('incr', '200', '300', '20261204T110000Z'), ['20261204T100000Z', '20261204T110000Z']);
    expect(parseManifest(serializeManifest(written))).toEqual(written);
    expect(() => serializeManifest({ ...written, physical: { ...written.physical, toLsn: '3e5' } as PhysicalBackupManifest })).toThrow(/log sequence number/);
  });

  test('retention keeps a kept incremental\'s whole chain (dependsOn), and removes a chain no kept run needs', () => {
    const keepOne: RetentionPolicy = { keepWithinSeconds: 0, keepLast: 1, daily: 0, weekly: 0, monthly: 0, yearly: 0, minVerified: 0, failedGraceSeconds: 0 };
    const decision = decide([
      { runId: '20261127T100000Z', status: 'verified' },
      ...runs.map((run) => ({ runId: run.runId, status: 'verified' as const, ...(run.manifest?.dependsOn ? { dependsOn: run.manifest.dependsOn } : {}) })),
    ], keepOne, new Date('2026-12-05T00:00:00Z'));
    expect(decision.keep.map((entry) => entry.runId).sort()).toEqual(['20261204T100000Z', '20261204T110000Z', '20261204T120000Z']);
    expect(decision.remove.map((entry) => entry.runId)).toEqual(['20261127T100000Z']);
  });
});
