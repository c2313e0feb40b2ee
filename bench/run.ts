// `npm run bench`: ResNet-18 and ResNet-50, 224x224, batch 1, on resnet-wasm and its peers, in one
// run on this machine. Everyone runs the same network (bench/models.ts): our .rnw file, fp32 ONNX
// and quantize_static-style QDQ int8 ONNX with our file's activation parameters. Each
// configuration runs in its own child process (bench/peers/measure.ts), started and warmed up once;
// then rounds (7; --rounds N) ask every configuration in turn for a stretch of runs, so each ratio
// is taken within a round and the table gives the median of the per-round ratios with its spread.
// The host's steal time and load are sampled every round. --contention adds ResNet-18 rows for ours
// and onnxruntime-web at 1, all and twice all cores' threads, quiet, beside a spinning neighbour, and
// beside a spinning and a memory-streaming one. Prints Markdown tables; writes bench/results.json
// (--results PATH); --plot draws the charts beside it; --quick is a smoke run.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { positiveInteger } from '../src/cli/command.ts';
import { formatInputTimings, fullHdJpeg, type InputTiming, timeInputPath } from '../src/cli/input-timing.ts';
import { median, percentile } from '../src/cli/statistics.ts';
import { readModel } from '../src/format/reader.ts';
import { cosine } from '../test/helpers/metrics.ts';
import { childPids } from './children.ts';
import { measureFloor } from './floor.ts';
import { describeMachine, type RoundHost, roundHost, sampleHost, summarizeHost } from './host.ts';
import { type BenchDepth, type BenchModels, writeBenchModels } from './models.ts';
import { CONDITIONS, type Condition, startNeighbours } from './neighbour.ts';
import { benchInput, type Peer, PeerProcess, type Stretch, type StretchResult } from './peers/measure.ts';
import { barChart } from './plot.ts';
import { type Config, type Row, report, rowLabel, type Table } from './report.ts';
import { roundRatios } from './rounds.ts';
import { shippedSizes } from './shipped.ts';

interface Plan {
  warmupRuns: number;
  warmupMs: number;
  rounds: number;
  stretch: Stretch;
}

const FULL: Plan = { warmupRuns: 5, warmupMs: 3000, rounds: 7, stretch: { minRuns: 3, ms: 2000, maxRuns: 200 } };
const QUICK: Plan = { warmupRuns: 1, warmupMs: 0, rounds: 2, stretch: { minRuns: 2, ms: 0, maxRuns: 2 } };

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    plot: { type: 'boolean', default: false },
    contention: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    models: { type: 'string', default: '18,50' },
    // A smoke test writes elsewhere, leaving the last real run's results in place.
    results: { type: 'string', default: fileURLToPath(new URL('./results.json', import.meta.url)) },
  },
});
const plan = { ...(flags.quick ? QUICK : FULL) };
if (flags.rounds !== undefined) plan.rounds = positiveInteger(flags.rounds, '--rounds');
const depths = parseDepths(flags.models!);
if (!depths.length && !flags.contention) throw new Error('--models names no network: give 18, 50 or 18,50');

const machine = describeMachine();
const hostStart = sampleHost(childPids());
console.error(`bench: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load average ${loadavg()[0]}`);
const floorAtStart = await measureFloor();
console.error(`bench: floor ${floorAtStart.toFixed(1)} GMAC/s`);
const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const input = benchInput();
const models = new Map<BenchDepth, BenchModels>();
for (const depth of new Set<BenchDepth>(flags.contention ? [...depths, 18] : depths)) {
  console.error(`bench: writing ResNet-${depth}`);
  models.set(depth, await writeBenchModels(dir, depth, input));
}

/** The main tables' thread counts; --contention adds twice the cores. */
const threadCounts = [...new Set([1, machine.cores])];

/** One child process: a configuration, measured under one or more conditions. */
interface Slot {
  config: Config;
  model: BenchModels;
  conditions: Set<Condition>;
  process: PeerProcess | null;
  /** Per condition, per round; null where the stretch was not run. */
  stretches: Map<Condition, (StretchResult | null)[]>;
  error: string | null;
}

