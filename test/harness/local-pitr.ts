/**
 * The local AWS side with a PITR source running for the e2e tests of the PITR run and drill:
 * the synthesized templates IAM-true, a PostgreSQL 15 archiving into the primary bucket with
 * pgBackRest (seeded with the demo shop data, its stanza created), the SSM stand-in, and the
 * replicator copying the primary bucket to the offsite one. `denials()` lists what IAM refused.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LifeboatConfig, Source } from '../../lib/config';
import { startLocalAws, type LocalAws } from '../../local/aws';
import { startLocalPitrSource, type LocalPitrSource } from '../../local/pitr-host';
import { LocalReplicator } from '../../local/replicator';

export interface LocalPitr {
  readonly aws: LocalAws;
  readonly pitr: LocalPitrSource;
  denials(): string[];
  stop(): Promise<void>;
}

export async function startLocalPitr(config: LifeboatConfig, source: Source): Promise<LocalPitr> {
  const aws = await startLocalAws({ config });
  let pitr: LocalPitrSource | undefined;
  try {
    pitr = await startLocalPitrSource(aws, source, { seedSql: readFileSync(join(__dirname, '..', '..', 'local', 'demo-seed.sql'), 'utf8') });
  } catch (error) {
    await aws.stop();
    throw error;
  }
  const replicator = new LocalReplicator({
    source: aws.services.s3, sourceBucket: aws.services.primaryBucket, destination: aws.services.s3, destinationBucket: aws.services.offsiteBucket,
    intervalMs: 50, iam: { evaluator: aws.evaluator!, requests: aws.replicationRequests },
  });
  replicator.start();
  const started = pitr;
  return {
    aws,
    pitr: started,
    denials: () => (aws.evaluator?.denials ?? []).map((decision) => `${decision.request.principal} ${decision.request.action} ${decision.request.resource}`),
    stop: async () => {
      await replicator.stop();
      await started.stop();
      await aws.stop();
    },
  };
}
