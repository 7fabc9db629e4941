/**
 * Which RDS instance or cluster a source is, read off its endpoint host name when the config
 * does not name it. RDS and Aurora endpoints carry the identifier as their first label:
 * `<instance>.<id>.<region>.rds.amazonaws.com` is a DB instance, `<cluster>.cluster-<id>.…` and
 * `<cluster>.cluster-ro-<id>.…` a DB cluster's writer and reader endpoints. A custom cluster
 * endpoint (`cluster-custom-`), an RDS Proxy and an Aurora Limitless shard group name
 * something else first: the config must then say which instance or cluster it is.
 */
import { rdsEndpoint } from '../domain/tls';

export type RdsIdentity =
  | { readonly kind: 'instance' | 'cluster'; readonly identifier: string; readonly region: string }
  | { readonly kind: 'undetectable'; readonly region: string; readonly why: string };

/** DB instance and cluster identifiers: 1-63 letters, digits and hyphens, a letter first, no "--", no trailing "-". RDS lowercases them. */
export const RDS_IDENTIFIER = /^[a-z](?:[a-z0-9]|-(?!-)){0,62}$/;

export function isRdsIdentifier(value: string): boolean {
  return RDS_IDENTIFIER.test(value) && !value.endsWith('-');
}

/** The instance or cluster an RDS endpoint host names; undefined for a host that is not an RDS endpoint. */
export function identifyRdsEndpoint(host: string): RdsIdentity | undefined {
  const endpoint = rdsEndpoint(host);
  if (!endpoint) return undefined;
  const [first, second] = host.trim().toLowerCase().replace(/\.$/, '').split('.');
  const region = endpoint.region;
  if (endpoint.proxy) return { kind: 'undetectable', region, why: 'an RDS Proxy endpoint, whose name is the proxy\'s' };
  if (second.startsWith('cluster-custom-')) return { kind: 'undetectable', region, why: 'a custom cluster endpoint, whose name is the endpoint\'s, not the cluster\'s' };
  if (second.startsWith('shardgrp-')) return { kind: 'undetectable', region, why: 'an Aurora Limitless shard group endpoint' };
  if (!isRdsIdentifier(first)) return { kind: 'undetectable', region, why: `"${first}" is not an RDS identifier` };
  return { kind: /^cluster-(?:ro-)?[a-z0-9]+$/.test(second) ? 'cluster' : 'instance', identifier: first, region };
}
