/** The PITR verifier's environment (worker/pitr-verify-main.ts): what it needs, each problem named at once. */
import { pitrVerifyJobFromEnv } from '../../worker/pitr-verify-main';

const GOOD = {
  LIFEBOAT_BUCKET: 'primary', LIFEBOAT_SOURCE: 'ledger', LIFEBOAT_TIER: 'tier1', LIFEBOAT_RUN_ID: '20261203T030000Z',
  LIFEBOAT_PITR_TYPE: 'incr', LIFEBOAT_PITR_REQUESTED_AT: '2026-12-03T03:00:05Z', LIFEBOAT_PITR_STANZA: 'ledger',
  LIFEBOAT_PITR_REPO_PATH: '/pitr/ledger', LIFEBOAT_OBJECT_LOCK_MODE: 'GOVERNANCE', LIFEBOAT_RETENTION_SECONDS: '7776000', AWS_REGION: 'eu-west-1',
};

test('a complete environment: the region\'s endpoint for pgBackRest, the lock from the tier', () => {
  const job = pitrVerifyJobFromEnv(GOOD);
  expect(job).toMatchObject({
    source: 'ledger', type: 'incr', repoPath: '/pitr/ledger', requestedAt: new Date('2026-12-03T03:00:05Z'),
    objectLock: { mode: 'GOVERNANCE', retentionSeconds: 7_776_000 },
    pgbackrest: { endpoint: 's3.eu-west-1.amazonaws.com', uriStyle: 'host' },
  });
  expect(pitrVerifyJobFromEnv({ ...GOOD, AWS_REGION: 'cn-north-1' }).pgbackrest.endpoint).toBe('s3.cn-north-1.amazonaws.com.cn');
});

test('every bad value is named with what would be valid, all at once', () => {
  expect(() => pitrVerifyJobFromEnv({
    ...GOOD, LIFEBOAT_PITR_TYPE: 'weekly', LIFEBOAT_RUN_ID: 'yesterday', LIFEBOAT_PITR_REPO_PATH: 'pitr/ledger',
    LIFEBOAT_PGBACKREST_S3_PORT: '99999', LIFEBOAT_OBJECT_LOCK_MODE: 'FOREVER', AWS_REGION: '', LIFEBOAT_BUCKET: '',
  })).toThrow(expect.objectContaining({
    name: 'InvalidInput',
    message: expect.stringMatching(/LIFEBOAT_BUCKET: required[\s\S]*LIFEBOAT_RUN_ID: "yesterday" is not valid[\s\S]*LIFEBOAT_PITR_TYPE: "weekly" is not valid \(valid: full, diff, incr\)[\s\S]*LIFEBOAT_PITR_REPO_PATH: "pitr\/ledger" is not valid[\s\S]*AWS_REGION: required[\s\S]*LIFEBOAT_OBJECT_LOCK_MODE: "FOREVER" is not valid[\s\S]*LIFEBOAT_PGBACKREST_S3_PORT: "99999" is not valid/),
  }));
});
