#!/usr/bin/env node
// The `lifeboat` command. The CLI is TypeScript run through tsx, so that `npx lifeboat`
// works in a checkout without a build step.
require('tsx/cjs');
require('../cli/main.ts').runCli(process.argv.slice(2));
