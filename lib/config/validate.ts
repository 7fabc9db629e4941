import type { z } from 'zod';
import { flexibleWindowFor } from '../constructs/backup-schedules';
import { binlogPlan, type BinlogPlan } from '../binlog/plan';
import { pitrPlan, type PitrPlan } from '../pitr/plan';
import { configSchema, SOURCE_METHODS, type LifeboatConfigInput, type ParsedConfig } from './schema';
import { DEFAULT_DUMP_THROUGHPUT_BYTES_PER_SECOND, DEFAULT_TIERS, RDS_MAX_PITR_WINDOW_DAYS, TIER_FIELDS, type TierInput } from './tiers';
import { identifyRdsEndpoint } from '../rds/identify';
import { defaultCaFile, missingRdsCaHint, rdsEndpoint } from '../domain/tls';
import { ENGINE_NAMES, engineNamed, engineOf } from '../engines/registry';
import type { BinlogSource, ConfigTlsMode, Engine, LifeboatConfig, PitrSource, RdsNativeSource, Source, SourceConnection, SourceMethod, Tier, TlsCa } from './types';
import { formatDuration, formatSize, parseDuration, parseSize } from './units';

/** An invalid config: `problems` lists every problem found, one line each. */
export class ConfigError extends Error {
  public readonly problems: readonly string[];

  constructor(problems: readonly string[], origin?: string) {
    const where = origin ? ` in ${origin}` : '';
    super(`Invalid Lifeboat config${where} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
      problems.map((problem) => `  - ${problem}`).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

const DEFAULT_PORTS: Record<Engine, number> = { postgres: 5432, mysql: 3306, mariadb: 3306 };

/**
 * Validates a config (the shapes, then the rules that span fields) and resolves it: tier
 * defaults merged, durations in seconds, sizes in bytes. Throws ConfigError naming every
 * problem at once.
 */
export function parseConfig(input: unknown, origin?: string): LifeboatConfig {
  const result = configSchema.safeParse(input, { reportInput: true });
  const problems = result.success ? [] : result.error.issues.map(describeIssue);
  problems.push(...crossFieldProblems(input));
  if (problems.length > 0 || !result.success) {
    throw new ConfigError(problems, origin);
  }
  return resolve(result.data);
}

/** Typed identity for lifeboat.config.ts files. */
export function defineConfig(config: LifeboatConfigInput): LifeboatConfigInput {
  return config;
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`))
    .join('');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = formatPath(issue.path) || '(config)';
  if (issue.code === 'unrecognized_keys') {
    const known = knownFields(issue.path);
    const keys = issue.keys.map((key) => `"${key}"`).join(', ');
    return `${path}: unknown field${issue.keys.length > 1 ? 's' : ''} ${keys}` + (known ? ` (valid: ${known.join(', ')})` : '');
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return `${path}: required (valid: ${expectedValue(issue.expected, issue.path)})`;
  }
  // Only primitives are echoed back: an object could hold something the user should not
  // have put there (a password under a misspelt key), and it would end up in CI logs.
  return `${path}: ${issue.message}${renderInput(issue.input)}`;
}

function renderInput(value: unknown): string {
  if (value === undefined) return ' (got nothing)';
  if (typeof value === 'string') return ` (got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value)})`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return ` (got ${String(value)})`;
  if (Array.isArray(value)) return value.length === 0 ? ' (got an empty list)' : ` (got a list of ${value.length})`;
  return ' (got an object)';
}

/** What a missing value should have been: "a string", "an object with region and, optionally, account". */
function expectedValue(expected: string, path: readonly PropertyKey[]): string {
  if (expected === 'array') return 'a list';
  if (expected !== 'object') return `a ${expected}`;
  const shape = shapeAt(path);
  if (!shape) return 'an object';
  const names = Object.keys(shape);
  const optional = names.filter((name) => (shape[name] as { def?: { type?: string } })?.def?.type === 'optional');
  const required = names.filter((name) => !optional.includes(name));
  const and = (list: string[]) => (list.length > 1 ? `${list.slice(0, -1).join(', ')} and ${list[list.length - 1]}` : list[0]);
  if (required.length === 0) return `an object with, optionally, ${and(optional)}`;
  return `an object with ${and(required)}${optional.length > 0 ? ` and, optionally, ${and(optional)}` : ''}`;
}

