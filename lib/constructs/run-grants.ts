import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { RUNS_PREFIX } from '../domain/layout';
import { acknowledgeWildcardResource } from './nag';

/**
 * The grants on the runs of a backup bucket, narrowed to what a role does with them. Readers
 * read exact versions (the manifest names them), so every read grant carries
 * s3:GetObjectVersion beside s3:GetObject; a writer writes one JSON document of a run with its
 * Object Lock (s3:PutObjectRetention), and nothing else.
 */
export class RunGrants {
  constructor(
    private readonly bucket: s3.IBucket,
    private readonly key: kms.IKey,
  ) {}

  /** Every object of every run (artifacts too), listing, decryption. */
  readRuns(role: iam.IRole, reason: string): void {
    const objects = this.bucket.arnForObjects(`${RUNS_PREFIX}*`);
    this.read(role, [objects]);
    acknowledgeWildcardResource(role, objects, reason);
  }

  /** Only the named JSON documents of any run (`manifest.json`, …), listing, decryption. */
  readDocuments(role: iam.IRole, files: readonly string[]): void {
    const objects = files.map((file) => this.bucket.arnForObjects(`${RUNS_PREFIX}*/${file}`));
    this.read(role, objects);
    for (const [index, file] of files.entries()) {
      acknowledgeWildcardResource(role, objects[index], `Reads ${file} of any run, whose key is made at run time; no artifact is readable.`);
    }
  }

  /** One JSON document of any run, written once with its Object Lock. */
  writeDocument(role: iam.IRole, file: string): void {
    const objects = this.bucket.arnForObjects(`${RUNS_PREFIX}*/${file}`);
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:PutObjectRetention'], resources: [objects] }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:GenerateDataKey'], resources: [this.key.keyArn] }));
    acknowledgeWildcardResource(role, objects, `Writes ${file} of a run, whose key is only known at run time; the bucket policy lets no other role write it.`);
  }

  private read(role: iam.IRole, objects: readonly string[]): void {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:GetObjectVersion'], resources: [...objects] }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [`${RUNS_PREFIX}*`] } },
    }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [this.key.keyArn] }));
  }
}
