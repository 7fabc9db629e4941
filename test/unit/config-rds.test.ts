/** RDS/Aurora sources in the config: which instance or cluster, the tier's window, and what is refused. */
import { parseConfig, type LifeboatConfigInput } from '../../lib/config';
import type { SourceInput } from '../../lib/config/schema';
import { identifyRdsEndpoint } from '../../lib/rds/identify';
import { configProblems, RDS_INSTANCE_SOURCE } from '../fixtures/config-input';

const ORDERS = RDS_INSTANCE_SOURCE;

function config(source: Partial<SourceInput> & Record<string, unknown> = {}, tiers?: LifeboatConfigInput['tiers']): LifeboatConfigInput {
  return { primary: { region: 'eu-west-1' }, offsite: { region: 'eu-central-1' }, ...(tiers ? { tiers } : {}), sources: [{ ...ORDERS, ...source } as SourceInput] };
}

const withHost = (host: string): Partial<SourceInput> => ({ connection: { ...ORDERS.connection, host } });

const problems = configProblems;

describe('the instance or cluster is read off the endpoint', () => {
  test.each([
    ['orders-db.c9akciq32.eu-west-1.rds.amazonaws.com', 'instance', 'orders-db'],
    ['orders.cluster-c9akciq32.eu-west-1.rds.amazonaws.com', 'cluster', 'orders'],
    ['orders.cluster-ro-c9akciq32.eu-west-1.rds.amazonaws.com', 'cluster', 'orders'],
    ['Orders.Cluster-C9AKCIQ32.eu-west-1.rds.amazonaws.com.', 'cluster', 'orders'],
  ])('%s is the %s %s', (host, kind, identifier) => {
    expect(identifyRdsEndpoint(host)).toEqual({ kind, identifier, region: 'eu-west-1' });
  });

  test.each([
    ['reporting.cluster-custom-c9akciq32.eu-west-1.rds.amazonaws.com', /custom cluster endpoint/],
    ['orders-proxy.proxy-c9akciq32.eu-west-1.rds.amazonaws.com', /RDS Proxy/],
  ])('%s names no instance or cluster', (host, why) => {
    const identity = identifyRdsEndpoint(host);
    expect(identity?.kind).toBe('undetectable');
    expect(identity && identity.kind === 'undetectable' ? identity.why : '').toMatch(why);
  });

  test('a host that is not an RDS endpoint is not identified', () => {
    expect(identifyRdsEndpoint('orders.example.internal')).toBeUndefined();
    expect(identifyRdsEndpoint('10.0.3.17')).toBeUndefined();
  });
});

describe('resolution', () => {
  test('an instance endpoint: detected, the tier\'s window (retention capped at 35 days), checks only, drill defaults from the network', () => {
    const [source] = parseConfig(config()).sources;
    expect(source.rds).toEqual({
      kind: 'instance', identifier: 'orders-db', detected: true, region: 'eu-west-1', requiredWindowDays: 35, manage: false,
      drill: { instanceClass: undefined, subnetGroup: undefined, securityGroupIds: ['sg-0a1b2c3d'] },
    });
    expect(source.methods).toEqual(['logical']);
  });

  test('written: a cluster behind a CNAME, with the drill\'s class, subnet group and security groups', () => {
    const [source] = parseConfig(config({
      ...withHost('orders.db.example.internal'),
      rds: { cluster: 'orders-aurora', drill: { instanceClass: 'db.r6g.large', subnetGroup: 'drills', securityGroupIds: ['sg-0e1e2e3e'] } },
    })).sources;
    expect(source.rds).toMatchObject({
      kind: 'cluster', identifier: 'orders-aurora', detected: false, region: 'eu-west-1',
      drill: { instanceClass: 'db.r6g.large', subnetGroup: 'drills', securityGroupIds: ['sg-0e1e2e3e'] },
    });
  });

  test('the window follows the tier: its retention below 35 days, its own pitrWindow, and manageNativeBackups', () => {
    expect(parseConfig(config({ tier: 'tier3' })).sources[0].rds).toMatchObject({ requiredWindowDays: 7, manage: false });
    expect(parseConfig(config({}, { tier1: { pitrWindow: '10d', manageNativeBackups: true } })).sources[0].rds)
      .toMatchObject({ requiredWindowDays: 10, manage: true });
    expect(parseConfig(config({}, { tier1: { pitrWindow: '36h' } })).sources[0].rds).toMatchObject({ requiredWindowDays: 2 });
  });

  test('rds: false leaves an RDS endpoint to its dumps alone; a self-managed host has no rds', () => {
    expect(parseConfig(config({ rds: false })).sources[0].rds).toBeUndefined();
    expect(parseConfig(config(withHost('10.0.3.17'))).sources[0].rds).toBeUndefined();
  });
});

