import { Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { LifeboatConfig } from '../../lib/config/types';
import { createStacks } from '../../lib/stacks';
import { testApp } from '../fixtures/cdk-app';
import { testConfig } from '../fixtures/config';

// cdk-nag 3 is a policy-validation plugin: `validateScope` runs the AwsSolutions pack on a
// construct tree directly, without an App-level synth. Suppressions are CDK acknowledgements.
const variants: [string, LifeboatConfig][] = [
  ['same account', testConfig],
  ['cross account', { ...testConfig, offsite: { ...testConfig.offsite, account: '222222222222' } }],
  ['environment-agnostic', { ...testConfig, primary: { region: 'eu-west-1' } }],
];
const stacks: [string, Stack][] = variants.flatMap(([name, config]) => {
  const { primary, offsite } = createStacks(testApp(), config);
  return [
    [`${name} primary`, primary],
    [`${name} offsite`, offsite],
  ] as [string, Stack][];
});

/** The pack with cdk-nag's (private) acknowledgement lookup disabled: what would be reported. */
class UnacknowledgedChecks extends AwsSolutionsChecks {}
Object.defineProperty(UnacknowledgedChecks.prototype, 'isAcknowledged', { value: () => false });

function acknowledgements(stack: Stack): { path: string; id: string; reason: string }[] {
  return stack.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason,
        })),
      ),
  );
}

describe.each(stacks)('%s stack', (_name, stack) => {
  test('has no unacknowledged AwsSolutions finding, error or warning', () => {
    const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack);
    expect(report.violations.map((v) => `${v.severity} ${v.ruleName}: ${v.description}`)).toEqual([]);
    expect(report.success).toBe(true);
  });

  test('acknowledges only findings that would otherwise be reported, each with a reason', () => {
    const wouldReport = new UnacknowledgedChecks().validateScope(stack).violations.map((v) => v.ruleName);
    for (const ack of acknowledgements(stack)) {
      expect(wouldReport).toContain(ack.id);
      expect(ack.reason.length).toBeGreaterThanOrEqual(40);
    }
  });
});

test('the disabled lookup does reveal the acknowledged findings (the check above can fail)', () => {
  const [, primary] = stacks[0];
  expect(acknowledgements(primary).length).toBeGreaterThan(0);
  // The primary stack's tree holds its source shards (nested stacks): their acknowledgements
  // (e.g. the dump task's runs/orders/* writes, found nowhere else) are checked above too.
  expect(acknowledgements(primary).filter((ack) => ack.path.includes('/Sources-1/Dump-orders/')).length).toBeGreaterThan(0);
  expect(new UnacknowledgedChecks().validateScope(primary).violations.map((v) => v.ruleName))
    .toContain(acknowledgements(primary).find((ack) => ack.path.includes('/Sources-1/Dump-orders/TaskRole'))?.id);
  expect(new UnacknowledgedChecks().validateScope(primary).violations.length).toBeGreaterThan(0);
});
