import { Match, type Template } from 'aws-cdk-lib/assertions';

interface Resource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
}

/** The one resource of `type` whose properties match `props`: its logical id and properties. */
export function onlyResource(template: Template, type: string, props: unknown): { id: string; props: Record<string, unknown> } {
  const found = Object.entries(template.findResources(type, { Properties: props }) as Record<string, Resource>);
  if (found.length !== 1) {
    throw new Error(`expected exactly one ${type} matching ${JSON.stringify(props)}, found ${found.length}`);
  }
  const [id, resource] = found[0];
  return { id, props: resource.Properties };
}

/** The backup bucket (the one with Object Lock) of a storage stack. */
export function backupBucket(template: Template): { id: string; props: Record<string, unknown> } {
  return onlyResource(template, 'AWS::S3::Bucket', Match.objectLike({ ObjectLockEnabled: true }));
}

/** A policy document that contains the TLS-only deny statement. */
export const tlsOnlyStatement = Match.objectLike({
  Effect: 'Deny',
  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
});
