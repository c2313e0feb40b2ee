// `npm run bench:mqtt`: `resnet-wasm mqtt` against a local Mosquitto (test/helpers/mosquitto.ts).
// For each model (the builder's seeded ResNet-18, the default ResNet-50): the photo's single-thread
// time through Model.classify, then 4 simulated cameras publishing the pre-encoded JPEG (QoS 1) for
// --duration seconds to one gateway, then to two in a shared group (each its own process with one
// worker thread): above capacity (throughput, drops) and at half of one gateway's capacity
// (latency). Reports answered frames a second, dropped (the gateways' metrics), lost or answered
// twice, and publish-to-result latency p50/p95; writes bench/mqtt-results.json (--results PATH).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { benchmarkModel } from '../src/builder/bench-model.ts';
import { median } from '../src/cli/statistics.ts';
import { loadModel } from '../src/runtime/model.ts';
import { type Broker, startMosquitto } from '../test/helpers/mosquitto.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CAMERAS = 4;
const SINGLE_THREAD_RUNS = 10;
/** Frames offered above capacity: this many times what two gateways classify. */
const OVERLOAD = 1.5;
/** Frames offered for the latency run: this fraction of one gateway's capacity. */
const LIGHT_LOAD = 0.5;
/** After publishing stops, the frames still waiting or running must settle within this. */
const SETTLE_MS = 60_000;

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    models: { type: 'string', default: 'resnet18,default' },
    photo: { type: 'string', default: join(ROOT, 'test', 'photos', 'rocket.jpg') },
    results: { type: 'string', default: join(ROOT, 'bench', 'mqtt-results.json') },
  },
});
const durationS = Number(values.duration);
const photo = readFileSync(values.photo!);

interface Run {
  model: string;
  gateways: number;
  offered_per_s: number;
  published: number;
  answered: number;
  answered_per_s: number;
  dropped: number;
  errors: number;
  lost: number;
  answered_twice: number;
  p50_ms: number;
  p95_ms: number;
}

const broker = await startMosquitto();
const runs: Run[] = [];
const singleThread: Record<string, number> = {};
try {
  for (const name of values.models!.split(',')) {
    const modelPath =
      name === 'resnet18' ? writeResnet18() : name === 'default' ? join(ROOT, 'weights', 'default.rnw') : name;
    const ms = await singleThreadMs(modelPath);
    singleThread[basename(modelPath, '.rnw')] = Number(ms.toFixed(1));
    process.stderr.write(`${basename(modelPath)}: ${ms.toFixed(1)} ms an image on one thread\n`);
    for (const gateways of [1, 2]) runs.push(await run(modelPath, gateways, (OVERLOAD * 2 * 1000) / ms));
    runs.push(await run(modelPath, 1, (LIGHT_LOAD * 1000) / ms));
  }
} finally {
  await broker.close();
}

