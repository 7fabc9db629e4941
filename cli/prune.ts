import { parseArgs } from 'node:util';
import { createS3Client } from '../lib/aws/s3-client';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../lib/config';
import { pruneSources, renderDecisionTable } from '../lib/retention/prune';
import { primaryBucketFromStack } from './status';

export const PRUNE_USAGE = `Usage: lifeboat prune [--config FILE] [--bucket BUCKET] [--region REGION] [--endpoint URL] [--source NAME] [--apply]

Applies each source's retention policy (derived from its tier) to its runs in the bucket (the
primary, or the offsite copy with --bucket) and prints the decision table: keep / remove /
skip-locked, with the reason for each run. A run the policy removes is kept while any version
of it is under Object Lock, as S3 stores it on the object (skip-locked: "kept: locked until
<date>"). Without --apply it is a dry run and deletes nothing; the daily pruner Lambdas are
what delete in production. The newest 3 verified runs of a source are never deleted, whatever
the policy says.
`;

/** `lifeboat prune`: 0 when it ran, 2 on invalid arguments. */
export async function pruneCommand(argv: readonly string[], env: NodeJS.ProcessEnv, log: (line: string) => void = console.log): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      config: { type: 'string', default: DEFAULT_CONFIG_FILE }, bucket: { type: 'string' }, region: { type: 'string' },
      endpoint: { type: 'string' }, source: { type: 'string' }, apply: { type: 'boolean', default: false },
    },
  });
  const config = loadConfig(values.config as string);
  const sources = values.source === undefined ? config.sources : config.sources.filter((source) => source.name === values.source);
  if (sources.length === 0) {
    log(`lifeboat prune: unknown source "${values.source}" (known: ${config.sources.map((source) => source.name).join(', ')})`);
    return 2;
  }
  const region = values.region ?? env.AWS_REGION ?? config.primary.region;
  const bucket = values.bucket ?? env.LIFEBOAT_BUCKET ?? (await primaryBucketFromStack(config, region));
  const s3 = createS3Client({ region, endpoint: values.endpoint, env });
  const dryRun = !values.apply;
  const results = await pruneSources({ s3, bucket, sources: sources.map(({ name, tier }) => ({ name, tier })), now: new Date(), dryRun });
  for (const result of results) {
    log(`${result.source} (${dryRun ? 'dry run: nothing deleted' : 'applied'}): keep ${result.kept}, remove ${result.removed}, skipped under Object Lock ${result.skippedLocked}`);
    log(renderDecisionTable(result.rows));
    log('');
  }
  return 0;
}