/** Field names allowed at a path, read off the schema itself so they never drift. */
function knownFields(path: readonly PropertyKey[]): string[] | undefined {
  const shape = shapeAt(path);
  return shape ? Object.keys(shape) : undefined;
}

/** The object schema's fields at a path of the config, or undefined when there is no object there. */
function shapeAt(path: readonly PropertyKey[]): Record<string, unknown> | undefined {
  let schema: unknown = configSchema;
  for (const part of path) {
    schema = unwrap(schema);
    const def = (schema as { def?: { type?: string; element?: unknown; valueType?: unknown } }).def;
    const shape = (schema as { shape?: Record<string, unknown> }).shape;
    if (typeof part === 'number' && def?.type === 'array') schema = def.element;
    else if (def?.type === 'record') schema = def.valueType;
    else if (shape && typeof part === 'string') schema = shape[part];
    else return undefined;
  }
  return (unwrap(schema) as { shape?: Record<string, unknown> }).shape;
}

function unwrap(schema: unknown): unknown {
  let current = schema as { def?: { type?: string; innerType?: unknown } };
  while (current?.def?.type === 'optional') current = current.def.innerType as typeof current;
  return current;
}

type Loose = Record<string, unknown>;
const isObject = (value: unknown): value is Loose => typeof value === 'object' && value !== null && !Array.isArray(value);
const asString = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/**
 * Rules that span fields. They read the raw input defensively so that they run even when
 * some shapes are wrong, and every problem is reported in one pass.
 */
function crossFieldProblems(input: unknown): string[] {
  if (!isObject(input)) return [];
  const problems: string[] = [];
  const tiers = effectiveTiers(input.tiers, problems);

  const primaryRegion = isObject(input.primary) ? asString(input.primary.region) : undefined;
  const offsiteRegion = isObject(input.offsite) ? asString(input.offsite.region) : undefined;
  if (primaryRegion && offsiteRegion && primaryRegion === offsiteRegion) {
    problems.push(
      `offsite.region: "${offsiteRegion}" is also the primary region (valid: any region other than "${primaryRegion}", ` +
        'so that the offsite copy survives the loss of the primary region)',
    );
  }

  const primaryAccount = isObject(input.primary) ? asString(input.primary.account) : undefined;
  const offsiteAccount = isObject(input.offsite) ? asString(input.offsite.account) : undefined;
  // Without primary at all the schema reports it missing; "primary.account is not set" would
  // only add a second, confusing line.
  if (offsiteAccount !== undefined && primaryAccount === undefined && isObject(input.primary)) {
    problems.push(
      `offsite.account: "${offsiteAccount}" is set but primary.account is not (valid: both accounts, ` +
        'so that the offsite bucket and key policies can name the primary account, or neither)',
    );
  }
  const appName = asString(input.appName) ?? 'Lifeboat';
  if (offsiteRegion) {
    // The offsite bucket is named <appname>-offsite-<account>-<region>: S3 allows 63 characters.
    const longest = 63 - '-offsite-'.length - 12 - 1 - offsiteRegion.length;
    if (appName.length > longest) {
      problems.push(
        `appName: "${appName}" is too long for the offsite bucket name in ${offsiteRegion} ` +
          `(valid: at most ${longest} characters)`,
      );
    }
  }

  const sources = Array.isArray(input.sources) ? input.sources : [];
  const dumps: { at: string; tierName: string; dump: ExpectedDump }[] = [];
  const firstIndexByName = new Map<string, number>();
  sources.forEach((source: unknown, index: number) => {
    if (!isObject(source)) return;
    const at = `sources[${index}]`;
    const name = asString(source.name);
    if (name !== undefined) {
      const first = firstIndexByName.get(name);
      if (first === undefined) firstIndexByName.set(name, index);
      else problems.push(`${at}.name: duplicate source name "${name}" (already used by sources[${first}]; valid: a unique name)`);
    }

    // A PITR source's runs are cataloged as <name>-pitr (lib/domain/layout.ts pitrCatalogName): no source may be called that.
    const catalogOwner = name?.endsWith('-pitr') ? sources.findIndex((other: unknown) => isObject(other) && asString(other.name) === name.slice(0, -'-pitr'.length)
      && (Array.isArray(other.method) ? other.method : [other.method]).includes('pitr')) : -1;
    if (name !== undefined && catalogOwner >= 0) {
      problems.push(`${at}.name: "${name}" is the catalog of sources[${catalogOwner}]'s point-in-time recovery runs (runs/${name}/) (valid: a name not ending in -pitr, or another name for sources[${catalogOwner}])`);
    }

    const tierName = asString(source.tier);
    const tier = tierName === undefined ? undefined : tiers.get(tierName);
    if (tierName !== undefined && tierName !== '' && !tiers.has(tierName)) {
      problems.push(`${at}.tier: unknown tier "${tierName}" (known: ${[...tiers.keys()].join(', ')})`);
    }

    const network = source.network;
    if (isObject(network)) {
      const hasSubnets = network.subnetIds !== undefined;
      const hasGroups = network.securityGroupIds !== undefined;
      if (hasSubnets !== hasGroups) {
        problems.push(
          `${at}.network: subnetIds and securityGroupIds must be given together ` +
            `(got ${hasSubnets ? 'subnetIds' : 'securityGroupIds'} only; valid: both, or neither to use the VPC's private subnets and a new security group)`,
        );
      }
    }

    const connection = source.connection;
    if (isObject(connection)) problems.push(...tlsProblems(at, connection));
    if (isObject(connection) && connection.database !== undefined && connection.databases !== undefined) {
      problems.push(`${at}.connection: give either database or databases, not both (got both)`);
    } else if (isObject(connection) && connection.database === undefined && connection.databases === undefined) {
      problems.push(`${at}.connection.database: required (valid: a database name, or databases: a list of names)`);
    }

    const methods = looseMethods(source.method);
    problems.push(...pitrProblems(at, source, methods, tierName, tier));
    problems.push(...rdsProblems(at, source, methods, primaryRegion));

    const dump = methods.includes('logical') ? expectedDump(source) : undefined;
    if (dump !== undefined && tier?.scheduleSeconds !== undefined) {
      if (dump.seconds > tier.scheduleSeconds) {
        problems.push(
          `${at}.sizeHint: a "${dump.size}" database takes about ${formatDuration(dump.seconds)} to dump at ` +
            `${formatSize(dump.throughput)}/s, longer than tier "${tierName}"'s schedule of ${formatDuration(tier.scheduleSeconds)}, ` +
            'so the tier\'s RPO cannot be kept (valid: a tier whose schedule is longer than the dump, or a measured dumpThroughputHint)',
        );
      }
      if (tierName !== undefined) dumps.push({ at, tierName, dump });
    }
  });
  problems.push(...rpoProblems(tiers, dumps));
  return problems;
}

