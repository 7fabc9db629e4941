/**
 * TLS to the databases: the modes, where the CA bundles are, which hosts are RDS endpoints,
 * and what a TLS failure is called. Shared by the config (its defaults), the worker (pg_dump,
 * pg_dumpall, mariadb-dump/mysqldump and the drivers), the restore and the CLI, so that a mode
 * means the same thing to every client that talks to a database.
 *
 * - `verify-full`: TLS; the certificate must chain to the CA bundle and name the host.
 * - `require`: TLS; the certificate is not checked (protects against a passive observer only).
 * - `prefer`: TLS when the server offers it, plain TCP otherwise.
 * - `disable`: plain TCP (the command line and the worker take it; a config cannot ask for it).
 *
 * `verify-full` and `require` never fall back to plain TCP: a server that offers no TLS fails
 * with `TlsRequired`, a certificate that does not verify with `TlsVerifyFailed`.
 */

export type TlsMode = 'disable' | 'prefer' | 'require' | 'verify-full';

/** What the worker, the restore and the CLI take. */
export const TLS_MODES: readonly TlsMode[] = ['verify-full', 'require', 'prefer', 'disable'];

/** What `connection.tls` takes: never `disable`, and `prefer` only when written. */
export const CONFIG_TLS_MODES = ['verify-full', 'require', 'prefer'] as const;
export type ConfigTlsMode = (typeof CONFIG_TLS_MODES)[number];

export interface TlsOptions {
  readonly mode: TlsMode;
  /** PEM bundle the server certificate must chain to. Only `verify-full` reads it. */
  readonly caFile?: string;
}

/**
 * The RDS CA bundle in the worker image: truststore.pki.rds.amazonaws.com's global-bundle.pem
 * (every commercial region's RDS CAs) followed by Amazon Root CA 1–4, which sign the ACM
 * certificates of RDS Proxy endpoints. worker/Dockerfile writes it here (a test checks the two
 * agree).
 */
export const RDS_CA_BUNDLE_PATH = '/etc/lifeboat/tls/rds-ca-bundle.pem';

/** Debian's bundle of the public CAs (ca-certificates), in the worker image and on most Linux hosts. */
export const SYSTEM_CA_BUNDLE_PATH = '/etc/ssl/certs/ca-certificates.crt';

export interface RdsEndpoint {
  readonly region: string;
  readonly partition: 'aws' | 'aws-cn' | 'aws-us-gov';
  /** An RDS Proxy endpoint (`<name>.proxy-<id>.<region>…` or `<name>.endpoint.proxy-<id>.<region>…`): an ACM certificate. */
  readonly proxy: boolean;
}

/**
 * RDS and Aurora endpoints: `<instance>.<id>.<region>.rds.amazonaws.com`, the cluster endpoints
 * `<cluster>.cluster-<id>.…`, `cluster-ro-`, `cluster-custom-`, Aurora Limitless `shardgrp-`,
 * RDS Proxy `<proxy>.proxy-<id>.…` and `<endpoint>.endpoint.proxy-<id>.…`; in China
 * `….<region>.rds.amazonaws.com.cn`. At least two labels before the region.
 */
const RDS_HOST = /^(?:[a-z0-9-]+\.)+?([a-z0-9-]+\.)([a-z]{2}(?:-gov)?-[a-z]+-\d+)\.rds\.amazonaws\.com(\.cn)?$/;

export function rdsEndpoint(host: string): RdsEndpoint | undefined {
  const name = host.trim().toLowerCase().replace(/\.$/, '');
  const match = RDS_HOST.exec(name);
  if (!match) return undefined;
  const region = match[2] as string;
  const china = match[3] !== undefined;
  if (china !== region.startsWith('cn-')) return undefined;
  return {
    region,
    partition: china ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws',
    proxy: /^proxy-/.test(match[1] as string),
  };
}

/** 127.0.0.0/8, ::1 and localhost: traffic that does not leave the machine (or a tunnel it opened). */
export function isLoopback(host: string): boolean {
  const name = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost') || name === '::1' || /^127(?:\.\d{1,3}){3}$/.test(name);
}

/**
 * The CA bundle `verify-full` uses for a host when none is given: the image's RDS bundle for an
 * RDS or Aurora endpoint (or RDS Proxy) of a commercial region, the public CAs otherwise.
 * Undefined for GovCloud and China endpoints: their RDS CAs are in bundles of their own, which
 * the image does not carry, so a CA must be given.
 */
