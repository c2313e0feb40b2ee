// `npm run bench:browser`: resnet-wasm and onnxruntime-web (wasm backend, SIMD, threaded) in
// Debian's Chromium, headless through playwright-core, on a cross-origin isolated page; then the
// web app's own photo path. The networks are npm run bench's (bench/models.ts: our builder's seeded
// ResNet-18 and ResNet-50, as .rnw for us and as quantize_static-style QDQ int8 ONNX for
// onnxruntime-web), the input its seeded noise photo. Each configuration runs in a module worker of
// its own, loaded once; rounds interleave them (the order reversed every other round) and a ratio
// is the median of the per-round ratios of medians. Prints Markdown tables.
//
//   npm run bench:browser [-- --rounds 5 --runs 10 --photo test/photos/more/building.jpg --quick]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { positiveInteger } from '../src/cli/command.ts';
import { median } from '../src/cli/statistics.ts';
import { readModel } from '../src/format/reader.ts';
import { preprocessQuantized } from '../src/image/preprocess.ts';
import { loadModel } from '../src/runtime/model.ts';
import { openBenchPage } from './browser-page.ts';
import type { LoadRequest, Reply, Request } from './browser-worker.ts';
import { type BenchModels, writeBenchModels } from './models.ts';
import { benchInput } from './peers/measure.ts';
import { roundRatios, type Spread } from './rounds.ts';

const ROOT = join(import.meta.dirname, '..');
const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '10' },
    photo: { type: 'string', default: join(ROOT, 'test', 'photos', 'more', 'building.jpg') },
    quick: { type: 'boolean', default: false },
  },
});
const rounds = flags.quick ? 2 : positiveInteger(flags.rounds, '--rounds');
const runs = flags.quick ? 2 : positiveInteger(flags.runs, '--runs');
const RUNTIMES = ['resnet-wasm', 'onnxruntime-web'] as const;

interface Config {
  key: string;
  models: BenchModels;
  runtime: LoadRequest['runtime'];
  threads: number;
  /** Per round, the median of its runs; null where it failed. */
  medians: (number | null)[];
  times: number[];
  logits: number[];
  error?: string;
}

console.error(`bench: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, load ${loadavg()[0]}`);
execFileSync(process.execPath, ['scripts/build.js', 'js'], { cwd: ROOT, stdio: 'ignore' });
execFileSync(process.execPath, ['web/build.js'], { cwd: ROOT, stdio: 'ignore' });
const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-bench-browser-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const input = benchInput();
const networks = [await writeBenchModels(dir, 18, input), await writeBenchModels(dir, 50, input)];
writeFileSync(join(dir, 'input.f32'), input.nchw);
const nodeLogits = new Map<number, Float32Array>();
for (const models of networks) {
  const { header } = readModel(readFileSync(models.rnw));
  const x = preprocessQuantized(input.image, header.preprocessing, header.tensors[0]);
  writeFileSync(join(dir, `resnet${models.depth}-input.u8`), x);
  const model = await loadModel(models.rnw, { threads: 1 });
  nodeLogits.set(models.depth, model.run(x));
  model.dispose();
}
const worker = await build({
  entryPoints: [join(ROOT, 'bench', 'browser-worker.ts')],
  bundle: true,
  format: 'esm',
  write: false,
});

const bench = await openBenchPage({
  '/browser.js': join(ROOT, 'dist', 'browser.js'),
  '/worker.js': worker.outputFiles[0].contents,
  '/ort': join(ROOT, 'node_modules', 'onnxruntime-web', 'dist'),
  '/models': dir,
  '/app': join(ROOT, 'build', 'web'),
  '/photo.jpg': flags.photo!,
});
const { page } = bench;
const browserVersion = bench.context.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent));
await page.evaluate(() => {
  const scope = window as unknown as Record<string, unknown>;
  const workers: Record<string, Worker> = {};
  scope.workers = workers;
  scope.ask = (key: string, message: unknown) =>
    new Promise((resolve) => {
      workers[key].onmessage = ({ data }) => resolve(data);
      workers[key].onerror = (event) => resolve({ error: event.message });
      workers[key].postMessage(message);
    });
  scope.start = (key: string) => {
    workers[key] = new Worker('/worker.js', { type: 'module' });
  };
});
const ask = (key: string, message: Request) =>
  page.evaluate(
    ({ key, message }) => (window as unknown as { ask: (k: string, m: Request) => Promise<Reply> }).ask(key, message),
    { key, message },
  );

