/**
 * docs/permissions.md is generated from the synthesized templates (local/permissions.ts): it
 * must be what the stacks say today. After a change to a grant: `npm run docs:permissions`.
 */
import { readFileSync } from 'node:fs';
import { examplePermissions, PERMISSIONS_DOC } from '../../local/permissions';

test('docs/permissions.md is the permissions of the synthesized stacks (regenerate: npm run docs:permissions)', () => {
  const generated = examplePermissions();
  expect(readFileSync(PERMISSIONS_DOC, 'utf8')).toBe(generated);
  // Every role of both stacks is in it, with the one writer of each run document.
  expect(generated).toMatch(/\| lifeboat\/dump\/DumpordersTaskRole \| Lifeboat-Primary \(111111111111\) \|/);
  expect(generated).toMatch(/\| lifeboat\/operator\/Lifeboat-offsite-restore-eu-central-1 \| Lifeboat-Offsite \(222222222222\) \|/);
  expect(generated).toMatch(/\| ‹primary bucket› \| OnlyWritersVerification \| AWS \* \| \*\*never\*\* s3:PutObject on ‹primary bucket›\/runs\/\*\/verification\.json when aws:PrincipalArn ArnNotLike ‹role BackupRunCommitServiceRole› \|/);
});
