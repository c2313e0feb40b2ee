// `npm run bench:serve`: `resnet-wasm serve` under load on loopback. First the single-thread rate of
// the same photo through Model.classify in this process (decode, preprocessing, inference: what a
// worker does), then the server in a child process with autocannon's 32 connections posting that
// photo for --duration seconds (or --requests N in all), the server's RSS sampled every second.
// Reports throughput against workers x the single-thread rate (and against the workers' own mean
// time during the run, which isolates serving from the cores' sharing), p50/p99 latency, 429s,
// other failures, and RSS in the first vs the last 10% of the run; merges the run into
// bench/serve-results.json (--results PATH) under its label.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { benchmarkModel } from '../src/builder/bench-model.ts';
import { median } from '../src/cli/statistics.ts';
import { loadModel } from '../src/runtime/model.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SINGLE_THREAD_RUNS = 20;
const WARMUP_RUNS = 3;
const RSS_SAMPLE_MS = 1000;

export interface ServeBenchResult {
  label: string;
  machine: string;
  load_average: [number, number];
  model: string;
  photo: string;
  workers: number;
  connections: number;
  duration_s: number;
  single_thread_ms: number;
  expected_per_s: number;
  throughput_per_s: number;
  throughput_percent: number;
  worker_ms: number;
  serving_percent: number;
  requests: number;
  ok: number;
  too_many_requests: number;
  other_failures: number;
  p50_ms: number;
  p99_ms: number;
  rss_first_mib: number;
  rss_last_mib: number;
  rss_change_percent: number;
  /** Every second of the run. */
  rss_samples_mib: number[];
}

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    requests: { type: 'string' },
    connections: { type: 'string', default: '32' },
    workers: { type: 'string', default: String(availableParallelism()) },
    model: { type: 'string', default: join(ROOT, 'weights', 'default.rnw') },
    photo: { type: 'string', default: join(ROOT, 'test', 'photos', 'chelsea.png') },
    results: { type: 'string', default: join(ROOT, 'bench', 'serve-results.json') },
  },
});

const workers = Number(values.workers);
const connections = Number(values.connections);
const modelPath = values.model === 'resnet18' ? writeResnet18() : values.model!;
const photo = readFileSync(values.photo!);
const loadAtStart = loadavg()[0];

const { medianMs: singleThreadMs, top1 } = await singleThread(modelPath, photo);
process.stderr.write(`single thread: ${singleThreadMs.toFixed(1)} ms an image (median of ${SINGLE_THREAD_RUNS})\n`);
const server = await startServer(modelPath, workers);
const { load, samples, workerMs } = await underLoad(server.url, server.child.pid!).finally(async () => {
  server.child.kill('SIGTERM');
  await new Promise((resolve) => server.child.once('exit', resolve));
});

const result = summarize(load, samples, workerMs);
saveResult(values.results!, result);
process.stdout.write(formatTable(result));

/** Checks one answer, then autocannon on the server while its RSS is sampled; the workers' mean time after. */
async function underLoad(
  url: string,
  pid: number,
): Promise<{ load: autocannon.Result; samples: number[]; workerMs: number }> {
  await checkAnswer(url, top1);
  const rss = sampleRss(pid);
  const load = await autocannon({
    url: `${url}/v1/classify`,
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: photo,
    connections,
    timeout: 120,
    ...(values.requests === undefined ? { duration: Number(values.duration) } : { amount: Number(values.requests) }),
  });
  return { load, samples: rss.stop(), workerMs: await meanInferenceMs(url) };
}

/** Median milliseconds of Model.classify on the photo bytes, one thread, after a warm-up; its class. */
async function singleThread(model: string, bytes: Uint8Array): Promise<{ medianMs: number; top1: number }> {
  const loaded = await loadModel(model, { threads: 1 });
  const { top } = await loaded.classify(bytes);
  for (let i = 1; i < WARMUP_RUNS; i++) await loaded.classify(bytes);
  const times: number[] = [];
  for (let i = 0; i < SINGLE_THREAD_RUNS; i++) {
    const start = performance.now();
    await loaded.classify(bytes);
    times.push(performance.now() - start);
  }
  loaded.dispose();
  return { medianMs: median(times), top1: top[0].index };
}

/** The server must answer the photo as the model in this process did: a fast wrong answer is no result. */
async function checkAnswer(url: string, top1: number): Promise<void> {
  const response = await fetch(`${url}/v1/classify`, {
    method: 'POST',
    body: photo,
    headers: { 'content-type': 'application/octet-stream' },
  });
  const answer = (await response.json()) as { top?: { index: number }[] };
  if (answer.top?.[0].index !== top1)
    throw new Error(`the server answered ${JSON.stringify(answer)}, not class ${top1}`);
}

