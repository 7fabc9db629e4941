/**
 * `lifeboat pitr setup SOURCE` as SSM documents of the app: one `<app>-pitr-setup-<source>` per
 * PITR source, whose script is the one the command prints (lib/pitr/setup.ts) with this
 * deployment's bucket, key and region — pgBackRest at the images' version, pgbackrest.conf, the
 * archiving settings, the stanza created and checked. Run it on the host (Run Command, or State
 * Manager) instead of copying the printed script; the instance profile's policy is still the
 * command's to print (`lifeboat pitr setup SOURCE --only iam-policy`).
 */
import { Stack } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import type { Source } from '../config/types';
import { pitrHostSetup } from '../pitr/setup';

export function pitrSetupDocumentName(appName: string, source: string): string {
  return `${appName}-pitr-setup-${source}`;
}

export interface PitrSetupDocumentsProps {
  readonly appName: string;
  /** The sources with method 'pitr'. */
  readonly sources: readonly Source[];
  readonly bucket: s3.IBucket;
  readonly bucketKey: kms.IKey;
}

export class PitrSetupDocuments extends Construct {
  /** By source name. */
  public readonly documents: Readonly<Record<string, ssm.CfnDocument>>;

  constructor(scope: Construct, id: string, props: PitrSetupDocumentsProps) {
    super(scope, id);
    const region = Stack.of(this).region;
    const partition = region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
    const documents: Record<string, ssm.CfnDocument> = {};
    for (const source of props.sources.filter((candidate) => candidate.pitr)) {
      const setup = pitrHostSetup(source, { bucket: props.bucket.bucketName, region, keyArn: props.bucketKey.keyArn, partition });
      documents[source.name] = new ssm.CfnDocument(this, `Setup-${source.name}`, {
        name: pitrSetupDocumentName(props.appName, source.name),
        documentType: 'Command',
        documentFormat: 'JSON',
        updateMethod: 'NewVersion',
        content: {
          schemaVersion: '2.2',
          description: `Lifeboat: point-in-time recovery setup of ${source.name} on its host (lifeboat pitr setup ${source.name}); idempotent, as root`,
          mainSteps: [{ action: 'aws:runShellScript', name: 'pitrSetup', inputs: { timeoutSeconds: '1800', runCommand: setup.script.split('\n') } }],
        },
      });
    }
    this.documents = documents;
  }
}