const report = {
  date: new Date().toISOString(),
  machine: `${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, Node ${process.versions.node}, load average ${loadavg()[0].toFixed(2)} at the end`,
  photo: basename(values.photo!),
  duration_s: durationS,
  single_thread_ms: singleThread,
  runs,
};
mkdirSync(dirname(values.results!), { recursive: true });
writeFileSync(values.results!, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(table(runs));

/** One load: `gateways` gateways in a group, the cameras offering `perSecond` frames a second in all. */
async function run(modelPath: string, gateways: number, perSecond: number): Promise<Run> {
  const group = `bench-${runs.length}`;
  const children = await Promise.all(
    Array.from({ length: gateways }, (_, i) => startGateway(broker, modelPath, group, `${group}-${i}`)),
  );
  const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const answeredIds = new Set<string>();
  let twice = 0;
  client.on('message', (_topic, payload) => {
    const { frame } = JSON.parse(payload.toString()) as { frame: string };
    if (answeredIds.has(frame)) twice++;
    answeredIds.add(frame);
    latencies.push(performance.now() - sentAt.get(frame)!);
  });
  await client.subscribeAsync(`${group}/+/result`, { qos: 1 });
  await publishFor(client, perSecond, sentAt);
  const inWindow = latencies.length;
  const counts = await settle(children, sentAt.size, () => answeredIds.size);
  await Promise.all(children.map(stopGateway));
  await client.endAsync();
  const sorted = latencies.sort((a, b) => a - b);
  const result: Run = {
    model: basename(modelPath, '.rnw'),
    gateways,
    offered_per_s: round(perSecond),
    published: sentAt.size,
    answered: answeredIds.size,
    answered_per_s: round(inWindow / durationS),
    dropped: counts.dropped,
    errors: counts.errors,
    lost: sentAt.size - answeredIds.size - counts.dropped - counts.errors,
    answered_twice: twice,
    p50_ms: round(sorted[Math.floor(sorted.length * 0.5)] ?? NaN),
    p95_ms: round(sorted[Math.floor(sorted.length * 0.95)] ?? NaN),
  };
  process.stderr.write(`${JSON.stringify(result)}\n`);
  return result;
}

/** The cameras take turns, each frame at its due time, for the duration. */
async function publishFor(client: mqtt.MqttClient, perSecond: number, sentAt: Map<string, number>): Promise<void> {
  const start = performance.now();
  const total = Math.round(perSecond * durationS);
  for (let n = 0; n < total; n++) {
    const due = start + (n * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const camera = `camera${n % CAMERAS}`;
    const id = `${camera}-${n}`;
    sentAt.set(id, performance.now());
    void client.publishAsync(`cameras/${camera}/image`, photo, {
      qos: 1,
      properties: { userProperties: { frame: id } },
    });
  }
}

/**
 * Waits until every published frame is answered, dropped or failed, as the gateways' metrics count
 * them, and every answer counted has come (polled: a benchmark, not a test).
 */
async function settle(
  children: Gateway[],
  published: number,
  received: () => number,
): Promise<{ dropped: number; errors: number }> {
  const deadline = performance.now() + SETTLE_MS;
  for (;;) {
    const counts = await Promise.all(children.map(readCounts));
    const sum = counts.reduce((a, c) => ({
      answered: a.answered + c.answered,
      dropped: a.dropped + c.dropped,
      errors: a.errors + c.errors,
    }));
    const settled = sum.answered + sum.dropped + sum.errors >= published && received() >= sum.answered;
    if (settled || performance.now() > deadline) return sum;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

interface Gateway {
  child: ChildProcess;
  metricsUrl: string;
}

async function startGateway(target: Broker, modelPath: string, group: string, clientId: string): Promise<Gateway> {
  const args = [
    'mqtt',
    '--broker',
    target.url,
    '--model',
    modelPath,
    '--workers',
    '1',
    '--threads',
    '1',
    '--group',
    group,
    '--client-id',
    clientId,
    '--result-topic',
    `${group}/{camera}/result`,
    '--metrics-port',
    '0',
  ];
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (data) => {
      stdout += data;
      const url = /metrics on (\S+?)\)/.exec(stdout)?.[1];
      if (url !== undefined) resolve({ child, metricsUrl: url });
    });
    child.once('exit', (code) => reject(new Error(`the gateway exited (code ${code}) before it was online`)));
  });
}

function stopGateway({ child }: Gateway): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function readCounts({ metricsUrl }: Gateway): Promise<{ answered: number; dropped: number; errors: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const value = (pattern: string) =>
    [...text.matchAll(new RegExp(`^${pattern} (\\S+)$`, 'gm'))].reduce((sum, m) => sum + Number(m[1]), 0);
  return {
    answered: value('resnet_wasm_mqtt_frames_answered_total'),
    dropped: value('resnet_wasm_mqtt_frames_dropped_total'),
    errors: value('resnet_wasm_errors_total\\{[^}]*\\}'),
  };
}

/** Median milliseconds of Model.classify on the photo bytes, one thread, after a warm-up. */
async function singleThreadMs(modelPath: string): Promise<number> {
  const model = await loadModel(modelPath, { threads: 1 });
  await model.classify(photo);
  const times: number[] = [];
  for (let i = 0; i < SINGLE_THREAD_RUNS; i++) {
    const start = performance.now();
    await model.classify(photo);
    times.push(performance.now() - start);
  }
  model.dispose();
  return median(times);
}

/** The builder's seeded ResNet-18 (what `resnet-wasm bench` times). */
function writeResnet18(): string {
  const path = join(ROOT, '.cache', 'resnet18.rnw');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, benchmarkModel());
  return path;
}

function table(rows: Run[]): string {
  const head =
    '| model | gateways | offered/s | answered/s | published | answered | dropped | errors | lost | twice | p50 / p95 ms |';
  const lines = rows.map(
    (r) =>
      `| ${r.model} | ${r.gateways} | ${r.offered_per_s} | ${r.answered_per_s} | ${r.published} | ${r.answered} | ${r.dropped} | ${r.errors} | ${r.lost} | ${r.answered_twice} | ${r.p50_ms} / ${r.p95_ms} |`,
  );
  return `${[head, '|---|---|---|---|---|---|---|---|---|---|---|', ...lines].join('\n')}\n`;
}

function round(x: number): number {
  return Number(x.toFixed(1));
}
