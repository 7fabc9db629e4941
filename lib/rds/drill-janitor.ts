/**
 * The RDS drill janitor's decision and its deletes (lambdas/native-drill-janitor/handler.ts,
 * hourly): every DB instance and cluster tagged `lifeboat:drill` (the drills tag what they make;
 * the tag's value is the source) older than `maxAgeHours` is a leftover of a drill whose
 * execution could not delete it (stopped by hand, a failed delete, an account limit): it is
 * deleted without a final snapshot. Nothing untagged is ever touched, whatever its name. An
 * instance of a leftover cluster goes first (a cluster with instances cannot be deleted).
 * Idempotent: a resource already being deleted, or gone, is skipped.
 */
import {
  DeleteDBClusterCommand, DeleteDBInstanceCommand, paginateDescribeDBClusters,
  paginateDescribeDBInstances, type DBCluster, type DBInstance, type RDSClient, type Tag,
} from '@aws-sdk/client-rds';
import { DRILL_CREATED_TAG, DRILL_TAG } from './drill-target';

export interface DrillLeftover {
  readonly kind: 'instance' | 'cluster';
  readonly identifier: string;
  /** The tag's value: the source whose drill made it. */
  readonly source: string;
  readonly createdAt: Date;
  readonly ageHours: number;
}

export interface JanitorDecision {
  readonly leftovers: DrillLeftover[];
  /** Tagged drills younger than maxAgeHours (a drill may still be running). */
  readonly young: DrillLeftover[];
}

const tagValue = (tags: readonly Tag[] | undefined, key: string) => tags?.find((tag) => tag.Key === key)?.Value;

/** Pure: which of the listed instances and clusters are drill leftovers. */
export function decideLeftovers(
  instances: readonly DBInstance[], clusters: readonly DBCluster[], now: Date, maxAgeHours: number,
): JanitorDecision {
  const leftovers: DrillLeftover[] = [];
  const young: DrillLeftover[] = [];
  const consider = (kind: 'instance' | 'cluster', identifier: string | undefined, tags: readonly Tag[] | undefined, created: Date | undefined, status: string | undefined) => {
    const source = tagValue(tags, DRILL_TAG);
    if (!identifier || !source) return;
    if (status === 'deleting') return;
    const createdTag = tagValue(tags, DRILL_CREATED_TAG);
    const createdAt = created ?? (createdTag && !Number.isNaN(Date.parse(createdTag)) ? new Date(createdTag) : undefined);
    // No time at all: treat it as old (it carries the drill tag, so a drill made it).
    const at = createdAt ?? new Date(0);
    const ageHours = (now.getTime() - at.getTime()) / 3_600_000;
    (ageHours >= maxAgeHours ? leftovers : young).push({ kind, identifier, source, createdAt: at, ageHours });
  };
  for (const instance of instances) consider('instance', instance.DBInstanceIdentifier, instance.TagList, instance.InstanceCreateTime, instance.DBInstanceStatus);
  for (const cluster of clusters) consider('cluster', cluster.DBClusterIdentifier, cluster.TagList, cluster.ClusterCreateTime, cluster.Status);
  // Instances first: a cluster is deleted once its instances are.
  leftovers.sort((a, b) => (a.kind === b.kind ? a.identifier.localeCompare(b.identifier) : a.kind === 'instance' ? -1 : 1));
  return { leftovers, young };
}

export interface JanitorResult {
  readonly region: string;
  readonly deleted: DrillLeftover[];
  readonly failed: { readonly leftover: DrillLeftover; readonly error: string }[];
  readonly young: DrillLeftover[];
}

const GONE = new Set(['DBInstanceNotFoundFault', 'DBClusterNotFoundFault', 'InvalidDBInstanceStateFault', 'InvalidDBClusterStateFault']);

/** Lists one region's instances and clusters (tags in the Describe output), deletes the leftovers. */
export async function cleanDrillLeftovers(opts: {
  readonly rds: RDSClient; readonly region: string; readonly now: Date; readonly maxAgeHours: number; readonly log?: (line: string) => void;
}): Promise<JanitorResult> {
  const log = opts.log ?? (() => undefined);
  const instances: DBInstance[] = [];
  for await (const page of paginateDescribeDBInstances({ client: opts.rds }, {})) instances.push(...(page.DBInstances ?? []));
  const clusters: DBCluster[] = [];
  for await (const page of paginateDescribeDBClusters({ client: opts.rds }, {})) clusters.push(...(page.DBClusters ?? []));
  const decision = decideLeftovers(instances, clusters, opts.now, opts.maxAgeHours);
  const deleted: DrillLeftover[] = [];
  const failed: { leftover: DrillLeftover; error: string }[] = [];
  for (const leftover of decision.leftovers) {
    try {
      if (leftover.kind === 'instance') {
        await opts.rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: leftover.identifier, SkipFinalSnapshot: true, DeleteAutomatedBackups: true }));
      } else {
        await opts.rds.send(new DeleteDBClusterCommand({ DBClusterIdentifier: leftover.identifier, SkipFinalSnapshot: true }));
      }
      deleted.push(leftover);
      log(`deleted the drill ${leftover.kind} ${leftover.identifier} of ${leftover.source} in ${opts.region} (${leftover.ageHours.toFixed(1)} h old, over ${opts.maxAgeHours} h)`);
    } catch (error) {
      const name = (error as Error).name;
      if (GONE.has(name)) {
        log(`the drill ${leftover.kind} ${leftover.identifier} is already gone or being deleted (${name})`);
        continue;
      }
      failed.push({ leftover, error: `${name}: ${(error as Error).message}` });
      log(`could not delete the drill ${leftover.kind} ${leftover.identifier}: ${name}: ${(error as Error).message}`);
    }
  }
  return { region: opts.region, deleted, failed, young: decision.young };
}