/** The methods a source names, as far as they can be read (the schema reports the rest). */
function looseMethods(method: unknown): string[] {
  if (method === undefined) return ['logical'];
  if (typeof method === 'string') return [method];
  return Array.isArray(method) ? method.filter((item): item is string => typeof item === 'string') : [];
}

/**
 * Method 'pitr' on an engine Lifeboat runs point-in-time recovery for, on a self-managed server
 * (RDS and Aurora archive their own logs), and with a tier whose RPO the archive can keep. Its
 * block is the engine's: `pitr` for pgBackRest (PostgreSQL, required), `binlog` for binary-log
 * archiving (MySQL, MariaDB; optional unless the logical dumps are not there to be the bases).
 */
function pitrProblems(at: string, source: Loose, methods: readonly string[], tierName: string | undefined, tier: PartialTierSeconds | undefined): string[] {
  const wantsPitr = methods.includes('pitr');
  const engineName = asString(source.engine);
  const engine = engineName === undefined ? undefined : engineNamed(engineName);
  if (!wantsPitr) {
    const block = source.pitr !== undefined ? 'pitr' : source.binlog !== undefined ? 'binlog' : undefined;
    return block === undefined ? [] : [`${at}.${block}: given, but method does not include 'pitr' (valid: method: 'pitr' or ['logical', 'pitr'], or no ${block} block)`];
  }
  const problems: string[] = [];
  if (engine && !engine.pitr) {
    const offered = ENGINE_NAMES.map(engineOf).filter((candidate) => candidate.pitr).map((candidate) => candidate.label);
    problems.push(`${at}.method: 'pitr' is not offered for ${engine.label} yet (valid: 'logical'; 'pitr' is offered for ${offered.join(', ')})`);
  }
  const binlog = engine?.pitrKind === 'binlog';
  if (engine?.pitrKind === 'pgbackrest') {
    if (source.pitr === undefined) {
      problems.push(`${at}.pitr: required with method 'pitr' (valid: { host: { instanceId } or { tag: { key, value } }, dataDirectory, stanza?, osUser? })`);
    }
    if (source.binlog !== undefined) {
      problems.push(`${at}.binlog: binary-log archiving is MySQL's and MariaDB's; ${engine.label}'s point-in-time recovery is configured in pitr (valid: no binlog block)`);
    }
  }
  if (binlog) {
    if (source.pitr !== undefined) {
      problems.push(`${at}.pitr: pgBackRest is PostgreSQL's; ${engine.label}'s point-in-time recovery archives its binary logs and is configured in binlog ` +
        '(valid: binlog: { physical?: { host, dataDirectory?, osUser? } }, or no block)');
    }
    const physical = isObject(source.binlog) && source.binlog.physical !== undefined;
    if (!methods.includes('logical') && !physical) {
      problems.push(`${at}.method: 'pitr' alone leaves ${engine.label}'s archived binary logs without a base to replay them onto ` +
        "(valid: ['logical', 'pitr'], whose dumps record their binlog coordinates, or binlog.physical for mariadb-backup / xtrabackup bases on the host)");
    }
  }
  const host = isObject(source.connection) ? asString(source.connection.host) : undefined;
  const rds = host === undefined ? undefined : rdsEndpoint(host);
  if (rds) {
    problems.push(binlog
      ? `${at}.method: 'pitr' archives the binary logs of a self-managed server; ${host} is an RDS/Aurora endpoint, ` +
        "whose native point-in-time recovery Lifeboat governs instead (valid: method 'logical' for this source: its rds checks, alarms and drills cover point-in-time recovery)"
      : `${at}.method: 'pitr' runs pgBackRest on a host Lifeboat reaches through SSM; ${host} is an RDS/Aurora endpoint, ` +
        "whose own point-in-time recovery archives its logs (valid: method 'logical' for this source)");
  }
  if (tierName !== undefined && tier?.rpoSeconds !== undefined && tier.scheduleSeconds !== undefined) {
    const fields = { name: tierName, rpoSeconds: tier.rpoSeconds, scheduleSeconds: tier.scheduleSeconds };
    const { problem } = binlog ? binlogPlan(fields, false) : pitrPlan(fields);
    if (problem) problems.push(`${at}.tier: ${problem}`);
  }
  return problems;
}