const threadCounts = [...new Set([1, availableParallelism()])];
const configs: Config[] = networks.flatMap((models) =>
  threadCounts.flatMap((threads) =>
    RUNTIMES.map((runtime) => ({
      key: `${runtime} ${models.name} ${threads}`,
      models,
      runtime,
      threads,
      medians: [],
      times: [],
      logits: [],
    })),
  ),
);
for (const config of configs) {
  console.error(`bench: loading ${config.key} thread(s)`);
  await page.evaluate((key) => (window as unknown as { start: (k: string) => void }).start(key), config.key);
  const ours = config.runtime === 'resnet-wasm';
  const depth = config.models.depth;
  const reply = await ask(config.key, {
    load: {
      runtime: config.runtime,
      model: ours ? `/models/resnet${depth}.rnw` : `/models/resnet${depth}-int8-qdq.onnx`,
      input: ours ? `/models/resnet${depth}-input.u8` : '/models/input.f32',
      threads: config.threads,
    },
  });
  if ('error' in reply) config.error = reply.error;
}
for (let round = 0; round < rounds; round++) {
  console.error(`bench: round ${round + 1} of ${rounds}`);
  const order = round % 2 === 0 ? configs : [...configs].reverse();
  for (const config of order) {
    const reply = config.error ? null : await ask(config.key, { runs });
    if (reply && 'error' in reply) config.error = reply.error;
    const ok = reply && 'timesMs' in reply ? reply : null;
    config.medians[round] = ok ? median(ok.timesMs) : null;
    if (ok) {
      config.times.push(...ok.timesMs);
      config.logits = ok.logits;
    }
  }
}
await page.evaluate(() =>
  Object.values((window as unknown as { workers: Record<string, Worker> }).workers).forEach((w) => w.terminate()),
);

console.error('bench: the web app, a photo as bytes and as an ImageBitmap');
const app = await appPhotoPath(rounds);
const decoding = await decodeTimes(rounds);
console.error("bench: the web app's page opened afresh, its first photo");
const firstInApp: number[] = [];
for (let round = 0; round < rounds; round++) firstInApp.push(await appPageFirstPhoto());
await bench.close();

console.log(
  `Chromium ${browserVersion}, ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, load average ${loadavg()[0].toFixed(2)} at the end; ${rounds} rounds of ${runs} runs.\n`,
);
console.log(modelTable());
console.log();
console.log(appTable());

