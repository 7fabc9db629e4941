import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { parseDrillReport, type DrillReport } from '../domain/drill-report';
import { DRILLS_PREFIX, drillReportKey } from '../domain/layout';
import { isRunId } from '../domain/run-id';

/** The drill ids of a source, oldest first (one listing of drills/<source>/, paginated). */
export async function listDrillIds(s3: S3Client, bucket: string, source: string): Promise<string[]> {
  const ids: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({
      Bucket: bucket, Prefix: `${DRILLS_PREFIX}${source}/`, Delimiter: '/', ContinuationToken: token,
    }));
    for (const prefix of page.CommonPrefixes ?? []) {
      const id = prefix.Prefix?.slice(`${DRILLS_PREFIX}${source}/`.length).replace(/\/$/, '');
      if (id && isRunId(id)) ids.push(id);
    }
    token = page.NextContinuationToken;
  } while (token);
  return ids.sort();
}

/** The newest drill report of a source, or undefined when it was never drilled. */
export async function latestDrillReport(s3: S3Client, bucket: string, source: string): Promise<DrillReport | undefined> {
  return (await recentDrillReports(s3, bucket, source, 1))[0];
}

/**
 * The newest `limit` readable drill reports of a source, newest first (fewer when there are
 * fewer). Reads one report at a time from the newest, so it costs one listing and about
 * `limit` reads.
 */
export async function recentDrillReports(s3: S3Client, bucket: string, source: string, limit: number): Promise<DrillReport[]> {
  const ids = await listDrillIds(s3, bucket, source);
  const reports: DrillReport[] = [];
  for (const id of ids.reverse()) {
    if (reports.length >= limit) break;
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: drillReportKey(source, id) }));
      reports.push(parseDrillReport(await (object.Body as { transformToString(): Promise<string> }).transformToString(), drillReportKey(source, id)));
    } catch (error) {
      // A drill that died before writing its report, or a damaged report: look further back.
      if ((error as Error).name !== 'NoSuchKey' && (error as Error).name !== 'InvalidDrillReport') throw error;
    }
  }
  return reports;
}