/**
 * An RDS/Aurora source's native point-in-time recovery: the instance or cluster must be known
 * (written, or read off the endpoint host), one of the two, in the primary region (the drills'
 * state machine calls RDS there), and not next to method 'pitr' (pgBackRest on a host).
 */
function rdsProblems(at: string, source: Loose, methods: readonly string[], primaryRegion: string | undefined): string[] {
  const rds = source.rds;
  if (rds === false) return [];
  const host = isObject(source.connection) ? asString(source.connection.host) : undefined;
  const identity = host === undefined ? undefined : identifyRdsEndpoint(host);
  const written = isObject(rds) ? rds : undefined;
  if (!written && !identity) return [];
  if (written && written.instance !== undefined && written.cluster !== undefined) {
    return [`${at}.rds: give either instance or cluster, not both (got both; valid: instance for an RDS DB instance, cluster for an Aurora or Multi-AZ DB cluster)`];
  }
  const problems: string[] = [];
  const name = asString(source.name);
  if (name?.includes('--')) {
    problems.push(`${at}.name: "${name}" holds "--", which RDS refuses in the names Lifeboat gives this source's snapshot copies and drill instances (lifeboat-${name}-…, lbd-${name}-…) (valid: a name without "--", or rds: false)`);
  }
  const named = written && (written.instance !== undefined || written.cluster !== undefined);
  if (!named) {
    if (identity?.kind === 'undetectable') {
      problems.push(`${at}.rds: ${host} is ${identity.why}, so Lifeboat cannot tell which instance or cluster to govern ` +
        '(valid: rds: { instance: "<DBInstanceIdentifier>" } or rds: { cluster: "<DBClusterIdentifier>" }, or rds: false to only dump it)');
    } else if (!identity) {
      problems.push(`${at}.rds: ${host} is not an RDS endpoint, so the instance or cluster cannot be read off it ` +
        '(valid: rds: { instance: "<DBInstanceIdentifier>" } or rds: { cluster: "<DBClusterIdentifier>" })');
    }
  }
  if (identity && primaryRegion !== undefined && identity.region !== primaryRegion) {
    problems.push(`${at}.connection.host: an RDS endpoint in ${identity.region}, and Lifeboat's primary region is ${primaryRegion}: ` +
      `its checks and point-in-time drills call RDS in the primary region (valid: a deployment whose primary.region is ${identity.region} for this source, or rds: false to only dump it)`);
  }
  if (methods.includes('pitr') && written && !identity) {
    problems.push(`${at}.rds: an RDS/Aurora source's point-in-time recovery is the engine's own, and method 'pitr' runs pgBackRest on a host of its own (valid: method 'logical' with rds, or no rds)`);
  }
  return problems;
}

