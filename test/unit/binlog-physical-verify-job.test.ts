/**
 * The physical verifier task's environment (worker/binlog-physical-verify-main.ts): every
 * missing or invalid variable named at once, the engine's own tools chosen from the engine.
 */
import { BINLOG_PHYSICAL_VERIFY_ENV as E, physicalVerifyJobFromEnv } from '../../worker/binlog-physical-verify-main';

const base = { AWS_REGION: 'eu-west-1', [E.bucket]: 'lifeboat-primary', [E.source]: 'shop', [E.engine]: 'mariadb', [E.tier]: 'tier2', [E.runId]: '20261204T100000Z', [E.type]: 'full' };

test('a full of MariaDB: mariadb-backup and mbstream', () => {
  expect(physicalVerifyJobFromEnv({ ...base, [E.scratch]: '/scratch' })).toEqual({
    bucket: 'lifeboat-primary', source: 'shop', engine: 'mariadb', tool: 'mariadb-backup', streamTool: 'mbstream', tier: 'tier2', runId: '20261204T100000Z',
    type: 'full', region: 'eu-west-1', taskToken: undefined, s3Endpoint: undefined, scratch: '/scratch',
  });
});

test('an incremental of MySQL: xtrabackup and xbstream, on its prior, with the run\'s lock', () => {
  expect(physicalVerifyJobFromEnv({ ...base, [E.engine]: 'mysql', [E.type]: 'incr', [E.prior]: '20261203T100000Z', [E.objectLockMode]: 'COMPLIANCE', [E.retentionSeconds]: '86400' }))
    .toMatchObject({ tool: 'xtrabackup', streamTool: 'xbstream', type: 'incr', prior: '20261203T100000Z', objectLock: { mode: 'COMPLIANCE', retentionSeconds: 86400 } });
});

test('every problem at once, each naming the variable, the value and what is valid', () => {
  expect(() => physicalVerifyJobFromEnv({ [E.source]: 'Shop', [E.engine]: 'postgres', [E.runId]: 'yesterday', [E.type]: 'incr', [E.objectLockMode]: 'LEGAL' })).toThrow(
    'invalid physical backup verifier environment:\n' +
    '  - LIFEBOAT_BUCKET: required\n' +
    '  - LIFEBOAT_SOURCE: "Shop" is not valid (valid: a-z, 0-9 and "-")\n' +
    '  - LIFEBOAT_ENGINE: "postgres" is not valid (valid: an engine with binary-log point-in-time recovery, such as mariadb or mysql)\n' +
    '  - LIFEBOAT_TIER: required\n' +
    '  - LIFEBOAT_RUN_ID: "yesterday" is not valid (valid: a UTC slot time such as 20261126T030000Z)\n' +
    '  - LIFEBOAT_PHYSICAL_PRIOR: required for an incremental (the run whose to_lsn it starts at)\n' +
    '  - AWS_REGION: required\n' +
    '  - LIFEBOAT_OBJECT_LOCK_MODE: "LEGAL" is not valid (valid: GOVERNANCE, COMPLIANCE)');
});

test('a full given a prior is refused', () => {
  expect(() => physicalVerifyJobFromEnv({ ...base, [E.prior]: '20261203T100000Z' })).toThrow('LIFEBOAT_PHYSICAL_PRIOR: "20261203T100000Z" given for a full (valid: empty)');
});
