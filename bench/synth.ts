/**
 * npm run bench:synth — how the CDK synth grows with the number of sources: a generated config
 * of 100 and of 1,000 sources, each synthesized in its own child process (so each peak RSS is
 * its own), LIFEBOAT_BENCH_REPEAT times alternately (default 3); the median pair is the figure.
 *
 * Printed per size: the synth's wall and CPU time (createStacks + app.synth(), in the child),
 * the child's wall time (node, tsx and aws-cdk-lib loading included), its peak RSS
 * (process.resourceUsage().maxRSS, what GNU time's %M reports), and every template's size,
 * resources, parameters and outputs. Then the 1000/100 ratios of time, RSS and template
 * bytes next to the linear bound (10x), the cost of each source beyond the first 100, and
 * whether growth is at most linear (judged on CPU time: wall time drifts with the machine's load).
 *
 * The synth is `cdk synth`'s (the feature flags of cdk.json) without asset bundling: the
 * Lambda bundles are the same for any number of sources, and esbuild's seconds would only
 * flatter the ratio. LIFEBOAT_BENCH_SCALE=0.1 runs 10 and 100 sources (a quick check, not the
 * figures).
 *
 * generatedConfig() is also the tests' generated config (test/constructs/scale.test.ts,
 * template-limits.test.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { LifeboatConfig, Source, Tier } from '../lib/config/types';
import { engineOf } from '../lib/engines/registry';
import { createStacks } from '../lib/stacks';
import { testApp } from '../test/fixtures/cdk-app';
import { testConfig, tier1, tier3 } from '../test/fixtures/config';
import { median, REPEAT, SCALE } from './timing';

const DAY = 86_400;
/** Four tiers, from a 15-minute to a weekly schedule: the sources cycle through them. */
export const GENERATED_TIERS: readonly Tier[] = [
  tier1,
  { ...tier1, name: 'tier2', rpoSeconds: 3600, scheduleSeconds: 3600, drillSeconds: 7 * DAY },
  tier3,
  { ...tier3, name: 'tier4', rpoSeconds: 7 * DAY, scheduleSeconds: 7 * DAY, drillSeconds: 90 * DAY },
];

/**
 * The test config with `count` generated sources `db-0`, `db-1`, …: PostgreSQL and MariaDB in
 * turn, the four tiers in turn, each with its own host, database, secret and security group.
 */
export function generatedConfig(count: number): LifeboatConfig {
  const [template] = testConfig.sources;
  const sources: Source[] = Array.from({ length: count }, (_, i) => {
    const engine = i % 2 === 0 ? 'postgres' : 'mariadb';
    return {
      ...template,
      name: `db-${i}`,
      engine,
      tier: GENERATED_TIERS[i % GENERATED_TIERS.length],
      connection: {
        ...template.connection,
        host: `db-${i}.cluster-abc.eu-west-1.rds.amazonaws.com`,
        port: engineOf(engine).defaultPort,
        databases: [`app${i}`],
        passwordSecretArn: `arn:aws:secretsmanager:eu-west-1:111111111111:secret:lifeboat/db-${i}-AbCdEf`,
      },
      network: { vpcId: 'vpc-0123456789abcdef0', subnetIds: ['subnet-0aaa', 'subnet-0bbb'], securityGroupIds: [`sg-${i}`] },
      // Aurora clusters, as their endpoints say: their native PITR is checked, copied offsite and drilled too.
      rds: {
        kind: 'cluster', identifier: `db-${i}`, detected: true, region: 'eu-west-1', requiredWindowDays: 7, manage: false,
        drill: { securityGroupIds: [`sg-${i}`] },
      },
      drillChecks: [],
    } as Source;
  });
  return { ...testConfig, tiers: Object.fromEntries(GENERATED_TIERS.map((tier) => [tier.name, tier])), sources };
}

export interface TemplateFigures {
  /** The template file's name in the cloud assembly. */
  readonly file: string;
  /** Bytes of the template as written (what `cdk deploy` uploads). */
  readonly bytes: number;
  readonly resources: number;
  readonly parameters: number;
  readonly outputs: number;
  readonly mappings: number;
}

