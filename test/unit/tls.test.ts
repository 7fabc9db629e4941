/**
 * TLS to the databases, the parts without a server: which hosts are RDS endpoints, what a URL's
 * sslmode means, how a config's connection.tls and tlsCa resolve or are refused, the worker's
 * environment, the names of TLS failures, and the image's RDS bundle path. The servers are in
 * test/integration/tls.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, parseConfig, type LifeboatConfigInput } from '../../lib/config';
import {
  classifyTlsFailure, defaultCaFile, isLoopback, mysqlTlsArgs, pgTlsEnv, rdsEndpoint, RDS_CA_BUNDLE_PATH, SYSTEM_CA_BUNDLE_PATH, tlsFromUrl,
} from '../../lib/domain/tls';
import { jobFromEnv } from '../../worker/job';

describe('RDS endpoints', () => {
  test.each([
    ['orders.c9akciq32.eu-west-1.rds.amazonaws.com', 'eu-west-1', 'aws', false],
    ['shop.cluster-c9akciq32.us-east-2.rds.amazonaws.com', 'us-east-2', 'aws', false],
    ['shop.cluster-ro-c9akciq32.ap-southeast-1.rds.amazonaws.com.', 'ap-southeast-1', 'aws', false],
    ['front.proxy-c9akciq32.eu-central-1.rds.amazonaws.com', 'eu-central-1', 'aws', true],
    ['ledger.c9akciq32.us-gov-west-1.rds.amazonaws.com', 'us-gov-west-1', 'aws-us-gov', false],
    ['ledger.c9akciq32.cn-north-1.rds.amazonaws.com.cn', 'cn-north-1', 'aws-cn', false],
  ])('%s is in %s (%s), proxy %s', (host, region, partition, proxy) => {
    expect(rdsEndpoint(host)).toEqual({ region, partition, proxy });
  });

  test.each([
    'db.example.internal', 'eu-west-1.rds.amazonaws.com', 'x.c9.eu-west-1.rds.amazonaws.com.cn', 'x.c9.cn-north-1.rds.amazonaws.com', '10.0.0.5',
  ])('%s is not', (host) => {
    expect(rdsEndpoint(host)).toBeUndefined();
  });

  test('the default CA: the RDS bundle for commercial RDS endpoints, the public CAs elsewhere, none for GovCloud and China', () => {
    expect(defaultCaFile('orders.c9akciq32.eu-west-1.rds.amazonaws.com')).toBe(RDS_CA_BUNDLE_PATH);
    expect(defaultCaFile('db.example.internal')).toBe(SYSTEM_CA_BUNDLE_PATH);
    expect(defaultCaFile('ledger.c9akciq32.us-gov-west-1.rds.amazonaws.com')).toBeUndefined();
    expect(defaultCaFile('ledger.c9akciq32.cn-north-1.rds.amazonaws.com.cn')).toBeUndefined();
  });

  test.each([['127.0.0.1', true], ['127.4.5.6', true], ['::1', true], ['[::1]', true], ['localhost', true], ['10.0.0.1', false], ['db.internal', false]])(
    'loopback %s: %s', (host, loopback) => {
      expect(isLoopback(host)).toBe(loopback);
    });
});

describe('a URL on the command line', () => {
  const parse = (text: string) => tlsFromUrl(new URL(text), '--target-url');

  test('without sslmode: verify-full against the host\'s bundle, prefer on loopback only', () => {
    expect(parse('postgres://u@db.internal/shop')).toEqual({ tls: { mode: 'verify-full', caFile: SYSTEM_CA_BUNDLE_PATH }, problems: [] });
    expect(parse('mysql://u@orders.c9akciq32.eu-west-1.rds.amazonaws.com:3306')).toEqual({ tls: { mode: 'verify-full', caFile: RDS_CA_BUNDLE_PATH }, problems: [] });
    expect(parse('postgres://u@127.0.0.1:5432/shop')).toEqual({ tls: { mode: 'prefer' }, problems: [] });
    expect(parse('postgres://u@127.0.0.1:5432/shop?sslrootcert=/ca.pem')).toEqual({ tls: { mode: 'verify-full', caFile: '/ca.pem' }, problems: [] });
    expect(parse('postgres://u@db.internal/shop?sslmode=require')).toEqual({ tls: { mode: 'require' }, problems: [] });
    expect(parse('postgres://u@db.internal/shop?sslmode=disable')).toEqual({ tls: { mode: 'disable' }, problems: [] });
  });

  test.each([
    ['postgres://u@db.internal/shop?sslmode=verify-ca', '--target-url: sslmode "verify-ca" is not valid (verify-ca checks the chain but not the host name; valid: verify-full, require, prefer, disable)'],
    ['postgres://u@db.internal/shop?sslmode=require&sslrootcert=/ca.pem', '--target-url: sslrootcert is read by sslmode=verify-full only (got sslmode=require; valid: sslmode=verify-full&sslrootcert=PATH, or no sslrootcert)'],
    ['postgres://u@db.internal/shop?sslrootcert=ca.pem', '--target-url: sslrootcert "ca.pem" is not an absolute path (valid: sslrootcert=/path/to/ca.pem)'],
    ['postgres://u@db.internal/shop?ssl=true', '--target-url: unknown parameter "ssl" (valid: sslmode, sslrootcert)'],
  ])('%s is refused', (text, problem) => {
    expect(parse(text).problems).toEqual([problem]);
  });

  test('verify-full to GovCloud RDS needs sslrootcert: the image has no bundle for it', () => {
    expect(parse('postgres://u@ledger.c9akciq32.us-gov-west-1.rds.amazonaws.com/x').problems[0])
      .toMatch(/^--target-url: sslrootcert is required for verify-full to ledger\..*GovCloud/);
  });
});

describe('the clients\' flags', () => {
  test('libpq: sslrootcert only with verify-full (libpq reads a root certificate under require as verify-ca)', () => {
    expect(pgTlsEnv({ mode: 'verify-full', caFile: '/ca.pem' })).toEqual({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: '/ca.pem' });
    expect(pgTlsEnv({ mode: 'require', caFile: '/ca.pem' })).toEqual({ PGSSLMODE: 'require' });
  });

  test('MariaDB and MySQL clients: verify-full checks the certificate and refuses plain text', () => {
    expect(mysqlTlsArgs('mariadb', { mode: 'verify-full', caFile: '/ca.pem' })).toEqual(['--ssl', '--ssl-verify-server-cert', '--ssl-ca=/ca.pem']);
    expect(mysqlTlsArgs('mysql', { mode: 'verify-full', caFile: '/ca.pem' })).toEqual(['--ssl-mode=VERIFY_IDENTITY', '--ssl-ca=/ca.pem']);
  });
});

describe('TLS failures by name', () => {
  test.each([
    ['server does not support SSL, but SSL was required', 'TlsRequired'],
    ['ERROR 2026 (HY000): SSL connection error: SSL is required, but the server does not support it', 'TlsRequired'],
    ['The server does not support SSL connections', 'TlsRequired'],
    ['connection to server at "127.0.0.1", port 5432 failed: SSL error: certificate verify failed', 'TlsVerifyFailed'],
    ['server certificate for "localhost" does not match host name "127.0.0.1"', 'TlsVerifyFailed'],
    ['mariadb-dump: Got error: 2026: "TLS/SSL error: Validation of SSL server certificate failed" when trying to connect', 'TlsVerifyFailed'],
    ['self-signed certificate in certificate chain', 'TlsVerifyFailed'],
    ['certificate has expired', 'TlsVerifyFailed'],
  ])('%s → %s', (text, name) => {
    expect(classifyTlsFailure(text)?.name).toBe(name);
  });

  test('a host name mismatch says so, before the chain', () => {
    expect(classifyTlsFailure('x', 'ERR_TLS_CERT_ALTNAME_INVALID')?.cause).toMatch(/^host name mismatch/);
  });

  test.each(['password authentication failed for user "x"', 'connect ECONNREFUSED 127.0.0.1:5432', 'Unknown database \'shop\''])(
    'not TLS: %s', (text) => {
      expect(classifyTlsFailure(text)).toBeUndefined();
    });
});

describe('connection.tls and connection.tlsCa in the config', () => {
  function config(connection: Record<string, unknown>): LifeboatConfigInput {
    return {
      primary: { region: 'eu-west-1' },
      offsite: { region: 'eu-central-1' },
      sources: [{
        name: 'orders', engine: 'postgres', tier: 'tier2',
        connection: {
          host: 'orders.example.internal', database: 'orders', username: 'backup',
          passwordSecretArn: 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-AbCdEf',
          ...connection,
        },
        network: { vpcId: 'vpc-0a1b2c3d' },
      }],
    } as LifeboatConfigInput;
  }
  const resolved = (connection: Record<string, unknown>) => {
    const source = parseConfig(config(connection)).sources[0]?.connection;
    return { tls: source?.tls, tlsCa: source?.tlsCa };
  };
  function problems(connection: Record<string, unknown>): string[] {
    try {
      parseConfig(config(connection));
    } catch (error) {
      if (error instanceof ConfigError) return [...error.problems];
      throw error;
    }
    throw new Error('the config was accepted');
  }

  test('verify-full by default, against the public CAs, or the RDS bundle for an RDS endpoint', () => {
    expect(resolved({})).toEqual({ tls: 'verify-full', tlsCa: { kind: 'file', path: SYSTEM_CA_BUNDLE_PATH } });
    expect(resolved({ host: 'orders.c9akciq32.eu-west-1.rds.amazonaws.com' })).toEqual({ tls: 'verify-full', tlsCa: { kind: 'file', path: RDS_CA_BUNDLE_PATH } });
  });

  test('a CA of its own: a file in the image or a secret holding the PEM', () => {
    expect(resolved({ tlsCa: '/etc/lifeboat/tls/corp-ca.pem' })).toEqual({ tls: 'verify-full', tlsCa: { kind: 'file', path: '/etc/lifeboat/tls/corp-ca.pem' } });
    const arn = 'arn:aws:secretsmanager:eu-west-1:111111111111:secret:corp-ca-AbCdEf';
    expect(resolved({ tlsCa: arn })).toEqual({ tls: 'verify-full', tlsCa: { kind: 'secret', secretArn: arn } });
  });

  test('require and prefer only when written, and they check no CA', () => {
    expect(resolved({ tls: 'require' })).toEqual({ tls: 'require', tlsCa: undefined });
    expect(resolved({ tls: 'prefer' })).toEqual({ tls: 'prefer', tlsCa: undefined });
  });

  test.each([
    [{ tls: 'disable' }, /^sources\[0\]\.connection\.tls: plain text is never a setting of its own \(valid: "verify-full".*"prefer", written out\)/],
    [{ tls: 'verify-ca' }, /^sources\[0\]\.connection\.tls: "verify-ca" checks the chain but not the host name/],
    [{ tls: 'on' }, /^sources\[0\]\.connection\.tls: unknown TLS mode \(valid: "verify-full"/],
    [{ tls: 'require', tlsCa: '/ca.pem' }, /^sources\[0\]\.connection\.tlsCa: only tls "verify-full" checks the certificate against a CA bundle, and tls is "require"/],
    [{ tlsCa: 'ca.pem' }, /^sources\[0\]\.connection\.tlsCa: neither an absolute file path nor a secret ARN/],
    [{ tlsCa: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' }, /^sources\[0\]\.connection\.tlsCa: the PEM itself, not where it is/],
    [{ host: 'ledger.c9akciq32.us-gov-west-1.rds.amazonaws.com' }, /^sources\[0\]\.connection\.tlsCa: required for tls "verify-full" to "ledger\..*GovCloud/],
  ])('%j is refused', (connection, message) => {
    const found = problems(connection);
    expect(found.some((problem) => message.test(problem))).toBe(true);
    expect(found.join('\n')).not.toContain('MIIB');
  });
});

describe('the worker\'s environment', () => {
  const env = {
    LIFEBOAT_SOURCE: 'orders', LIFEBOAT_ENGINE: 'postgres', LIFEBOAT_TIER: 'tier1', LIFEBOAT_RUN_ID: '20261126T030000Z',
    LIFEBOAT_DB_HOST: 'orders.c9akciq32.eu-west-1.rds.amazonaws.com', LIFEBOAT_DB_NAMES: 'orders', LIFEBOAT_DB_USER: 'backup',
    LIFEBOAT_BUCKET: 'primary', AWS_REGION: 'eu-west-1',
  };
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIBsecretish\n-----END CERTIFICATE-----';
  const problemsOf = (extra: Record<string, string>) => {
    try {
      jobFromEnv({ ...env, ...extra });
    } catch (error) {
      return (error as Error).message;
    }
    return '';
  };

  test('verify-full unless told otherwise, against the RDS bundle for an RDS endpoint', () => {
    expect(jobFromEnv(env).target.tls).toEqual({ mode: 'verify-full', caFile: RDS_CA_BUNDLE_PATH });
    expect(jobFromEnv({ ...env, LIFEBOAT_DB_TLS_MODE: 'require' }).target.tls).toEqual({ mode: 'require' });
    expect(jobFromEnv({ ...env, LIFEBOAT_DB_TLS_CA_PEM: PEM }).target.tls).toEqual({ mode: 'verify-full', caPem: PEM });
  });

  test('a bad mode, a CA under require, two CAs and a non-PEM are refused, the PEM never echoed', () => {
    expect(problemsOf({ LIFEBOAT_DB_TLS_MODE: 'verify-ca' })).toContain('LIFEBOAT_DB_TLS_MODE: "verify-ca" is not valid (valid: verify-full, require, prefer, disable)');
    expect(problemsOf({ LIFEBOAT_DB_TLS_MODE: 'require', LIFEBOAT_DB_TLS_CA_FILE: '/ca.pem' }))
      .toContain('LIFEBOAT_DB_TLS_CA_FILE: set, but only LIFEBOAT_DB_TLS_MODE=verify-full checks a CA bundle (it is "require")');
    expect(problemsOf({ LIFEBOAT_DB_TLS_CA_FILE: '/ca.pem', LIFEBOAT_DB_TLS_CA_PEM: PEM })).toContain('give one CA bundle, not both');
    const notPem = problemsOf({ LIFEBOAT_DB_TLS_CA_PEM: 'MIIBsecretish' });
    expect(notPem).toContain('LIFEBOAT_DB_TLS_CA_PEM: not a PEM certificate bundle');
    expect(notPem).not.toContain('MIIBsecretish');
  });
});

test('worker/Dockerfile writes the RDS bundle where lib/domain/tls.ts says it is', () => {
  const dockerfile = readFileSync(join(__dirname, '../../worker/Dockerfile'), 'utf8');
  expect(dockerfile).toMatch(new RegExp(`^ENV LIFEBOAT_RDS_CA_BUNDLE=${RDS_CA_BUNDLE_PATH.replace(/\//g, '\\/')}$`, 'm'));
  expect(dockerfile).toContain('> "${LIFEBOAT_RDS_CA_BUNDLE}"');
  // ca-certificates' bundle, the default of every other host, is checked in the same layer.
  expect(dockerfile).toContain(`test -s ${SYSTEM_CA_BUNDLE_PATH}`);
});