/**
 * `tlsCa` belongs to verify-full only (libpq reads a CA under "require" as "verify-ca", so it
 * would quietly change what require means), and verify-full needs a CA the image lacks for RDS
 * endpoints outside the commercial regions.
 */
function tlsProblems(at: string, connection: Loose): string[] {
  const mode = asString(connection.tls) ?? 'verify-full';
  const host = asString(connection.host);
  const ca = asString(connection.tlsCa);
  if (ca !== undefined && (mode === 'require' || mode === 'prefer')) {
    return [
      `${at}.connection.tlsCa: only tls "verify-full" checks the certificate against a CA bundle, and tls is "${mode}" ` +
        '(valid: tls "verify-full" with this tlsCa, or no tlsCa)',
    ];
  }
  if (ca === undefined && mode === 'verify-full' && host !== undefined && defaultCaFile(host) === undefined) {
    return [
      `${at}.connection.tlsCa: required for tls "verify-full" to "${host}": ${missingRdsCaHint(host)} ` +
        '(valid: the complete ARN of a Secrets Manager secret whose value is that bundle, or its absolute path in the worker image)',
    ];
  }
  return [];
}

/** The TLS of a valid source connection: verify-full and its CA unless the config says otherwise. */
export function resolveTls(connection: { host: string; tls?: ConfigTlsMode; tlsCa?: string }): Pick<SourceConnection, 'tls' | 'tlsCa'> {
  const tls = connection.tls ?? 'verify-full';
  if (tls !== 'verify-full') return { tls };
  const written = connection.tlsCa;
  const tlsCa: TlsCa = written === undefined
    ? { kind: 'file', path: defaultCaFile(connection.host) as string }
    : written.startsWith('arn:') ? { kind: 'secret', secretArn: written } : { kind: 'file', path: written };
  return { tls, tlsCa };
}

/** What a source's declared size takes to dump: at its declared throughput, or the conservative default. */
interface ExpectedDump {
  readonly size: string;
  readonly throughput: number;
  readonly seconds: number;
}

function expectedDump(source: Loose): ExpectedDump | undefined {
  const size = asString(source.sizeHint);
  const bytes = size === undefined ? undefined : parseSize(size);
  const throughputText = asString(source.dumpThroughputHint);
  const throughput = throughputText ? parseSize(throughputText) : DEFAULT_DUMP_THROUGHPUT_BYTES_PER_SECOND;
  if (size === undefined || bytes === undefined || throughput === undefined) return undefined;
  return { size, throughput, seconds: bytes / throughput };
}

/**
 * How old a source's newest backup can get before the next one is available: a slot's backup
 * lands at most the flexible window plus the dump after its slot, and the next slot is one
 * interval later. The window is the one the schedules use (backup-schedules.ts).
 */
function worstCaseAgeSeconds(scheduleSeconds: number, dumpSeconds: number): number {
  return scheduleSeconds + flexibleWindowFor({ scheduleSeconds }).toSeconds() + dumpSeconds;
}

/**
 * The longest whole-minute schedule that keeps the RPO with a dump of `dumpSeconds` and is not
 * shorter than that dump, or undefined when there is none. The window is at most 15 minutes,
 * so the search starts at most 15 minutes above the answer.
 */
function longestScheduleWithin(rpoSeconds: number, dumpSeconds: number): number | undefined {
  for (let minutes = Math.floor((rpoSeconds - dumpSeconds) / 60); minutes >= 1; minutes -= 1) {
    if (worstCaseAgeSeconds(minutes * 60, dumpSeconds) <= rpoSeconds) return minutes * 60 >= dumpSeconds ? minutes * 60 : undefined;
  }
  return undefined;
}