export function defaultCaFile(host: string): string | undefined {
  const rds = rdsEndpoint(host);
  if (!rds) return SYSTEM_CA_BUNDLE_PATH;
  return rds.partition === 'aws' ? RDS_CA_BUNDLE_PATH : undefined;
}

/** What a missing CA for an RDS endpoint outside the commercial regions needs, for messages. */
export function missingRdsCaHint(host: string): string {
  const rds = rdsEndpoint(host);
  const where = rds?.partition === 'aws-cn' ? 'the China regions' : 'the AWS GovCloud (US) regions';
  return `the worker image's RDS bundle covers the commercial regions only, and ${host} is an RDS endpoint in ${rds?.region ?? 'another partition'}: ` +
    `RDS publishes the certificate bundle of ${where} separately`;
}

export type TlsErrorName = 'TlsRequired' | 'TlsVerifyFailed';

export interface TlsFailure {
  readonly name: TlsErrorName;
  /** In words: "the server offers no TLS", "certificate verify failed (…)", "host name mismatch (…)". */
  readonly cause: string;
}

const NO_TLS = [
  /does not support SSL/i, // libpq: "server does not support SSL, but SSL was required"; node-postgres: "The server does not support SSL connections"
  /SSL is required,? but the server does(?: not|n't) support it/i, // MariaDB and MySQL clients
  /HANDSHAKE_NO_SSL_SUPPORT/, // mysql2
  /Server does not support secure transport/i, // mysql2's message
];
const HOST_MISMATCH = [
  /ERR_TLS_CERT_ALTNAME_INVALID/,
  /Hostname\/IP does not match certificate's altnames/i, // node
  /server certificate for "[^"]*" (?:\(and \d+ other names?\) )?does not match host name "[^"]*"/i, // libpq
  /Validation of SSL server certificate failed/i, // MariaDB Connector/C (the chain verified: the name did not)
  /X509 certificate matching functions/i, // MySQL client
];
const UNTRUSTED = [
  /certificate verify failed/i, // libpq, OpenSSL clients
  /self[- ]signed certificate/i,
  /unable to (?:get local issuer|verify the first|get issuer) certificate/i,
  /SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|CERT_UNTRUSTED/,
  /certificate has expired|CERT_HAS_EXPIRED|certificate is not yet valid|CERT_NOT_YET_VALID/i,
  /root certificate file "[^"]*" does not exist/i, // libpq
  /could not read root certificate file/i, // libpq
];

/**
 * Names a TLS failure from a driver error (its code and message) or a client's stderr; undefined
 * when the text is about something else. The host name check is tested before the chain: a
 * mismatch message may mention verification too.
 */
export function classifyTlsFailure(text: string, code?: string): TlsFailure | undefined {
  const all = `${code ?? ''} ${text}`;
  if (NO_TLS.some((pattern) => pattern.test(all))) return { name: 'TlsRequired', cause: 'the server offers no TLS, and this mode never falls back to plain TCP' };
  const mismatch = HOST_MISMATCH.find((pattern) => pattern.test(all));
  if (mismatch) return { name: 'TlsVerifyFailed', cause: `host name mismatch: the server's certificate does not name the host connected to (${excerpt(all, mismatch)})` };
  const untrusted = UNTRUSTED.find((pattern) => pattern.test(all));
  if (untrusted) return { name: 'TlsVerifyFailed', cause: `certificate verify failed: the server's certificate does not chain to the CA bundle (${excerpt(all, untrusted)})` };
  return undefined;
}

function excerpt(text: string, pattern: RegExp): string {
  const line = text.split('\n').find((candidate) => pattern.test(candidate)) ?? text;
  return line.trim().replace(/\s+/g, ' ').slice(0, 300);
}

/** "TLS verify-full (CA /etc/…)" for messages and logs. */
export function describeTls(tls: TlsOptions): string {
  return `TLS ${tls.mode}${tls.mode === 'verify-full' && tls.caFile ? ` (CA ${tls.caFile})` : ''}`;
}

/**
 * The fix an operator reads under a TLS failure: what to check on the server, and which setting
 * changes what Lifeboat accepts. `setting` names where the mode is set (the config's
 * `connection.tls`, or a URL's `sslmode`).
 */
