/** Names Lifeboat gives what it creates in RDS: its cluster snapshot copies and its drill instances. */

/** The offsite copies of a cluster source's automated snapshots: `lifeboat-<source>-<yyyymmddhhmm>`. */
export function snapshotCopyPrefix(source: string): string {
  return `lifeboat-${source}-`;
}