/**
 * Interval + flexible window + dump against the RPO. A tier whose interval and window alone
 * exceed its RPO is reported once, at its schedule, naming a schedule that also leaves room for
 * the longest dump of its sources; on any other tier, each source whose dump takes it past the
 * RPO is reported at its sizeHint. A source without a sizeHint counts as a dump of no time.
 */
function rpoProblems(tiers: Map<string, PartialTierSeconds>, dumps: readonly { at: string; tierName: string; dump: ExpectedDump }[]): string[] {
  const problems: string[] = [];
  const reported = new Set<string>();
  for (const [name, tier] of tiers) {
    const { rpoSeconds: rpo, scheduleSeconds: schedule } = tier;
    if (rpo === undefined || schedule === undefined) continue;
    if (schedule > rpo) {
      reported.add(name); // effectiveTiers has said so
      continue;
    }
    if (worstCaseAgeSeconds(schedule, 0) <= rpo) continue;
    reported.add(name);
    const window = flexibleWindowFor({ scheduleSeconds: schedule }).toSeconds();
    const longest = dumps.filter((entry) => entry.tierName === name).sort((a, b) => b.dump.seconds - a.dump.seconds)[0];
    const fits = longestScheduleWithin(rpo, longest?.dump.seconds ?? 0);
    const room = longest ? `, which leaves room for the ${formatDuration(longest.dump.seconds)} dump of ${longest.at}` : '';
    problems.push(
      `tiers.${name}.schedule: every "${tier.scheduleText}" with a flexible window of ${formatDuration(window)}, the newest backup can be ` +
        `${formatDuration(schedule + window)} old before the next dump has even started, more than the tier's RPO of "${tier.rpoText}" ` +
        `(valid: ${fits === undefined ? '' : `a schedule of at most ${formatDuration(fits)}${room}, or `}a longer rpo)`,
    );
  }
  for (const { at, tierName, dump } of dumps) {
    const tier = tiers.get(tierName);
    if (!tier || reported.has(tierName) || tier.rpoSeconds === undefined || tier.scheduleSeconds === undefined) continue;
    const age = worstCaseAgeSeconds(tier.scheduleSeconds, dump.seconds);
    if (age <= tier.rpoSeconds) continue;
    const window = flexibleWindowFor({ scheduleSeconds: tier.scheduleSeconds }).toSeconds();
    const fits = longestScheduleWithin(tier.rpoSeconds, dump.seconds);
    problems.push(
      `${at}.sizeHint: a "${dump.size}" database takes about ${formatDuration(dump.seconds)} to dump at ${formatSize(dump.throughput)}/s; ` +
        `every ${formatDuration(tier.scheduleSeconds)} with a flexible window of ${formatDuration(window)}, tier "${tierName}"'s newest backup ` +
        `can be ${formatDuration(age)} old, more than its RPO of ${formatDuration(tier.rpoSeconds)} (valid: a faster measured dumpThroughputHint, ` +
        `${fits === undefined ? '' : `a schedule of at most ${formatDuration(fits)} for tier "${tierName}", `}or a tier with a longer rpo)`,
    );
  }
  return problems;
}

interface PartialTierSeconds {
  rpoSeconds?: number;
  scheduleSeconds?: number;
  retentionSeconds?: number;
  /** As written (or defaulted), for messages. */
  rpoText?: unknown;
  scheduleText?: unknown;
}

