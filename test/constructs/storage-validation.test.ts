import { Stack } from 'aws-cdk-lib';
import { AlarmTopic } from '../../lib/constructs/alarm-topic';
import { BackupBucket, type BackupBucketProps } from '../../lib/constructs/backup-bucket';
import { retentionDays, storageNames } from '../../lib/stacks/naming';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';

function bucketWith(props: BackupBucketProps): () => BackupBucket {
  return () => new BackupBucket(new Stack(testApp(), 'S'), 'Backups', props);
}

describe('BackupBucket', () => {
  test('fails when a source appears twice', () => {
    expect(
      bucketWith({
        sourceRetention: [
          { source: 'orders', retentionDays: 7 },
          { source: 'orders', retentionDays: 90 },
        ],
      }),
    ).toThrow('sourceRetention[1].source: duplicate source "orders"');
  });

  test.each(['', 'a/b'])('fails when a source name is %j', (source) => {
    expect(bucketWith({ sourceRetention: [{ source, retentionDays: 7 }] })).toThrow(
      `sourceRetention[0].source: must be non-empty without "/", got "${source}"`,
    );
  });

  test.each([0, 1.5, -7])('fails when retentionDays is %d', (days) => {
    expect(bucketWith({ sourceRetention: [{ source: 'orders', retentionDays: days }] })).toThrow(
      `sourceRetention[0].retentionDays: must be a whole number of days >= 1, got ${days}`,
    );
  });

  test('fails when retentionMarginDays is negative', () => {
    expect(bucketWith({ retentionMarginDays: -1 })).toThrow('retentionMarginDays: must be a whole number of days >= 0, got -1');
  });

  test('reports every problem at once', () => {
    expect(
      bucketWith({
        retentionMarginDays: -1,
        sourceRetention: [{ source: 'a/b', retentionDays: 0 }],
      }),
    ).toThrow(/retentionMarginDays.*\n.*sourceRetention\[0\]\.source.*\n.*sourceRetention\[0\]\.retentionDays/);
  });
});

describe('AlarmTopic', () => {
  test('fails when an HTTPS endpoint is not https://', () => {
    expect(
      () => new AlarmTopic(new Stack(testApp(), 'S'), 'Alarms', { httpsEndpoints: ['http://hooks.example.com/x'] }),
    ).toThrow('httpsEndpoints must start with https://, got http://hooks.example.com/x');
  });
});

describe('storageNames', () => {
  test('names the offsite bucket, key alias and replication role from appName, account and regions', () => {
    expect(storageNames({ ...testConfig, appName: 'Payments' })).toEqual({
      primaryAccount: '111111111111',
      offsiteAccount: '111111111111',
      crossAccount: false,
      offsiteBucketName: 'payments-offsite-111111111111-eu-central-1',
      offsiteKeyAlias: 'alias/payments-offsite',
      replicationRoleName: 'Payments-replication-eu-west-1',
      operatorRoleName: 'Payments-operator-eu-west-1',
      offsiteRestoreRoleName: 'Payments-offsite-restore-eu-central-1',
    });
  });

  test('fails when appName makes the offsite bucket name longer than S3 allows', () => {
    expect(() => storageNames({ ...testConfig, appName: 'A'.repeat(30) })).toThrow(
      'appName: "' + 'A'.repeat(30) + '" makes the offsite bucket name "' + 'a'.repeat(30) +
        '-offsite-<account>-eu-central-1" 64 characters long (valid: at most 63, so at most 29 characters of appName',
    );
  });

  test('reports every problem at once, as a ConfigError', () => {
    const config = { ...testConfig, appName: 'A'.repeat(60), primary: { region: 'eu-west-1' }, offsite: { ...testConfig.offsite, account: '222222222222' } };
    expect(() => storageNames(config)).toThrow(expect.objectContaining({
      name: 'ConfigError',
      problems: [
        expect.stringMatching(/^offsite\.account: /),
        expect.stringMatching(/^appName: .* offsite bucket name/),
      ],
    }));
  });

  test.each([
    [1, 1],
    [86_400, 1],
    [86_401, 2],
    [90 * 86_400, 90],
  ])('retentionDays(%d seconds) is %d whole days', (seconds, days) => {
    expect(retentionDays(seconds)).toBe(days);
  });
});