/** Every template of a cloud assembly (stacks and nested stacks), largest first. */
export function templateFigures(assemblyDirectory: string): TemplateFigures[] {
  return readdirSync(assemblyDirectory).filter((file) => file.endsWith('.template.json')).map((file) => {
    const full = path.join(assemblyDirectory, file);
    const template = JSON.parse(readFileSync(full, 'utf8')) as Record<string, object | undefined>;
    const count = (section: string) => Object.keys(template[section] ?? {}).length;
    return {
      file, bytes: statSync(full).size,
      resources: count('Resources'), parameters: count('Parameters'), outputs: count('Outputs'), mappings: count('Mappings'),
    };
  }).sort((a, b) => b.bytes - a.bytes);
}

interface ChildResult {
  readonly sources: number;
  readonly synthSeconds: number;
  /** CPU seconds (user + system) of the synth: on a shared machine, steadier than its wall time. */
  readonly synthCpuSeconds: number;
  readonly processSeconds: number;
  readonly maxRssKiB: number;
  readonly templates: readonly TemplateFigures[];
}

const RESULT_PREFIX = 'bench-synth-result=';

/** In the child: synthesize `count` sources (into CDK_OUTDIR), print the figures as one JSON line. */
function child(count: number): void {
  const started = process.hrtime.bigint();
  const cpuStarted = process.cpuUsage();
  const app = testApp();
  createStacks(app, generatedConfig(count));
  const assembly = app.synth();
  const synthSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuStarted);
  const result: Omit<ChildResult, 'processSeconds'> = {
    sources: count,
    synthSeconds,
    synthCpuSeconds: (cpu.user + cpu.system) / 1e6,
    // Linux reports kilobytes (KiB), like GNU time's %M.
    maxRssKiB: process.resourceUsage().maxRSS,
    templates: templateFigures(assembly.directory),
  };
  console.log(`${RESULT_PREFIX}${JSON.stringify(result)}`);
}