/** Tier name → the seconds we could read, after merging overrides onto the defaults. */
function effectiveTiers(rawTiers: unknown, problems: string[]): Map<string, PartialTierSeconds> {
  const merged = new Map<string, TierInput>(Object.entries(DEFAULT_TIERS));
  if (isObject(rawTiers)) {
    for (const [name, raw] of Object.entries(rawTiers)) {
      if (!isObject(raw)) continue;
      const base = DEFAULT_TIERS[name];
      if (!base) {
        const missing = TIER_FIELDS.filter((field) => field !== 'timezone' && raw[field] === undefined);
        if (missing.length > 0) {
          problems.push(
            `tiers.${name}: custom tier is missing ${missing.join(', ')} ` +
              `(valid: a custom tier defines rpo, rto, schedule, retention and drill; only the defaults ${Object.keys(DEFAULT_TIERS).join(', ')} can be partial)`,
          );
        }
      }
      merged.set(name, { ...base, ...(raw as TierInput) });
    }
  }

  const result = new Map<string, PartialTierSeconds>();
  for (const [name, tier] of merged) {
    const seconds = (text: unknown) => (typeof text === 'string' ? parseDuration(text) : undefined);
    const rpo = seconds(tier.rpo);
    const schedule = seconds(tier.schedule);
    const retention = seconds(tier.retention);
    if (rpo !== undefined && schedule !== undefined && schedule > rpo) {
      problems.push(
        `tiers.${name}.schedule: "${tier.schedule}" is longer than the tier's RPO of "${tier.rpo}" ` +
          `(valid: a schedule interval of at most ${formatDuration(rpo)}, or a longer rpo)`,
      );
    }
    if (rpo !== undefined && retention !== undefined && retention <= rpo) {
      problems.push(
        `tiers.${name}.retention: "${tier.retention}" is not longer than the tier's RPO of "${tier.rpo}" ` +
          `(valid: a retention longer than ${formatDuration(rpo)}, or a backup could expire before the next one exists)`,
      );
    }
    const window = seconds(tier.pitrWindow);
    if (window !== undefined && window > RDS_MAX_PITR_WINDOW_DAYS * 86_400) {
      problems.push(
        `tiers.${name}.pitrWindow: "${tier.pitrWindow}" is longer than RDS and Aurora keep automated backups (${RDS_MAX_PITR_WINDOW_DAYS} days) ` +
          `(valid: at most ${RDS_MAX_PITR_WINDOW_DAYS}d; beyond that the tier's retention is kept by Lifeboat's logical dumps, not by point-in-time recovery)`,
      );
    } else if (window !== undefined && window < 86_400) {
      problems.push(`tiers.${name}.pitrWindow: "${tier.pitrWindow}" is shorter than a day, the shortest backup retention period RDS keeps (valid: 1d to ${RDS_MAX_PITR_WINDOW_DAYS}d)`);
    }
    result.set(name, { rpoSeconds: rpo, scheduleSeconds: schedule, retentionSeconds: retention, rpoText: tier.rpo, scheduleText: tier.schedule });
  }
  return result;
}

function resolve(parsed: ParsedConfig): LifeboatConfig {
  const tiers: Record<string, Tier> = {};
  for (const [name, defaults] of Object.entries(DEFAULT_TIERS)) tiers[name] = resolveTier(name, defaults);
  for (const [name, override] of Object.entries(parsed.tiers ?? {})) {
    tiers[name] = resolveTier(name, { ...DEFAULT_TIERS[name], ...override });
  }

  const sources: Source[] = parsed.sources.map((source) => ({
    name: source.name,
    engine: source.engine,
    methods: sourceMethods(source.method),
    ...(source.pitr ? { pitr: resolvePitr(source.name, source.pitr, tiers[source.tier]) } : {}),
    ...resolveBinlog(source, tiers[source.tier]),
    tier: tiers[source.tier],
    ...rdsOf(source, tiers[source.tier], parsed.primary.region),
    connection: {
      host: source.connection.host,
      port: source.connection.port ?? DEFAULT_PORTS[source.engine],
      databases: source.connection.databases ?? [source.connection.database as string],
      username: source.connection.username,
      passwordSecretArn: source.connection.passwordSecretArn,
      ...resolveTls(source.connection),
    },
    network: {
      vpcId: source.network.vpcId,
      subnetIds: source.network.subnetIds ?? [],
      securityGroupIds: source.network.securityGroupIds ?? [],
    },
    dumpOptions: {
      compression: source.dumpOptions?.compression,
      exactCountMaxBytes: source.dumpOptions?.exactCountMaxSize ? parseSize(source.dumpOptions.exactCountMaxSize) : undefined,
      excludeTables: source.dumpOptions?.excludeTables ?? [],
    },
    sizeHintBytes: source.sizeHint ? parseSize(source.sizeHint) : undefined,
    drillChecks: source.drillChecks ?? [],
  }));

  return {
    appName: parsed.appName ?? 'Lifeboat',
    primary: { region: parsed.primary.region, account: parsed.primary.account },
    offsite: {
      region: parsed.offsite.region,
      account: parsed.offsite.account,
      storageClass: parsed.offsite.storageClass ?? 'GLACIER_IR',
    },
    objectLock: {
      mode: parsed.objectLock?.mode === 'compliance' ? 'COMPLIANCE' : 'GOVERNANCE',
      offsiteMode: (parsed.objectLock?.offsiteMode ?? parsed.objectLock?.mode) === 'compliance' ? 'COMPLIANCE' : 'GOVERNANCE',
    },
    breakGlassRoleArn: parsed.breakGlassRoleArn,
    deploymentRoleArns: parsed.deploymentRoleArns,
    tiers,
    sources,
    notifications: {
      emails: parsed.notifications?.emails ?? [],
      httpsEndpoints: parsed.notifications?.httpsEndpoints ?? [],
      heartbeatUrls: parsed.notifications?.heartbeatUrls ?? [],
    },
  };
}

