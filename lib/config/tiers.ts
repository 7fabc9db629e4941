/**
 * The four default protection tiers. Every field can be overridden per tier in the config, and
 * custom tiers can be added next to them.
 */
export interface TierInput {
  readonly rpo?: string;
  readonly rto?: string;
  readonly schedule?: string;
  readonly timezone?: string;
  readonly retention?: string;
  readonly drill?: string;
  /**
   * The point-in-time window an RDS/Aurora source of this tier must keep (its automated backups'
   * retention period); at most 35 days, what RDS keeps.
   * @default - the tier's retention, capped at 35 days
   */
  readonly pitrWindow?: string;
  /**
   * Whether Lifeboat may change the native backup settings of this tier's RDS/Aurora sources
   * (raise their backup retention to the window, start the replication of their automated
   * backups to the offsite region). Off, it only checks and alarms.
   * @default false
   */
  readonly manageNativeBackups?: boolean;
}

/** Every tier field the defaults give; `pitrWindow` and `manageNativeBackups` are derived or off. */
export type CompleteTierInput = Required<Omit<TierInput, 'pitrWindow' | 'manageNativeBackups'>>;

/** The longest backup retention period RDS and Aurora keep automated backups (and so a point-in-time window) for. */
export const RDS_MAX_PITR_WINDOW_DAYS = 35;

/**
 * The RPOs, RTOs, retentions and drills are DESIGN.md's. The schedules are shorter than its
 * table's (every 15 minutes, hourly, daily, weekly): the newest backup can be one interval plus
 * the flexible window plus the dump old before the next one lands, so a schedule equal to the
 * RPO can never keep it, and the config validator refuses it. Each default leaves room for a
 * dump: tier1's 5 minutes (1-minute window) leave 9 minutes within 15, tier2's 30 (6) leave 24
 * within the hour, tier3's 12 hours (15 minutes) leave 11h 45m within a day, and tier4's 6 days
 * (15 minutes) leave 23h 45m within a week.
 */
export const DEFAULT_TIERS: Readonly<Record<string, CompleteTierInput>> = {
  tier1: { rpo: '15m', rto: '1h', schedule: '5m', timezone: 'UTC', retention: '90d', drill: '1d' },
  tier2: { rpo: '1h', rto: '4h', schedule: '30m', timezone: 'UTC', retention: '30d', drill: '7d' },
  tier3: { rpo: '24h', rto: '24h', schedule: '12h', timezone: 'UTC', retention: '7d', drill: '30d' },
  tier4: { rpo: '7d', rto: '7d', schedule: '6d', timezone: 'UTC', retention: '1y', drill: '90d' },
};

export const TIER_FIELDS = ['rpo', 'rto', 'schedule', 'timezone', 'retention', 'drill'] as const;

/**
 * Throughput assumed for a logical dump when a source does not declare its own, in bytes
 * per second. Deliberately conservative: pg_dump -Z1 measured about 175 MB/s on a local
 * server; across a VPC to RDS a third of that is a safer planning figure.
 */
export const DEFAULT_DUMP_THROUGHPUT_BYTES_PER_SECOND = 50e6;
