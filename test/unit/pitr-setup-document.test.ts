/** `lifeboat pitr setup` as the app's SSM document: the same script, with the deployment's bucket and key. */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { loadConfig } from '../../lib/config';
import { PGBACKREST_VERSION } from '../../lib/domain/versions';
import { createStacks } from '../../lib/stacks';
import { cdkJsonContext } from '../../lib/stacks/feature-flags';

test('one setup document per PITR source: pgBackRest at the images\' version, the repository in this bucket under pitr/<source>/, SSE-KMS with this key', () => {
  const config = loadConfig('lifeboat.config.ts');
  const app = new App({ context: cdkJsonContext() });
  const { primary } = createStacks(app, config);
  const template = Template.fromStack(primary);
  const documents = Object.values(template.findResources('AWS::SSM::Document'))
    .map((resource) => (resource as { Properties: { Name: string; Content: { mainSteps: { inputs: { runCommand: unknown[] } }[] } } }).Properties)
    .filter((document) => document.Name.startsWith('Lifeboat-pitr-setup-'));
  expect(documents.map((document) => document.Name)).toEqual(['Lifeboat-pitr-setup-ledger']);
  const script = JSON.stringify(documents[0].Content.mainSteps[0].inputs.runCommand);
  expect(script).toContain(`'pgbackrest=${PGBACKREST_VERSION}-*'`);
  expect(script).toContain('repo1-path=/pitr/ledger');
  expect(script).toContain('pgbackrest --stanza=ledger stanza-create');
  // The bucket and the key are the deployment's own (references the template resolves), not placeholders.
  expect(script).toMatch(/"Ref":"BackupsBucket[0-9A-F]+"/);
  expect(script).toMatch(/"Fn::GetAtt":\["BackupsKey[0-9A-F]+","Arn"\]/);
  // The host never expires: no expire command, and pgBackRest's own expiry off.
  expect(script).toContain('expire-auto=n');
  expect(script).not.toMatch(/pgbackrest [^"]*\bexpire\b/);
});
