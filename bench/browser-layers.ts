// Where Chromium's time per layer differs from Node's: npm run bench's seeded ResNet-50 (or -18) on
// one thread, each layer timed alone (src/cli/profile.ts layerTimes), in a module worker of Debian's
// Chromium and in this Node process, in alternating rounds; each layer's fastest time over all
// rounds, as the host is shared. Prints a Markdown table per conv path and the layers that differ most.
//
//   node --import tsx bench/browser-layers.ts [--depth 50 --rounds 8 --runs 5]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { positiveInteger } from '../src/cli/command.ts';
import { layerTimes } from '../src/cli/profile.ts';
import { loadModel } from '../src/runtime/model.ts';
import { openBenchPage } from './browser-page.ts';
import { type BenchDepth, writeBenchModels } from './models.ts';

const ROOT = join(import.meta.dirname, '..');
const { values: flags } = parseArgs({
  options: {
    depth: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '8' },
    runs: { type: 'string', default: '5' },
  },
});
const depth = Number(flags.depth) as BenchDepth;
if (depth !== 18 && depth !== 50) throw new Error(`--depth: 18 or 50, not ${flags.depth}`);
const rounds = positiveInteger(flags.rounds, '--rounds');
const runs = positiveInteger(flags.runs, '--runs');

execFileSync(process.execPath, ['scripts/build.js', 'js'], { cwd: ROOT, stdio: 'ignore' });
const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-browser-layers-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const models = await writeBenchModels(dir, depth);
const worker = await build({
  stdin: {
    contents: `
      import { layerTimes } from './src/cli/profile.ts';
      const RUNTIME = '/browser.js'; // not bundled: the page serves dist/browser.js
      let model;
      self.onmessage = async ({ data }) => {
        if (data.load) {
          const { loadModel } = await import(RUNTIME);
          model = await loadModel(data.load, { threads: 1 });
          postMessage({ kernelBuild: model.kernelBuild });
        } else postMessage({ ms: layerTimes(model, data.runs, (times) => Math.min(...times)) });
      };`,
    resolveDir: ROOT,
    loader: 'ts',
  },
  bundle: true,
  format: 'esm',
  write: false,
});
const bench = await openBenchPage({
  '/browser.js': join(ROOT, 'dist', 'browser.js'),
  '/layers.js': worker.outputFiles[0].contents,
  '/model.rnw': models.rnw,
});
const browserVersion = bench.context.browser()?.version() ?? 'Chromium';
const ask = (message: unknown) =>
  bench.page.evaluate(
    (message) =>
      new Promise<{ ms?: number[]; kernelBuild?: string }>((resolve) => {
        const scope = window as unknown as { layers?: Worker };
        scope.layers ??= new Worker('/layers.js', { type: 'module' });
        scope.layers.onmessage = ({ data }) => resolve(data);
        scope.layers.postMessage(message);
      }),
    message,
  );

const { kernelBuild } = await ask({ load: '/model.rnw' });
const model = await loadModel(models.rnw, { threads: 1 });
const { layers } = model.layers.header;
const fastest = { browser: layers.map(() => Infinity), node: layers.map(() => Infinity) };
const keep = (into: number[], ms: number[]) => ms.forEach((t, i) => (into[i] = Math.min(into[i], t)));
for (let round = 0; round < rounds; round++) {
  console.error(`browser-layers: round ${round + 1} of ${rounds}`);
  keep(fastest.browser, (await ask({ runs })).ms!);
  keep(
    fastest.node,
    layerTimes(model, runs, (times) => Math.min(...times)),
  );
}
await bench.close();

const paths = model.layers.convPaths();
const pathOf = (i: number) => (layers[i].kind === 'conv' ? (paths[i] ?? 'conv') : layers[i].kind);
const groups = [...new Set(layers.map((_, i) => pathOf(i)))];
const sum = (ms: number[], i: number[]) => i.reduce((s, j) => s + ms[j], 0);
console.log(
  `${models.name}, 1 thread, each layer's fastest of ${rounds} rounds of ${runs} runs; ${browserVersion} (kernels: ${kernelBuild}) against Node ${process.versions.node} (kernels: ${model.kernelBuild}), ${cpus()[0]?.model ?? ''}\n`,
);
console.log('| layers | count | Chromium ms | Node ms | Chromium / Node |');
console.log('|---|---|---|---|---|');
for (const group of [...groups, 'all']) {
  const i = layers.map((_, j) => j).filter((j) => group === 'all' || pathOf(j) === group);
  const [b, n] = [sum(fastest.browser, i), sum(fastest.node, i)];
  console.log(`| ${group} | ${i.length} | ${b.toFixed(2)} | ${n.toFixed(2)} | ${(b / n).toFixed(2)} |`);
}
const differing = layers
  .map((layer, i) => ({ i, name: layer.name, diff: fastest.browser[i] - fastest.node[i] }))
  .sort((a, b) => Math.abs(b.diff) - Math.abs(a.diff))
  .slice(0, 8);
console.log('\nThe layers that differ most (ms, Chromium - Node):');
for (const { i, name, diff } of differing)
  console.log(
    `- ${name} (${pathOf(i)}): ${fastest.browser[i].toFixed(3)} against ${fastest.node[i].toFixed(3)}, ${diff > 0 ? '+' : ''}${diff.toFixed(3)}`,
  );
model.dispose();