function modelTable(): string {
  const lines = [
    '| network | threads | resnet-wasm | onnxruntime-web int8 | ours / onnxruntime-web, median of rounds | spread | our logits = Node |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const models of networks)
    for (const threads of threadCounts) {
      const [ours, ort] = RUNTIMES.map(
        (runtime) => configs.find((c) => c.models === models && c.threads === threads && c.runtime === runtime)!,
      );
      const ratio = roundRatios(ours.medians, ort.medians);
      const sameBits =
        ours.logits.length > 0 &&
        Float32Array.from(ours.logits).every((v, i) => Object.is(v, nodeLogits.get(models.depth)![i]));
      lines.push(
        `| ${models.name} | ${threads} | ${ms(ours)} | ${ms(ort)} | ${ratio ? `**${ratio.median.toFixed(2)}x**` : '-'} | ${range(ratio)} | ${ours.logits.length ? (sameBits ? 'yes' : 'NO') : '-'} |`,
      );
    }
  const failed = configs.filter((c) => c.error);
  for (const c of failed) lines.push(`\n${c.key} thread(s) failed: ${c.error}`);
  return lines.join('\n');
}

function ms(config: Config): string {
  return config.times.length ? `${median(config.times).toFixed(1)} ms` : 'failed';
}

function range(s: Spread | null): string {
  return s ? `${s.min.toFixed(2)}-${s.max.toFixed(2)}x` : '-';
}

/**
 * The app's own worker (build/web/worker.js), driven as app.ts drives it: the photo's bytes (decoded
 * in the worker), first the very first photo after `ready`, then in each round once as bytes and
 * once as an ImageBitmap the page decoded beforehand (untimed). Times are the `ms` the app shows.
 */
async function appPhotoPath(n: number) {
  return page.evaluate(async (n) => {
    const worker = new Worker('/app/worker.js');
    const next = <T>(type: string) =>
      new Promise<T>((resolve, reject) => {
        worker.onmessage = ({ data }) => {
          if (data.type === 'error') reject(new Error(data.message));
          else if (data.type === type) resolve(data);
        };
      });
    const ready = next<{ threads: number }>('ready');
    worker.postMessage({ type: 'load', url: 'default.rnw' });
    const { threads } = await ready;
    const photo = await (await fetch('/photo.jpg')).arrayBuffer();
    let id = 0;
    const classify = async (image: ArrayBuffer | ImageBitmap) => {
      const result = next<{ ms: number }>('result');
      worker.postMessage({ type: 'classify', id: ++id, image }, [image]);
      return (await result).ms;
    };
    const first = await classify(photo.slice(0));
    const bytes: number[] = [];
    const bitmap: number[] = [];
    for (let i = 0; i < n; i++) {
      bitmap.push(await classify(await createImageBitmap(new Blob([photo]))));
      bytes.push(await classify(photo.slice(0)));
    }
    worker.terminate();
    return { threads, first, bytes, bitmap };
  }, n);
}

/** Median times of decoding the photo alone, in the page, with the browser's decoder and with jpeg-js. */
async function decodeTimes(n: number) {
  return page.evaluate(async (n) => {
    const runtime = '/browser.js';
    const { decodeBytes } = await import(runtime);
    const photo = new Uint8Array(await (await fetch('/photo.jpg')).arrayBuffer());
    const times: Record<string, number[]> = { browser: [], js: [] };
    for (let i = 0; i <= n; i++)
      for (const decoder of ['browser', 'js']) {
        const start = performance.now();
        await decodeBytes(photo, { decoder });
        // The first of each is a warm-up.
        if (i > 0) times[decoder].push(performance.now() - start);
      }
    return times;
  }, n);
}

/**
 * The app itself, opened afresh (once a round): its first photo, chosen in its file input, as its
 * page shows the time. The answer is awaited by a MutationObserver in the page, not by
 * waitForSelector, whose polling kept Chromium's main threads and the DevTools pipe busy on this
 * 2-core machine during the inference being timed.
 */
async function appPageFirstPhoto(): Promise<number> {
  const appPage = await bench.context.newPage();
  await appPage.goto(`${bench.url}app/index.html`);
  await appPage.waitForSelector('body[data-state="ready"]', { timeout: 120_000 });
  const answered = await appPage.evaluateHandle(() => ({
    // Wrapped: evaluateHandle would wait for a promise it returned.
    state: new Promise<string>((resolve) => {
      const observer = new MutationObserver(() => {
        const state = document.body.dataset.state!;
        if (state === 'ready') return;
        observer.disconnect();
        resolve(state);
      });
      observer.observe(document.body, { attributeFilter: ['data-state'] });
    }),
  }));
  await appPage.setInputFiles('#file', flags.photo!);
  const state = await answered.evaluate((answer) => answer.state);
  if (state !== 'classified')
    throw new Error(`the app did not classify the photo: ${await appPage.textContent('#status')}`);
  const shown = (await appPage.textContent('#latency')) ?? '';
  await appPage.close();
  return Number(/^(\d+) ms/.exec(shown)?.[1] ?? Number.NaN);
}

function appTable(): string {
  const bitmap = median(app.bitmap);
  const ratio = roundRatios(app.bytes, app.bitmap);
  return [
    `The web app (ResNet-50, default.rnw; ${app.threads} threads), ${flags.photo!.replace(`${ROOT}/`, '')}: decode + inference as the app reports it.\n`,
    '| what | ms | / the same photo as an ImageBitmap |',
    '|---|---|---|',
    `| the photo as an ImageBitmap (decoded beforehand), median | ${bitmap.toFixed(1)} | 1 |`,
    `| the photo's bytes, median | ${median(app.bytes).toFixed(1)} | **${ratio!.median.toFixed(2)}x** (${range(ratio)} over rounds) |`,
    `| the first photo's bytes after the model is ready | ${app.first.toFixed(1)} | **${(app.first / bitmap).toFixed(2)}x** |`,
    `| the app's page opened afresh, its first photo (shown on the page), median of ${firstInApp.length} pages | ${median(firstInApp)} | **${(median(firstInApp) / bitmap).toFixed(2)}x** (${firstInApp.map((v) => (v / bitmap).toFixed(2)).join(', ')}) |`,
    `| decoding alone, in the page, median: the browser's decoder / jpeg-js (\`decoder: 'js'\`) | ${median(decoding.browser).toFixed(1)} / ${median(decoding.js).toFixed(1)} | |`,
  ].join('\n');
}
