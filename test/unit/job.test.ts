import { JOB_ENV, jobFromEnv } from '../../worker/job';

const env = {
  LIFEBOAT_SOURCE: 'orders',
  LIFEBOAT_ENGINE: 'postgres',
  LIFEBOAT_TIER: 'tier1',
  LIFEBOAT_RUN_ID: '20261126T030000Z',
  LIFEBOAT_DB_HOST: 'db.internal',
  LIFEBOAT_DB_NAMES: 'orders, audit',
  LIFEBOAT_DB_USER: 'backup',
  LIFEBOAT_DB_PASSWORD: 'pw-never-shown',
  LIFEBOAT_BUCKET: 'primary',
  AWS_REGION: 'eu-west-1',
};

test('reads a complete job with defaults', () => {
  expect(jobFromEnv(env)).toEqual({
    source: 'orders', engine: 'postgres', tier: 'tier1', runId: '20261126T030000Z',
    target: { host: 'db.internal', port: 5432, databases: ['orders', 'audit'], username: 'backup', password: 'pw-never-shown',
      tls: { mode: 'verify-full', caFile: '/etc/ssl/certs/ca-certificates.crt' } },
    bucket: 'primary', s3Endpoint: undefined, region: 'eu-west-1', retentionSeconds: undefined, objectLockMode: 'GOVERNANCE',
    sizeHintBytes: undefined, compression: undefined, exactCountMaxBytes: undefined, excludeTables: [], deadlineSeconds: undefined, taskToken: undefined,
  });
  expect(jobFromEnv({ ...env, LIFEBOAT_ENGINE: 'mariadb' }).target.port).toBe(3306);
});

test('reports every problem at once, naming the variable and the value, never the password', () => {
  const bad = { ...env, LIFEBOAT_ENGINE: 'oracle', LIFEBOAT_RUN_ID: 'now', LIFEBOAT_DB_PORT: 'x', LIFEBOAT_OBJECT_LOCK_MODE: 'legal' };
  delete (bad as Record<string, string>).LIFEBOAT_BUCKET;
  let message = '';
  try { jobFromEnv(bad); } catch (error) { message = (error as Error).message; expect((error as Error).name).toBe('InvalidInput'); }
  expect(message.split('\n').slice(1)).toEqual([
    '  - LIFEBOAT_ENGINE: "oracle" is not valid (valid: postgres, mysql, mariadb)',
    '  - LIFEBOAT_RUN_ID: "now" is not valid (valid: a UTC slot time such as 20261126T030000Z)',
    '  - LIFEBOAT_OBJECT_LOCK_MODE: "legal" is not valid (valid: GOVERNANCE, COMPLIANCE)',
    '  - LIFEBOAT_DB_PORT: "x" is not valid (valid: a whole number ≥ 1)',
    '  - LIFEBOAT_BUCKET: required',
  ]);
  expect(message).not.toContain('pw-never-shown');
  expect(JOB_ENV.password).toBe('LIFEBOAT_DB_PASSWORD');
});

test('the run id can come from the schedule\'s slot time', () => {
  const { LIFEBOAT_RUN_ID: _omit, ...rest } = env;
  expect(jobFromEnv({ ...rest, LIFEBOAT_SCHEDULED_TIME: '2026-11-26T03:15:00Z' }).runId).toBe('20261126T031500Z');
  expect(() => jobFromEnv({ ...rest, LIFEBOAT_SCHEDULED_TIME: 'soon' })).toThrow(
    'LIFEBOAT_SCHEDULED_TIME: "soon" is not valid (valid: an ISO 8601 time such as 2026-11-26T03:00:00Z)');
  expect(() => jobFromEnv(rest)).toThrow('LIFEBOAT_RUN_ID: required (or LIFEBOAT_SCHEDULED_TIME: the schedule\'s slot time)');
});