export function tlsFailureHint(failure: TlsFailure, tls: TlsOptions, settings: { mode: string; ca: string }): string {
  if (failure.name === 'TlsRequired') {
    return `turn TLS on in the database server (PostgreSQL ssl = on; MariaDB/MySQL ssl_cert/ssl_key), or, knowing that it may then send everything in plain text, set ${settings.mode} to "prefer"`;
  }
  if (failure.cause.startsWith('host name mismatch')) {
    return `connect by a name the certificate carries (for RDS the endpoint's own name, not a CNAME or an IP address), or reissue the server's certificate for this name`;
  }
  return `give ${settings.ca} the PEM bundle of the CA that signed the server's certificate${tls.caFile ? ` (now ${tls.caFile})` : ''}, ` +
    `or set ${settings.mode} to "require" to encrypt without checking who answers`;
}

/** The query parameters a database URL on the command line may carry (libpq's names, for every engine). */
export const URL_TLS_PARAMETERS = ['sslmode', 'sslrootcert'] as const;

/**
 * The TLS a database URL asks for (`?sslmode=verify-full&sslrootcert=/path/ca.pem`): every
 * engine takes libpq's names. Without sslmode: verify-full with sslrootcert, else with the
 * host's default bundle (the RDS bundle for RDS endpoints, the public CAs otherwise); a loopback
 * host (127.0.0.1, ::1, localhost) gets prefer: nothing leaves the machine except through a
 * tunnel opened on purpose (SSM port forwarding, ssh -L), which encrypts on its own.
 * `option` names the command-line option in the problems.
 */
export function tlsFromUrl(url: URL, option: string): { tls: TlsOptions; problems: string[] } {
  const problems: string[] = [];
  for (const key of new Set(url.searchParams.keys())) {
    if (!(URL_TLS_PARAMETERS as readonly string[]).includes(key)) {
      problems.push(`${option}: unknown parameter "${key}" (valid: ${URL_TLS_PARAMETERS.join(', ')})`);
    }
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const modeText = url.searchParams.get('sslmode') ?? undefined;
  const caFile = url.searchParams.get('sslrootcert') || undefined;
  if (modeText !== undefined && !TLS_MODES.includes(modeText as TlsMode)) {
    const why = modeText === 'verify-ca' ? 'verify-ca checks the chain but not the host name; ' : '';
    problems.push(`${option}: sslmode "${modeText}" is not valid (${why}valid: ${TLS_MODES.join(', ')})`);
    return { tls: { mode: 'verify-full' }, problems };
  }
  const mode: TlsMode = (modeText as TlsMode | undefined) ?? (caFile !== undefined || !isLoopback(host) ? 'verify-full' : 'prefer');
  if (mode !== 'verify-full') {
    if (caFile !== undefined) problems.push(`${option}: sslrootcert is read by sslmode=verify-full only (got sslmode=${mode}; valid: sslmode=verify-full&sslrootcert=PATH, or no sslrootcert)`);
    return { tls: { mode }, problems };
  }
  const ca = caFile ?? defaultCaFile(host);
  if (ca === undefined) problems.push(`${option}: sslrootcert is required for verify-full to ${host}: ${missingRdsCaHint(host)} (valid: sslrootcert=PATH of that bundle)`);
  if (caFile !== undefined && !caFile.startsWith('/')) problems.push(`${option}: sslrootcert "${caFile}" is not an absolute path (valid: sslrootcert=/path/to/ca.pem)`);
  return { tls: { mode, ...(ca !== undefined ? { caFile: ca } : {}) }, problems };
}

/** TLS flags per MySQL/MariaDB client flavour: lib/engines/mysql-tls.ts. */
export { mysqlTlsArgs } from '../engines/mysql-tls';

/**
 * libpq's environment for a mode: PGSSLMODE, and PGSSLROOTCERT with verify-full only (libpq
 * reads a root certificate under "require" as "verify-ca").
 */
export function pgTlsEnv(tls: TlsOptions): Record<string, string> {
  return { PGSSLMODE: tls.mode, ...(tls.mode === 'verify-full' && tls.caFile !== undefined ? { PGSSLROOTCERT: tls.caFile } : {}) };
}
