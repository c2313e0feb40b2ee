// `npm run bench:memory [-- MODEL.rnw]`: peak memory while a model streams from disk, with
// Winograd and without, each in a fresh process so that one run's garbage cannot count
// for another. Peak = the live JavaScript heap and array buffers above the process's baseline
// (sampled after a full GC at every progress report) + the wasm memory, against the bound
// docs/FORMAT.md promises: 1.5 x the file + the activation arena.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type LoadOptions, loadModel } from '../src/runtime/model.ts';

const CONFIGS: Record<string, LoadOptions> = {
  default: {},
  'winograd: false': { winograd: false },
};

interface Measurement {
  peakJsBytes: number;
  wasmBytes: number;
  arenaBytes: number;
  derivedBytes: number;
}

const [, , first, second] = process.argv;
if (first === '--child') {
  process.stdout.write(JSON.stringify(await measure(second, CONFIGS[process.argv[4]])));
} else {
  report(first ?? 'weights/default.rnw');
}

async function measure(path: string, options: LoadOptions): Promise<Measurement> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const live = () => {
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const baseline = live();
  let peak = baseline;
  const model = await loadModel(path, { ...options, onProgress: () => (peak = Math.max(peak, live())) });
  const { wasmBytes, arenaBytes, derivedBytes } = model.footprint();
  return { peakJsBytes: peak - baseline, wasmBytes, arenaBytes, derivedBytes };
}

function report(path: string): void {
  const fileBytes = statSync(path).size;
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  console.log(`${path}: ${mib(fileBytes)}; bound 1.5 x file + arena\n`);
  console.log('| options | peak JS | wasm memory (arena, derived) | total | × file | within bound |');
  console.log('|---|---|---|---|---|---|');
  for (const name of Object.keys(CONFIGS)) {
    const child = spawnSync(process.execPath, [...process.execArgv, import.meta.filename, '--child', path, name], {
      encoding: 'utf8',
    });
    if (child.status !== 0) throw new Error(`${name}: ${child.stderr}`);
    const m: Measurement = JSON.parse(child.stdout);
    const total = m.peakJsBytes + m.wasmBytes;
    const within = total <= 1.5 * fileBytes + m.arenaBytes;
    console.log(
      `| ${name} | ${mib(m.peakJsBytes)} | ${mib(m.wasmBytes)} (${mib(m.arenaBytes)}, ${mib(m.derivedBytes)}) | ${mib(total)} | ${(total / fileBytes).toFixed(2)} | ${within ? 'yes' : 'no'} |`,
    );
  }
}
