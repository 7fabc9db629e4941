/**
 * The four default protection tiers from DESIGN.md. Every field can be overridden per
 * tier in the config, and custom tiers can be added next to them.
 */
export interface TierInput {
  readonly rpo?: string;
  readonly rto?: string;
  readonly schedule?: string;
  readonly timezone?: string;
  readonly retention?: string;
  readonly drill?: string;
}

export type CompleteTierInput = Required<TierInput>;

export const DEFAULT_TIERS: Readonly<Record<string, CompleteTierInput>> = {
  tier1: { rpo: '15m', rto: '1h', schedule: '15m', timezone: 'UTC', retention: '90d', drill: '1d' },
  tier2: { rpo: '1h', rto: '4h', schedule: '1h', timezone: 'UTC', retention: '30d', drill: '7d' },
  tier3: { rpo: '24h', rto: '24h', schedule: '24h', timezone: 'UTC', retention: '7d', drill: '30d' },
  tier4: { rpo: '7d', rto: '7d', schedule: '7d', timezone: 'UTC', retention: '1y', drill: '90d' },
};

export const TIER_FIELDS = ['rpo', 'rto', 'schedule', 'timezone', 'retention', 'drill'] as const;

/**
 * Throughput assumed for a logical dump when a source does not declare its own, in bytes
 * per second. Deliberately conservative: pg_dump -Z1 measured about 175 MB/s on a local
 * server; across a VPC to RDS a third of that is a safer planning figure.
 */
export const DEFAULT_DUMP_THROUGHPUT_BYTES_PER_SECOND = 50e6;
