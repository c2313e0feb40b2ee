// Threads under load, before and after a change: `resnet-wasm bench` of each package root given,
// on ResNet-18 (bench's seeded one) and the default ResNet-50, at 1, 2 and 4 threads, on a quiet
// machine and with one core kept busy by a spinning process, in interleaved rounds; prints the
// median over rounds of each configuration's median.
//   node --import tsx scripts/threads-bench.ts [--rounds 5] [--runs 15] ROOT [ROOT...]
// A ROOT is a built package (bin/, dist/, weights/default.rnw): this worktree, or a copy of another.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { positiveInteger, UsageError } from '../src/cli/command.ts';
import { median } from '../src/cli/statistics.ts';

const { values, positionals: roots } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '5' }, runs: { type: 'string', default: '15' } },
});
if (roots.length === 0) throw new UsageError('give the package roots to compare, such as . (this worktree)');
const rounds = positiveInteger(values.rounds, '--rounds');
const runs = String(positiveInteger(values.runs, '--runs'));
const THREADS = '1,2,4';
const models = ['resnet18', 'resnet50'] as const;
const loads = ['quiet', 'busy'] as const;
const medians = new Map<string, number[]>();
let spinner: ChildProcess | null = null;
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    spinner?.kill();
    process.exit(1);
  });

function bench(root: string, model: (typeof models)[number]): { threads: number; median_ms: number }[] {
  const modelArgs = model === 'resnet50' ? ['--model', join(root, 'weights/default.rnw')] : [];
  const out = execFileSync(
    'node',
    [join(root, 'bin/resnet-wasm.js'), 'bench', ...modelArgs, '--threads', THREADS, '--runs', runs, '--json'],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  return out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

for (let round = 0; round < rounds; round++) {
  for (const load of loads) {
    spinner = load === 'busy' ? spawn('node', ['-e', 'for(;;){}'], { stdio: 'ignore' }) : null;
    try {
      for (const model of models)
        for (const root of round % 2 === 0 ? roots : [...roots].reverse())
          for (const { threads, median_ms } of bench(root, model)) {
            const key = `${root}\t${model}\t${load}\t${threads}`;
            medians.set(key, [...(medians.get(key) ?? []), median_ms]);
          }
    } finally {
      spinner?.kill();
    }
  }
  process.stderr.write(
    `round ${round + 1} done (load average ${execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim()})\n`,
  );
}

process.stdout.write('root\tmodel\tload\tthreads\tmedian ms\tper-round medians\n');
for (const [key, xs] of medians) process.stdout.write(`${key}\t${median(xs).toFixed(1)}\t${xs.join(' ')}\n`);