/** `method` as written ('pitr', or a list) → the distinct methods in a fixed order; logical by default. */
function sourceMethods(method: SourceMethod | readonly SourceMethod[] | undefined): SourceMethod[] {
  const written = method === undefined ? ['logical'] : typeof method === 'string' ? [method] : method;
  return SOURCE_METHODS.filter((known) => written.includes(known));
}

/** The source's RDS instance or cluster, when it has one (only called after validation). */
function rdsOf(source: ParsedConfig['sources'][number], tier: Tier, primaryRegion: string): { rds?: RdsNativeSource } {
  if (source.rds === false) return {};
  const identity = identifyRdsEndpoint(source.connection.host);
  const written = source.rds;
  const kind = written?.instance !== undefined ? 'instance' : written?.cluster !== undefined ? 'cluster' : identity?.kind;
  const identifier = written?.instance ?? written?.cluster ?? (identity && identity.kind !== 'undetectable' ? identity.identifier : undefined);
  if ((kind !== 'instance' && kind !== 'cluster') || identifier === undefined) return {};
  return {
    rds: {
      kind,
      identifier,
      detected: written?.instance === undefined && written?.cluster === undefined,
      region: identity?.region ?? primaryRegion,
      requiredWindowDays: tier.pitrWindowDays,
      manage: tier.manageNativeBackups,
      drill: {
        instanceClass: written?.drill?.instanceClass,
        subnetGroup: written?.drill?.subnetGroup,
        securityGroupIds: written?.drill?.securityGroupIds ?? source.network.securityGroupIds ?? [],
      },
    },
  };
}

function resolvePitr(name: string, pitr: NonNullable<ParsedConfig['sources'][number]['pitr']>, tier: Tier): PitrSource {
  // Only called after validation: the tier's RPO is one the archive can keep.
  return {
    host: pitr.host,
    stanza: pitr.stanza ?? name,
    dataDirectory: pitr.dataDirectory,
    osUser: pitr.osUser ?? 'postgres',
    marker: pitr.marker ?? false,
    plan: pitrPlan(tier).plan as PitrPlan,
  };
}

/** A MySQL/MariaDB source's binary-log archiving (only called after validation). */
function resolveBinlog(source: ParsedConfig['sources'][number], tier: Tier): { binlog?: BinlogSource } {
  const tools = engineOf(source.engine).binlogTools;
  if (!tools || !sourceMethods(source.method).includes('pitr')) return {};
  const physical = source.binlog?.physical;
  return {
    binlog: {
      ...tools,
      plan: binlogPlan(tier, physical !== undefined).plan as BinlogPlan,
      ...(physical
        ? { physical: { host: physical.host, dataDirectory: physical.dataDirectory ?? '/var/lib/mysql', osUser: physical.osUser ?? 'mysql' } }
        : {}),
    },
  };
}

function resolveTier(name: string, tier: TierInput): Tier {
  // Only called after validation: every field is present and parses.
  const seconds = (text: string | undefined) => parseDuration(text as string) as number;
  return {
    name,
    rpoSeconds: seconds(tier.rpo),
    rtoSeconds: seconds(tier.rto),
    scheduleSeconds: seconds(tier.schedule),
    timezone: tier.timezone ?? 'UTC',
    retentionSeconds: seconds(tier.retention),
    drillSeconds: seconds(tier.drill),
    pitrWindowDays: pitrWindowDays(tier),
    manageNativeBackups: tier.manageNativeBackups ?? false,
  };
}

/** The tier's `pitrWindow` in whole days (RDS keeps automated backups by the day), else its retention capped at 35 days. */
function pitrWindowDays(tier: TierInput): number {
  const written = tier.pitrWindow === undefined ? undefined : parseDuration(tier.pitrWindow);
  const seconds = written ?? Math.min(parseDuration(tier.retention as string) as number, RDS_MAX_PITR_WINDOW_DAYS * 86_400);
  return Math.max(1, Math.ceil(seconds / 86_400));
}