/** The server from source in its own process, so that its RSS is its own. */
async function startServer(model: string, count: number): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/main.ts'),
      'serve',
      '--port',
      '0',
      '--workers',
      String(count),
      '--model',
      model,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let stdout = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (data) => {
      stdout += data;
      const url = /listening on (\S+)/.exec(stdout)?.[1];
      if (url !== undefined) resolve({ child, url });
    });
    child.once('exit', (code) => reject(new Error(`the server exited (code ${code}) before listening`)));
  });
}

/**
 * The mean time of an image in the server's workers during the run (its /metrics): against the
 * single-thread time, what sharing the cores cost; against the throughput, what serving cost.
 */
async function meanInferenceMs(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  return (
    (1000 * value('resnet_wasm_inference_duration_seconds_sum')) / value('resnet_wasm_inference_duration_seconds_count')
  );
}

/** Resident memory of a process (with its worker threads), from /proc, every second. */
function sampleRss(pid: number): { stop(): number[] } {
  const samples: number[] = [];
  const read = () => {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (match) samples.push(Number(match[1]) / 1024);
  };
  const timer = setInterval(read, RSS_SAMPLE_MS);
  return {
    stop: () => {
      clearInterval(timer);
      return samples;
    },
  };
}

function summarize(load: autocannon.Result, rssMiB: number[], workerMs: number): ServeBenchResult {
  const count = (status: number) =>
    load.statusCodeStats?.[status as unknown as keyof typeof load.statusCodeStats]?.count ?? 0;
  const ok = load['2xx'];
  const tenth = Math.max(1, Math.floor(rssMiB.length / 10));
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const first = mean(rssMiB.slice(0, tenth));
  const last = mean(rssMiB.slice(-tenth));
  const expected = (workers * 1000) / singleThreadMs;
  const throughput = ok / load.duration;
  return {
    label: `${basename(modelPath, '.rnw')}, ${workers} workers, ${connections} connections, ${values.requests === undefined ? `${values.duration} s` : `${values.requests} requests`}`,
    machine: `${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, Node ${process.versions.node}`,
    load_average: [round(loadAtStart, 2), round(loadavg()[0], 2)],
    model: basename(modelPath),
    photo: basename(values.photo!),
    workers,
    connections,
    duration_s: round(load.duration, 1),
    single_thread_ms: round(singleThreadMs, 1),
    expected_per_s: round(expected, 2),
    throughput_per_s: round(throughput, 2),
    throughput_percent: round((100 * throughput) / expected, 1),
    worker_ms: round(workerMs, 1),
    serving_percent: round((100 * throughput * workerMs) / (workers * 1000), 1),
    requests: load.requests.total,
    ok,
    too_many_requests: count(429),
    other_failures: load.requests.total - ok - count(429) + load.errors + load.timeouts,
    p50_ms: load.latency.p50,
    p99_ms: load.latency.p99,
    rss_first_mib: round(first, 1),
    rss_last_mib: round(last, 1),
    rss_change_percent: round((100 * (last - first)) / first, 1),
    rss_samples_mib: rssMiB.map((x) => round(x, 1)),
  };
}

/** Merges the run into the results file under its label. */
function saveResult(path: string, run: ServeBenchResult): void {
  const runs: Record<string, ServeBenchResult> = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
  runs[run.label] = run;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(runs, null, 2)}\n`);
}

function formatTable(r: ServeBenchResult): string {
  const rows: [string, string][] = [
    ['run', r.label],
    ['machine', `${r.machine}, load average ${r.load_average[0]} at the start, ${r.load_average[1]} at the end`],
    [
      'single thread (same photo, same preprocessing)',
      `${r.single_thread_ms} ms: ${round(1000 / r.single_thread_ms, 2)}/s`,
    ],
    [
      'throughput',
      `${r.throughput_per_s}/s = ${r.throughput_percent}% of ${r.workers} x single thread (${r.expected_per_s}/s)`,
    ],
    [
      'an image in a worker during the run (mean)',
      `${r.worker_ms} ms: throughput = ${r.serving_percent}% of ${r.workers} workers at that speed`,
    ],
    ['latency p50 / p99', `${r.p50_ms} / ${r.p99_ms} ms`],
    ['requests: 200 / 429 / other failures', `${r.ok} / ${r.too_many_requests} / ${r.other_failures}`],
    [
      'server RSS, first 10% / last 10% of the run',
      `${r.rss_first_mib} / ${r.rss_last_mib} MiB (${r.rss_change_percent >= 0 ? '+' : ''}${r.rss_change_percent}%)`,
    ],
  ];
  return `${['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n')}\n`;
}

/** The builder's seeded ResNet-18 (what `resnet-wasm bench` times), for runs of many requests. */
function writeResnet18(): string {
  const path = join(ROOT, '.cache', 'resnet18.rnw');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, benchmarkModel());
  return path;
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}
