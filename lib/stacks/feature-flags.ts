import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The context of the repository's cdk.json (feature flags): what `cdk synth` gives the app.
 * Apps built in-process (the CLI's synth, tests) pass it too, so they synthesize the same
 * templates as the CDK CLI does.
 */
export function cdkJsonContext(): Record<string, unknown> {
  const file = path.join(__dirname, '..', '..', 'cdk.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { context: Record<string, unknown> }).context;
}
