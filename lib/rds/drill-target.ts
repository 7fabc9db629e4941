/**
 * What the RDS point-in-time drill names and passes (lib/constructs/native-drill.ts, the
 * checker worker/native-drill-main.ts, the janitor lib/rds/drill-janitor.ts). Pure: the
 * construct imports it without pulling in an SDK.
 */

/** The tag every drill instance and cluster carries, its value the source's name; the janitor deletes only what carries it. */
export const DRILL_TAG = 'lifeboat:drill';
/** When the drill made it (the execution's start, ISO): the janitor's age, if RDS's own creation time is missing. */
export const DRILL_CREATED_TAG = 'lifeboat:created';

/** Drill identifiers start `lbd-` (a letter first, as RDS requires). */
export const DRILL_IDENTIFIER_PREFIX = 'lbd-';
/** The execution's 8 hex digits after the prefix, and "-1" for an Aurora drill's instance. */
const SUFFIX_LENGTH = 8 + 2;
const MAX_IDENTIFIER = 63;

/**
 * `lbd-<source>-`: the drill's identifiers are this and 8 hex digits (an Aurora drill's instance
 * adds "-1"), at most 63 characters, so a long source name is cut (never ending in "-").
 */
export function drillIdentifierPrefix(source: string): string {
  const room = MAX_IDENTIFIER - DRILL_IDENTIFIER_PREFIX.length - 1 - SUFFIX_LENGTH;
  const name = source.slice(0, room).replace(/-+$/, '');
  return `${DRILL_IDENTIFIER_PREFIX}${name}-`;
}

/** The checker's environment (the task definition's and the CheckDrill state's overrides). */
export const NATIVE_DRILL_ENV = {
  bucket: 'LIFEBOAT_BUCKET',
  sourceConfig: 'LIFEBOAT_SOURCE_CONFIG',
  /** The backup user's password (ECS injects it from the source's passwordSecretArn). */
  password: 'LIFEBOAT_DB_PASSWORD',
  taskToken: 'LIFEBOAT_TASK_TOKEN',
  /** The restored instance's endpoint (DescribeDBInstances' Endpoint). */
  host: 'LIFEBOAT_DRILL_HOST',
  port: 'LIFEBOAT_DRILL_PORT',
  /** `{"kind":"latest"}` or `{"kind":"time","time":"<ISO>"}`. */
  target: 'LIFEBOAT_DRILL_TARGET',
  /** When the state machine made the restore call (ISO): the measured RTO starts there. */
  restoreStartedAt: 'LIFEBOAT_DRILL_RESTORE_STARTED_AT',
  /** The drill's instance or cluster identifier (`lbd-<source>-<id>`). */
  drillIdentifier: 'LIFEBOAT_DRILL_IDENTIFIER',
  /** TLS mode to the restored instance (default: the source's). */
  tlsMode: 'LIFEBOAT_DB_TLS_MODE',
  tlsCaFile: 'LIFEBOAT_DB_TLS_CA_FILE',
  s3Endpoint: 'LIFEBOAT_S3_ENDPOINT',
} as const;

export type DrillTarget = { readonly kind: 'latest' } | { readonly kind: 'time'; readonly time: string };

/** The target as the state machine passes it; undefined when it is not one. */
export function parseDrillTarget(text: string | undefined): DrillTarget | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as { kind?: unknown; time?: unknown };
    if (value.kind === 'latest') return { kind: 'latest' };
    if (value.kind === 'time' && typeof value.time === 'string' && !Number.isNaN(Date.parse(value.time))) return { kind: 'time', time: value.time };
  } catch {
    // not JSON: not a target
  }
  return undefined;
}