const slots = planSlots();
for (const slot of slots) {
  console.error(`bench: loading ${slotName(slot)}`);
  slot.process = await PeerProcess.start({
    peer: slot.config.peer,
    model: slot.config.peer === 'resnet-wasm' ? slot.model.rnw : slot.model[slot.config.precision],
    threads: slot.config.threads,
    warmupRuns: plan.warmupRuns,
    warmupMs: plan.warmupMs,
  }).catch((e: Error) => fail(slot, e));
}

const hostRounds: RoundHost[] = [];
for (let round = 0; round < plan.rounds; round++) {
  const before = sampleHost(childPids());
  for (const condition of CONDITIONS.filter((c) => slots.some((s) => s.conditions.has(c.name)))) {
    const stop = await startNeighbours(condition.neighbours);
    try {
      // Alternate the order, so no configuration always follows the same one.
      const order = slots.filter((s) => s.conditions.has(condition.name) && s.process);
      if (round % 2) order.reverse();
      for (const slot of order) await stretch(slot, condition.name, round);
    } finally {
      await stop();
    }
  }
  const host = roundHost(before, sampleHost(childPids()));
  hostRounds.push(host);
  console.error(
    `bench: round ${round + 1}/${plan.rounds} done; steal ${host.stealPercent?.toFixed(1) ?? '–'}%, others ${host.othersPercent?.toFixed(0) ?? '–'}% of the CPU, load ${host.loadAverage1.toFixed(2)}`,
  );
}
const peakRss = new Map<Slot, number>();
for (const slot of slots) if (slot.process) peakRss.set(slot, await slot.process.finish().catch(() => NaN));
const baselineRssMiB = await (
  await PeerProcess.start({ peer: null, model: '', threads: 1, warmupRuns: 0, warmupMs: 0 })
).finish();
const host = summarizeHost(hostStart, sampleHost(childPids()), hostRounds);
// Measured again after the rounds, the better of the two: a neighbour's burst during one
// measurement once read 7 GMAC/s against 51-56 from the same loop minutes later.
const floorGmacPerS = Math.max(floorAtStart, await measureFloor());

const tables = buildTables();
const first = models.get(depths[0] ?? 18)!;
const inputPath = await timeInput(
  first,
  tables[0]?.rows.find((r) => r.peer === 'resnet-wasm' && r.threads === 1)?.medianMs,
);
const sizes = await shippedSizes();
const failed = slots.filter((s) => s.error).map((s) => ({ model: s.model.name, ...s.config, error: s.error! }));

