/**
 * Acceptance 1 of issue 14, as deployed: the stacks of a config with an RDS instance and an
 * Aurora cluster synthesized; the checks function and the cluster's snapshot copier (both in the
 * native shard) run as their roles, IAM-true, against the fake RDS at the SDK edge; then every
 * native alarm of the templates evaluated on what they published (its metric, dimension,
 * statistic, threshold, comparison and missing-data treatment, as CloudWatch would). A healthy
 * source raises none; a retention too short, a LatestRestorableTime older than the RPO and a
 * replication that stopped each raise their own alarm, which names the source and the required
 * value, while the function's finding names the value found.
 */
import { parseConfig, type LifeboatConfig } from '../../lib/config';
import { IamEvaluator, IamModel, asPrincipal } from '../../local/iam';
import { synthApp } from '../../local/synth';
import { FakeRds, mockRdsIamTrue, type RdsMock } from '../harness/rds';

const ACCOUNT = '111111111111';
const REGION = 'eu-west-1';
const OFFSITE = 'eu-central-1';
const secret = (name: string) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-AbCdEf`;
const network = { vpcId: 'vpc-0a1b2c3d', subnetIds: ['subnet-0a1b2c3d'], securityGroupIds: ['sg-0a1b2c3d'] };
const config: LifeboatConfig = parseConfig({
  primary: { region: REGION, account: ACCOUNT },
  offsite: { region: OFFSITE },
  sources: [
    { name: 'orders', engine: 'postgres', tier: 'tier1', network,
      connection: { host: 'orders-db.c9akciq32.eu-west-1.rds.amazonaws.com', database: 'orders', username: 'backup', passwordSecretArn: secret('orders') } },
    { name: 'ledger', engine: 'mysql', tier: 'tier2', network,
      connection: { host: 'ledger.cluster-c9akciq32.eu-west-1.rds.amazonaws.com', database: 'ledger', username: 'backup', passwordSecretArn: secret('ledger') } },
  ],
});
const app = synthApp(config);
const model = IamModel.fromApp(app);

interface AlarmProps {
  AlarmName: string; AlarmDescription: string; MetricName: string; Namespace: string; Statistic: string; Threshold: number;
  ComparisonOperator: string; TreatMissingData: string; Dimensions: { Name: string; Value: string }[];
}
const alarms = app.primary.ofType('AWS::CloudWatch::Alarm').map((id) => app.primary.resolve(app.primary.properties(id)) as AlarmProps)
  .filter((alarm) => alarm.MetricName?.startsWith('Native'));

type Handler = (event: unknown, context: unknown) => Promise<unknown>;
/** A function of the templates: its role, and its handler loaded with its synthesized environment (read at load, as in Lambda). */
function deployed(logicalIdPrefix: string, entry: string): { role: string; handler: Handler } {
  const fn = [...model.functions.values()].find((candidate) => candidate.logicalId.startsWith(logicalIdPrefix));
  if (!fn) throw new Error(`no function ${logicalIdPrefix}* in the templates`);
  const environment = (app.primary.resolve(app.primary.properties(fn.logicalId).Environment) as { Variables: Record<string, string> }).Variables;
  const saved = { ...process.env };
  Object.assign(process.env, environment, { AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'AKIDLOCAL', AWS_SECRET_ACCESS_KEY: 'local' });
  try {
    return { role: fn.roleArn, handler: jest.requireActual<{ handler: Handler }>(`../../lambdas/${entry}/handler`).handler };
  } finally {
    process.env = saved;
  }
}
const checks = deployed('NativePitrChecksFunction', 'native-checks');
const copier = deployed('NativeSnapshotCopyFunction', 'native-snapshot-copy');

let fake: FakeRds;
let mock: RdsMock;
let evaluator: IamEvaluator;
beforeEach(() => {
  // The functions measure against the real clock.
  fake = new FakeRds({ account: ACCOUNT, region: REGION, now: new Date() });
  evaluator = new IamEvaluator(model);
  mock = mockRdsIamTrue(fake, { evaluator });
});
afterEach(() => mock.restore());

/** A healthy pair: 35 and 30 days kept as their tiers require, the instance replicating, the cluster's newest snapshot copied offsite. */
function healthy(): void {
  fake.addInstance({ identifier: 'orders-db', backupRetentionPeriod: 35 });
  fake.addReplication('orders-db', OFFSITE, { startedAt: new Date(fake.now.getTime() - 86_400_000) });
  fake.addCluster({ identifier: 'ledger', engine: 'aurora-mysql', backupRetentionPeriod: 30 });
  fake.addAutomatedClusterSnapshot('ledger', new Date(fake.now.getTime() - 3 * 3_600_000));
}

interface Published { readonly source: string; readonly [metric: string]: unknown }
/** Runs a function as its role; returns the EMF documents it wrote and the findings it logged. */
async function invoke(fn: { role: string; handler: Handler }): Promise<{ metrics: Published[]; logs: string[]; error?: Error }> {
  const lines: string[] = [];
  // EMF documents go to stdout, the logger's warnings to stderr.
  const capture = (chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  };
  const writes = [jest.spyOn(process.stdout, 'write').mockImplementation(capture), jest.spyOn(process.stderr, 'write').mockImplementation(capture)];
  let error: Error | undefined;
  try {
    await asPrincipal(fn.role, () => fn.handler({}, { functionName: 'fn', awsRequestId: 'r-1', getRemainingTimeInMillis: () => 60_000 }));
  } catch (caught) {
    error = caught as Error;
  } finally {
    for (const write of writes) write.mockRestore();
  }
  const documents = lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  return { metrics: documents.filter((doc) => doc._aws !== undefined) as unknown as Published[], logs: lines, error };
}

/** What each native alarm's state would be after a period holding exactly these datapoints. */
function evaluate(published: readonly Published[]): Map<string, 'ALARM' | 'OK'> {
  const states = new Map<string, 'ALARM' | 'OK'>();
  for (const alarm of alarms) {
    const source = alarm.Dimensions.find((dimension) => dimension.Name === 'source')?.Value;
    const values = published.filter((doc) => doc.source === source && typeof doc[alarm.MetricName] === 'number').map((doc) => doc[alarm.MetricName] as number);
    if (values.length === 0) {
      states.set(alarm.AlarmName, alarm.TreatMissingData === 'breaching' ? 'ALARM' : 'OK');
      continue;
    }
    expect(alarm.Statistic).toBe('Maximum');
    const value = Math.max(...values);
    const breached = {
      GreaterThanThreshold: value > alarm.Threshold, GreaterThanOrEqualToThreshold: value >= alarm.Threshold,
    }[alarm.ComparisonOperator];
    if (breached === undefined) throw new Error(`unexpected comparison ${alarm.ComparisonOperator}`);
    states.set(alarm.AlarmName, breached ? 'ALARM' : 'OK');
  }
  return states;
}
const inAlarm = (states: Map<string, 'ALARM' | 'OK'>) => [...states].filter(([, state]) => state === 'ALARM').map(([name]) => name).sort();
const described = (name: string) => alarms.find((alarm) => alarm.AlarmName === name)?.AlarmDescription ?? '';

/** The copier run until the cluster's copy is available (it copies, then the copy completes), and one checks run. */
async function measure(): Promise<{ states: Map<string, 'ALARM' | 'OK'>; logs: string[] }> {
  // Hourly runs: the first starts the copy, a later one finds it available and publishes its age.
  let copied = await invoke(copier);
  for (let run = 0; run < 3 && !copied.metrics.some((doc) => doc.source === 'ledger'); run += 1) copied = await invoke(copier);
  expect(copied.error).toBeUndefined();
  const checked = await invoke(checks);
  expect(evaluator.denials).toEqual([]);
  return { states: evaluate([...copied.metrics, ...checked.metrics]), logs: checked.logs };
}

test('the templates hold three native alarms per source', () => {
  expect(alarms.map((alarm) => alarm.AlarmName).sort()).toEqual([
    'Lifeboat-native-offsite-ledger', 'Lifeboat-native-offsite-orders', 'Lifeboat-native-retention-ledger', 'Lifeboat-native-retention-orders',
    'Lifeboat-native-rpo-ledger', 'Lifeboat-native-rpo-orders',
  ]);
});

test('healthy sources raise none', async () => {
  healthy();
  const { states } = await measure();
  expect(states.size).toBe(6);
  expect(inAlarm(states)).toEqual([]);
});

test('a retention too short raises its alarm: the alarm names the source and the required days, the finding the value', async () => {
  healthy();
  fake.setRetention('orders-db', 7);
  const { states, logs } = await measure();
  expect(inAlarm(states)).toEqual(['Lifeboat-native-retention-orders']);
  expect(described('Lifeboat-native-retention-orders')).toMatch(/orders/);
  expect(described('Lifeboat-native-retention-orders')).toMatch(/35/);
  expect(logs.join('\n')).toMatch(/orders: backup retention period of instance orders-db is 7 days, the tier requires 35/);
});

test('a LatestRestorableTime older than the RPO raises the RPO alarm of that source', async () => {
  healthy();
  fake.stallRestorable('ledger', new Date(fake.now.getTime() - 3 * 3_600_000));
  const { states, logs } = await measure();
  expect(inAlarm(states)).toEqual(['Lifeboat-native-rpo-ledger']);
  expect(described('Lifeboat-native-rpo-ledger')).toMatch(/ledger/);
  expect(described('Lifeboat-native-rpo-ledger')).toMatch(/older than 1 h \(tier tier2's RPO/);
  expect(logs.join('\n')).toMatch(/ledger: LatestRestorableTime of cluster ledger is \S+Z, 3 h old; the tier's RPO allows 60 min/);
});

test('a replication that stopped raises the offsite alarm of that instance', async () => {
  healthy();
  fake.replicationStopped('orders-db');
  const { states, logs } = await measure();
  expect(inAlarm(states)).toEqual(['Lifeboat-native-offsite-orders']);
  expect(described('Lifeboat-native-offsite-orders')).toMatch(/orders/);
  expect(described('Lifeboat-native-offsite-orders')).toMatch(/eu-central-1/);
  expect(logs.join('\n')).toMatch(/orders: .*not replicat/i);
});