/** Runs this file as a child (same node, same tsx loader) for `count` sources. */
function synthInChild(count: number): Promise<ChildResult> {
  const outdir = mkdtempSync(path.join(tmpdir(), 'lifeboat-bench-synth-'));
  return new Promise<ChildResult>((resolve, reject) => {
    const started = process.hrtime.bigint();
    const proc = spawn(process.execPath, [...process.execArgv, __filename, 'child', String(count)], {
      env: { ...process.env, CDK_OUTDIR: outdir, CDK_DISABLE_CLI_TELEMETRY: 'true' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    proc.stdout.on('data', (chunk) => { output += chunk; });
    proc.stderr.on('data', (chunk) => { output += chunk; });
    proc.on('error', reject);
    proc.on('close', (code) => {
      const processSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      const line = output.split('\n').find((candidate) => candidate.startsWith(RESULT_PREFIX));
      if (code !== 0 || !line) return reject(new Error(`synth of ${count} sources exited ${code}:\n${output.slice(-3000)}`));
      resolve({ ...(JSON.parse(line.slice(RESULT_PREFIX.length)) as Omit<ChildResult, 'processSeconds'>), processSeconds });
    });
  }).finally(() => rmSync(outdir, { recursive: true, force: true }));
}

const KB = 1000;
const MIB = 1024;

async function main(): Promise<void> {
  const small = Math.max(1, Math.round(100 * SCALE));
  const large = small * 10;
  const pairs: { small: ChildResult; large: ChildResult }[] = [];
  for (let i = 0; i < REPEAT; i++) {
    // Alternate, so that each ratio compares neighbouring runs on a VM whose speed drifts.
    pairs.push({ small: await synthInChild(small), large: await synthInChild(large) });
    const last = pairs[pairs.length - 1];
    const seconds = (result: ChildResult) => `${result.synthSeconds.toFixed(1)} s (CPU ${result.synthCpuSeconds.toFixed(1)} s)`;
    console.log(`pair ${i + 1}/${REPEAT}: ${small} sources ${seconds(last.small)}, ${large} sources ${seconds(last.large)}`);
  }
  const timeRatios = pairs.map((pair) => pair.large.synthSeconds / pair.small.synthSeconds);
  const cpuRatios = pairs.map((pair) => pair.large.synthCpuSeconds / pair.small.synthCpuSeconds);
  // The figures are the pair whose CPU ratio is the median: wall time drifts with the machine's load.
  const chosen = pairs[cpuRatios.indexOf(median(cpuRatios))];
  const bound = large / small;

  const row = (label: string, value: string) => console.log(`  ${label.padEnd(52)} ${value}`);
  console.log(`\nSynth benchmark (${small} and ${large} generated sources, the median of ${REPEAT} pairs, ${new Date().toISOString()})`);
  for (const result of [chosen.small, chosen.large]) {
    console.log(`${result.sources} sources:`);
    row('synth (createStacks + app.synth())', `${result.synthSeconds.toFixed(2)} s, CPU ${result.synthCpuSeconds.toFixed(2)} s`);
    row('child process (node, tsx, aws-cdk-lib included)', `${result.processSeconds.toFixed(2)} s`);
    row('peak RSS of the child', `${(result.maxRssKiB / MIB).toFixed(0)} MiB`);
    row(`templates (${result.templates.length}), largest first`, 'bytes / resources / parameters / outputs');
    for (const template of result.templates) {
      row(`  ${template.file}`, `${(template.bytes / KB).toFixed(1)} kB / ${template.resources} / ${template.parameters} / ${template.outputs}`);
    }
  }
  const rssRatio = chosen.large.maxRssKiB / chosen.small.maxRssKiB;
  const bytesOf = (result: ChildResult, file: string) => result.templates.find((template) => template.file === file)?.bytes ?? 0;
  const total = (result: ChildResult) => result.templates.reduce((sum, template) => sum + template.bytes, 0);
  // The stacks' own templates (not the shards, whose number grows with the sources).
  const stackFiles = chosen.small.templates.map((template) => template.file).filter((file) => !file.endsWith('.nested.template.json'));
  const templateRatios = stackFiles.map((file) => [file, bytesOf(chosen.large, file) / bytesOf(chosen.small, file)] as const);
  const totalRatio = total(chosen.large) / total(chosen.small);
  const extra = large - small;
  console.log(`ratios ${large}/${small} sources (linear bound ${bound.toFixed(0)}x):`);
  row(`synth CPU time, median of ${REPEAT}`, `${median(cpuRatios).toFixed(2)}x (each: ${cpuRatios.map((r) => r.toFixed(2)).join(', ')})`);
  row(`synth wall time, median of ${REPEAT}`, `${median(timeRatios).toFixed(2)}x (each: ${timeRatios.map((r) => r.toFixed(2)).join(', ')})`);
  row('child process time', `${(chosen.large.processSeconds / chosen.small.processSeconds).toFixed(2)}x`);
  row('peak RSS', `${rssRatio.toFixed(2)}x`);
  for (const [file, ratio] of templateRatios) row(`template ${file}`, `${ratio.toFixed(2)}x`);
  row(`all templates (${(total(chosen.small) / KB).toFixed(0)} kB, ${(total(chosen.large) / KB).toFixed(0)} kB)`, `${totalRatio.toFixed(2)}x`);
  // The fixed cost (the shared stacks, loading aws-cdk-lib) flatters the ratios: the cost of
  // one more source is the figure that shows a superlinear term.
  console.log(`each source beyond ${small} costs (each of the first ${small}, fixed costs included):`);
  row('synth CPU time', `${((chosen.large.synthCpuSeconds - chosen.small.synthCpuSeconds) / extra * 1000).toFixed(1)} ms (${(chosen.small.synthCpuSeconds / small * 1000).toFixed(1)} ms)`);
  row('peak RSS', `${((chosen.large.maxRssKiB - chosen.small.maxRssKiB) / extra).toFixed(0)} KiB (${(chosen.small.maxRssKiB / small).toFixed(0)} KiB)`);
  // The verdict takes CPU time, not wall time: on a shared machine a neighbour's load alone can
  // stretch one run's wall time several-fold (every pair's wall ratio is printed above).
  const linear = [median(cpuRatios), rssRatio, totalRatio, ...templateRatios.map(([, ratio]) => ratio)].every((ratio) => ratio <= bound);
  console.log(linear
    ? `growth is at most linear: synth CPU time, peak RSS and every stack's template grow by at most ${bound.toFixed(0)}x for ${bound.toFixed(0)}x the sources`
    : `growth is FASTER than linear: at least one ratio above (CPU time, RSS, templates) is over ${bound.toFixed(0)}x`);
}

if (require.main === module) {
  if (process.argv[2] === 'child') {
    child(Number(process.argv[3]));
  } else {
    main().catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
  }
}