describe('refused, naming the field, the value and what would be valid', () => {
  test('a window longer than RDS keeps, or shorter than a day', () => {
    expect(problems(config({}, { tier1: { pitrWindow: '40d' } }))).toEqual([
      expect.stringMatching(/^tiers\.tier1\.pitrWindow: "40d" is longer than RDS and Aurora keep automated backups \(35 days\) \(valid: at most 35d/),
    ]);
    expect(problems(config({}, { tier1: { pitrWindow: '12h' } }))).toEqual([expect.stringMatching(/^tiers\.tier1\.pitrWindow: "12h" is shorter than a day.*valid: 1d to 35d/)]);
    expect(problems(config({}, { tier1: { manageNativeBackups: 'yes' as never } }))).toEqual([expect.stringMatching(/^tiers\.tier1\.manageNativeBackups: invalid manageNativeBackups \(valid: true or false\)/)]);
  });

  test('an endpoint that names no instance, with no rds block; a non-RDS host with an empty one', () => {
    expect(problems(config(withHost('orders-proxy.proxy-c9akciq32.eu-west-1.rds.amazonaws.com')))).toEqual([
      expect.stringMatching(/^sources\[0\]\.rds: orders-proxy\.proxy-c9akciq32\.eu-west-1\.rds\.amazonaws\.com is an RDS Proxy endpoint.*valid: rds: \{ instance: .* or rds: false/),
    ]);
    expect(problems(config({ ...withHost('orders.example.internal'), rds: {} }))).toEqual([
      expect.stringMatching(/^sources\[0\]\.rds: orders\.example\.internal is not an RDS endpoint/),
    ]);
    // Named, a proxy is fine.
    expect(problems(config({ ...withHost('orders-proxy.proxy-c9akciq32.eu-west-1.rds.amazonaws.com'), rds: { instance: 'orders-db' } }))).toEqual([]);
  });

  test('both an instance and a cluster; an identifier RDS would not take', () => {
    expect(problems(config({ rds: { instance: 'a', cluster: 'b' } }))).toEqual([expect.stringMatching(/^sources\[0\]\.rds: give either instance or cluster, not both/)]);
    expect(problems(config({ rds: { instance: 'Orders--db' } }))).toEqual([
      expect.stringMatching(/^sources\[0\]\.rds\.instance: invalid DB instance identifier \(valid: 1-63 lowercase letters.*\(got "Orders--db"\)/),
    ]);
  });

  test('a source name RDS would refuse in the names of its copies and drill instances', () => {
    expect(problems(config({ name: 'orders--eu' }))).toEqual([expect.stringMatching(/^sources\[0\]\.name: "orders--eu" holds "--", which RDS refuses.*\(valid: a name without "--", or rds: false\)/)]);
    expect(problems(config({ name: 'orders--eu', rds: false }))).toEqual([]);
  });

  test('an RDS endpoint outside the primary region', () => {
    expect(problems(config(withHost('orders-db.c9akciq32.us-east-1.rds.amazonaws.com')))).toEqual([
      expect.stringMatching(/^sources\[0\]\.connection\.host: an RDS endpoint in us-east-1, and Lifeboat's primary region is eu-west-1.*valid: a deployment whose primary\.region is us-east-1/),
    ]);
  });
});