console.log(
  report({
    machine,
    host,
    rounds: plan.rounds,
    stretchMs: plan.stretch.ms,
    floorGmacPerS,
    baselineRssMiB,
    tables,
    failed,
    sizes,
    quick: flags.quick!,
  }),
);
console.log(inputPath.text);
mkdirSync(dirname(flags.results!), { recursive: true });
writeFileSync(
  flags.results!,
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      quick: flags.quick,
      machine,
      host,
      plan,
      floor: { gmacPerS: floorGmacPerS },
      baselineRssMiB,
      tables,
      failed,
      shippedBytes: sizes,
      inputPath: inputPath.timings,
    },
    null,
    1,
  )}\n`,
);
if (flags.plot) for (const table of tables.filter((t) => t.floorMs !== null)) writePlot(table);

function planSlots(): Slot[] {
  const all: Slot[] = [];
  const add = (model: BenchModels, config: Config, condition: Condition) => {
    const same = all.find(
      (s) =>
        s.model === model &&
        s.config.peer === config.peer &&
        s.config.precision === config.precision &&
        s.config.threads === config.threads,
    );
    const slot = same ?? { config, model, conditions: new Set(), process: null, stretches: new Map(), error: null };
    if (!same) all.push(slot);
    slot.conditions.add(condition);
  };
  const each = (peer: Peer, precision: Config['precision'], counts: number[]) =>
    counts.map((threads) => ({ peer, precision, threads }));
  for (const depth of depths)
    for (const config of [
      ...each('resnet-wasm', 'int8', threadCounts),
      ...each('onnxruntime-web', 'int8', threadCounts),
      ...each('onnxruntime-web', 'fp32', threadCounts),
      // tfjs-backend-wasm never picks its threaded build in Node.
      ...each('tfjs-wasm', 'fp32', [1]),
      ...each('onnxruntime-node', 'int8', threadCounts),
    ])
      add(models.get(depth)!, config, 'quiet');
  if (flags.contention) {
    // Twice the cores: oversubscribed, as `--threads 4` on a 2-core Pi would be.
    const counts = [...new Set([1, machine.cores, 2 * machine.cores])];
    for (const condition of CONDITIONS)
      for (const config of [...each('resnet-wasm', 'int8', counts), ...each('onnxruntime-web', 'int8', counts)])
        add(models.get(18)!, config, condition.name);
  }
  return all;
}

async function stretch(slot: Slot, condition: Condition, round: number): Promise<void> {
  const result = await slot.process!.stretch(plan.stretch).catch((e: Error) => fail(slot, e));
  const rounds = slot.stretches.get(condition) ?? Array(plan.rounds).fill(null);
  rounds[round] = result;
  slot.stretches.set(condition, rounds);
}

function fail(slot: Slot, e: Error): null {
  console.error(`bench:   ${slotName(slot)} failed: ${e.message}`);
  slot.error = e.message;
  slot.process = null;
  return null;
}

function slotName(slot: Slot): string {
  return `${slot.model.name} ${rowLabel(slot.config)}`;
}

/** The main table of each model (quiet), then the contention table. */
function buildTables(): Table[] {
  const ok = slots.filter((s) => !s.error);
  const tables: Table[] = depths.map((depth) => {
    const model = models.get(depth)!;
    return {
      title: `${model.name} 224x224, batch 1, ${(model.macs / 1e9).toFixed(3)} GMAC`,
      model: model.name,
      macs: model.macs,
      floorMs: model.macs / 1e6 / floorGmacPerS,
      rows: rows(
        ok
          .filter((s) => s.model === model && s.conditions.has('quiet') && threadCounts.includes(s.config.threads))
          .map((s) => [s, 'quiet']),
      ),
      identicalLogits: identicalLogits(ok.filter((s) => s.model === model)),
    };
  });
  if (flags.contention) {
    const model = models.get(18)!;
    const contended = ok.filter((s) => s.model === model && s.conditions.has('busy core'));
    tables.push({
      title: `${model.name} under contention: ours and onnxruntime-web int8, quiet and beside neighbours`,
      model: model.name,
      macs: model.macs,
      floorMs: null,
      rows: rows(CONDITIONS.flatMap((c) => contended.map((s) => [s, c.name] as [Slot, Condition]))),
      identicalLogits: identicalLogits(contended),
    });
  }
  return tables;
}

function rows(cells: [Slot, Condition][]): Row[] {
  const roundMedians = (slot: Slot, condition: Condition) =>
    (slot.stretches.get(condition) ?? []).map((s) => (s ? median(s.timesMs) : null));
  const find = (model: BenchModels, condition: Condition, { peer, precision, threads }: Config) =>
    cells.find(
      ([s, c]) =>
        s.model === model &&
        c === condition &&
        s.config.peer === peer &&
        s.config.precision === precision &&
        s.config.threads === threads,
    );
  return cells.map(([slot, condition]) => {
    const { config, model } = slot;
    const stretches = (slot.stretches.get(condition) ?? []).filter((s): s is StretchResult => s !== null);
    const sorted = stretches.flatMap((s) => s.timesMs).sort((a, b) => a - b);
    const medianMs = percentile(sorted, 0.5);
    const gmacPerS = model.macs / 1e6 / medianMs;
    const mine = roundMedians(slot, condition);
    const ratio = (other: [Slot, Condition] | undefined) => (other ? roundRatios(mine, roundMedians(...other)) : null);
    const ortWeb = find(model, condition, { peer: 'onnxruntime-web', precision: 'int8', threads: config.threads });
    const halfThreads =
      config.threads > 1 ? find(model, condition, { ...config, threads: config.threads / 2 }) : undefined;
    const reference =
      config.precision === 'fp32'
        ? model.fp32Logits
        : slots
            .find((s) => s.model === model && s.config.peer === 'onnxruntime-node' && s.config.threads === 1)
            ?.stretches.get('quiet')
            ?.find((s) => s)?.logits;
    return {
      ...config,
      model: model.name,
      condition,
      medianMs,
      p10Ms: percentile(sorted, 0.1),
      p90Ms: percentile(sorted, 0.9),
      gmacPerS,
      floorPercent: (100 * gmacPerS) / (config.threads * floorGmacPerS),
      vsOrtWebInt8: ratio(ortWeb),
      vsHalfThreads: ratio(halfThreads),
      roundMediansMs: mine,
      peakRssMiB: peakRss.get(slot) ?? NaN,
      loadMs: slot.process?.loadMs ?? NaN,
      cpuPerWall: median(stretches.map((s) => s.cpuPerWall)),
      cosine: reference && stretches.length ? cosine(stretches[stretches.length - 1].logits, reference) : null,
      timesMs: stretches.flatMap((s) => s.timesMs),
    };
  });
}

/** Whether every stretch of ours gave the same logits: every thread count, condition and round. */
function identicalLogits(of: Slot[]): boolean | null {
  const logits = of
    .filter((s) => s.config.peer === 'resnet-wasm')
    .flatMap((s) => [...s.stretches.values()].flat())
    .filter((s): s is StretchResult => s !== null)
    .map((s) => s.logits);
  if (logits.length < 2) return null;
  return logits.every((l) => l.length === logits[0].length && l.every((v, i) => Object.is(v, logits[0][i])));
}

/**
 * Decode + preprocessing of a 1920x1080 JPEG made from test/photos/rocket.jpg, with each decoder
 * that loads, against resnet-wasm's 1-thread median (src/cli/input-timing.ts).
 */
async function timeInput(
  model: BenchModels,
  inferenceMs: number | undefined,
): Promise<{ timings: InputTiming[]; text: string }> {
  console.error('bench: input path, a 1920x1080 JPEG');
  const header = readModel(readFileSync(model.rnw)).header;
  const photo = fileURLToPath(new URL('../test/photos/rocket.jpg', import.meta.url));
  const runs = flags.quick ? 3 : 21;
  const timings = await timeInputPath(await fullHdJpeg(photo), header.preprocessing, header.tensors[0], runs);
  return {
    timings,
    text: `\nInput path (median of ${runs}; a 1920x1080 JPEG, quality 90, made from test/photos/rocket.jpg, to the 224x224 int8 input; against ${model.name}):\n${formatInputTimings(timings, inferenceMs ?? NaN)}`,
  };
}

/** results.svg for ResNet-18, results-resnet50.svg for ResNet-50 (beside --results). */
function writePlot(table: Table): void {
  const base = flags.results!.replace(/(\.json)?$/, '');
  const file =
    table.model === 'ResNet-18' ? `${base}.svg` : `${base}-${table.model.toLowerCase().replace('-', '')}.svg`;
  const bars = table.rows.map((r) => ({
    label: rowLabel(r),
    medianMs: r.medianMs,
    p10Ms: r.p10Ms,
    p90Ms: r.p90Ms,
    ours: r.peer === 'resnet-wasm',
  }));
  const title = `${table.model} 224x224, batch 1 — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`;
  writeFileSync(file, barChart(bars, table.floorMs!, title));
}

function parseDepths(text: string): BenchDepth[] {
  const depths = text.split(',').filter((d) => d.trim() !== '');
  for (const d of depths) if (d !== '18' && d !== '50') throw new Error(`--models takes 18 and/or 50, not "${d}"`);
  return [...new Set(depths.map(Number) as BenchDepth[])];
}
