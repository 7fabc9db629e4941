import type { TlsOptions } from '../domain/tls';

/**
 * TLS flags per client flavour; the CA only with verify-full (MySQL's client reads --ssl-ca under
 * REQUIRED as VERIFY_CA).
 *
 * MariaDB clients before 11.4 have no "TLS but do not verify" switch that refuses plain text:
 * with `--ssl` alone they fall back to plain TCP when the server offers no TLS (tried with
 * mariadb-dump 10.11). With `--ssl-verify-server-cert` they refuse it ("SSL is required, but the
 * server does not support it"), so verify-full never falls back. For require, a mysql2
 * connection (which refuses plain text) reaches the same server moments before the client does
 * (the dump's preflight and counting connections, the restore's inspection): a server without
 * TLS fails there, before the client starts.
 * What is left is an active attacker stripping TLS from the client's connection alone, against
 * which require protects nothing anyway (it does not check who answers).
 */
export function mysqlTlsArgs(clientFlavor: 'mysql' | 'mariadb', tls: TlsOptions): string[] {
  const ca = tls.mode === 'verify-full' && tls.caFile !== undefined ? [`--ssl-ca=${tls.caFile}`] : [];
  if (clientFlavor === 'mysql') {
    const mode = { disable: 'DISABLED', prefer: 'PREFERRED', require: 'REQUIRED', 'verify-full': 'VERIFY_IDENTITY' }[tls.mode];
    return [`--ssl-mode=${mode}`, ...ca];
  }
  switch (tls.mode) {
    case 'disable':
      return ['--skip-ssl'];
    case 'prefer':
    case 'require':
      return ['--ssl', '--skip-ssl-verify-server-cert'];
    case 'verify-full':
      return ['--ssl', '--ssl-verify-server-cert', ...ca];
  }
}
