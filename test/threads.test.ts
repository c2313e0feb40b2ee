// Threads claim chunks of every kernel call; each output byte is computed by one chunk with the same
// arithmetic, so the logits must be the same bits for any thread count and any chunking, also when
// another process keeps a core busy and threads are descheduled mid-layer. How many threads run:
// `auto` and its fallback, explicit counts, serve's workers x threads, and how many are awake.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { benchmarkModel } from '../src/builder/bench-model.ts';
import { ResnetWasmError, ThreadFailureError } from '../src/errors.ts';
import { readModel } from '../src/format/reader.ts';
import { checkThreads, OptionError } from '../src/options/validate.ts';
import { WORK } from '../src/runtime/kernels.ts';
import { loadModel } from '../src/runtime/model.ts';
import { Network } from '../src/runtime/network.ts';
import { MAX_AUTO_THREADS, threadCount } from '../src/runtime/thread-count.ts';
import { chunkCount, MIN_CHUNK_WORK } from '../src/runtime/threads.ts';
import { KERNEL_ABORTED } from '../src/runtime/wasm.ts';
import { serveSizing } from '../src/serve/sizing.ts';
import { REPO_PHOTOS } from './helpers/photos.ts';
import { mulberry32 } from './helpers/random.ts';

const DEFAULT_MODEL = new URL('../weights/default.rnw', import.meta.url);
const PHOTOS = ['chelsea.png', 'coffee.png', 'rocket.jpg'].map((name) => readFileSync(join(REPO_PHOTOS, name)));

/** A process that keeps one core busy; resolves once it spins. */
async function busyNeighbour(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'process.stdout.write("spinning\\n"); for (;;) {}'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(child.stdout!, 'data');
  return child;
}

test('the default ResNet-50 gives the same logits on 1, 2, 3, 4 and 7 threads with a core kept busy', async () => {
  const neighbour = await busyNeighbour();
  try {
    const results: Float32Array[][] = [];
    for (const threads of [1, 2, 3, 4, 7]) {
      const model = await loadModel(DEFAULT_MODEL, { threads });
      assert.is(model.threads, threads);
      const logits: Float32Array[] = [];
      for (const photo of PHOTOS) logits.push((await model.classify(photo)).logits);
      results.push(logits);
      model.dispose();
    }
    for (const [i, other] of results.entries()) assert.equal(other, results[0], `${[1, 2, 3, 4, 7][i]} threads`);
    assert.not.equal(results[0][0], results[0][1], 'different photos, different logits');
  } finally {
    neighbour.kill();
  }
});

test('ResNet-18 logits are the same bits however finely calls are cut, direct and Winograd', async () => {
  const { header, payloads } = readModel(benchmarkModel());
  const rng = mulberry32(11);
  const inputs = Array.from({ length: 2 }, () =>
    Uint8Array.from({ length: 224 * 224 * 3 }, () => Math.floor(rng() * 256)),
  );
  const results: Float32Array[][] = [];
  // minChunkWork 1: every call cut into as many chunks as its loop and the threads allow.
  for (const options of [
    { threads: 1 },
    { threads: 2, minChunkWork: 1 },
    { threads: 3, minChunkWork: 1 },
    { threads: 2, minChunkWork: 1, winograd: false },
    { threads: 1, winograd: false },
    // More threads than cores: the extra workers sleep, and on one core the caller runs every call.
    { threads: 4, cores: 2, minChunkWork: 1 },
    { threads: 3, cores: 1 },
  ]) {
    const net = await Network.create(
      header,
      payloads.map((p) => p.length),
      options,
    );
    payloads.forEach((p, i) => net.setParameters(i, p));
    assert.is(net.threads, options.threads);
    results.push(inputs.map((input) => net.run(input)));
    net.close();
  }
  for (const other of results.slice(1)) assert.equal(other, results[0]);
  assert.not.equal(results[0][0], results[0][1], 'different inputs, different logits');
});

/** Resolves once `condition` holds (checked every millisecond), or fails after `ms`. */
async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) assert.unreachable(`${what} within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

test('idle workers sleep, and with more threads than cores only as many as the cores are woken', async () => {
  const { header, payloads } = readModel(benchmarkModel());
  const input = new Uint8Array(224 * 224 * 3).fill(77);
  const expected = await singleThreadLogits(header, payloads, input);
  for (const cores of [3, 1]) {
    let calls = 0;
    const net = await Network.create(
      header,
      payloads.map((p) => p.length),
      { threads: 3, cores },
      (op) => void (op.op === 'call' && calls++),
    );
    payloads.forEach((p, i) => net.setParameters(i, p));
    for (let run = 0; run < 3; run++) assert.equal(net.run(input), expected);
    // Every worker counted out of `awake` as it fell asleep, none counted twice.
    await until(() => net.threadStats().awake === 0, 'all workers asleep');
    const before = net.threadStats().chunksRun;
    calls = 0;
    for (let run = 0; run < 3; run++) assert.equal(net.run(input), expected);
    const after = net.threadStats().chunksRun;
    if (cores === 1) {
      // None awake and none to wake: the caller runs each call whole, the workers nothing.
      assert.equal(after.slice(1), before.slice(1), 'no worker ran a chunk');
      assert.is(after[0] - before[0], calls, 'one chunk per kernel call');
    } else
      assert.ok(
        after.slice(1).some((n, i) => n > before[i + 1]),
        'sleeping workers were woken',
      );
    net.close();
  }
});

async function singleThreadLogits(
  header: ReturnType<typeof readModel>['header'],
  payloads: Uint8Array[],
  input: Uint8Array,
): Promise<Float32Array> {
  const net = await Network.create(
    header,
    payloads.map((p) => p.length),
    { threads: 1 },
  );
  payloads.forEach((p, i) => net.setParameters(i, p));
  const logits = net.run(input);
  net.close();
  return logits;
}

/** What the first of up to `tries` calls that rejects rejects with; fails if none does. */
async function firstRejection(call: () => Promise<unknown>, tries: number): Promise<unknown> {
  for (let attempt = 0; attempt < tries; attempt++) {
    const error = await call().then(
      () => null,
      (e: unknown) => e,
    );
    if (error !== null) return error;
  }
  return assert.unreachable(`none of ${tries} calls rejected`);
}

test('a worker that aborts ends its call and every later one with a ThreadFailureError, never a hang', async () => {
  // Worker 1 aborts on the first chunk it claims, while the caller may be asleep waiting for it;
  // every call is cut (minChunkWork 1), so it claims one within the first classify or so.
  const model = await loadModel(DEFAULT_MODEL, { threads: 2, cores: 2, minChunkWork: 1, failingThread: 1 });
  const failure = await firstRejection(() => model.classify(PHOTOS[0]), 5);
  assert.instance(failure, ThreadFailureError);
  const error = failure as ThreadFailureError;
  assert.is(error.thread, 1);
  assert.ok(
    error.kernel !== undefined && /^worker thread 1 failed running kernel "\w+": /.test(error.message),
    error.message,
  );
  assert.ok(error.message.includes(KERNEL_ABORTED), error.message);
  assert.match(error.message, /cannot run any more/);
  // The model stays unusable, and says why, at once.
  for (const photo of PHOTOS) {
    const again = await model.classify(photo).then(
      () => null,
      (e: unknown) => e,
    );
    assert.instance(again, ThreadFailureError);
    assert.is((again as Error).message, error.message);
  }
  model.dispose();
  try {
    await model.classify(PHOTOS[0]);
    assert.unreachable('classify after dispose');
  } catch (e) {
    assert.ok(e instanceof ResnetWasmError && /disposed/.test(e.message), String(e));
  }
});

test('a call is cut into more chunks than threads, none below the least work, and a small one not at all', () => {
  const conv = (outC: number, size: number, inC: number) =>
    WORK.conv({ outC, outH: size, outW: size, kh: 3, kw: 3, inC } as Parameters<typeof WORK.conv>[0]);
  for (const [work, threads] of [
    [conv(64, 56, 64), 2],
    [conv(512, 7, 512), 4],
    [conv(2048, 7, 512), 7],
    [WORK.add({ count: 56 * 56 * 256 } as Parameters<typeof WORK.add>[0]), 2],
  ] as const) {
    const chunks = chunkCount(work, threads);
    assert.ok(chunks > threads && chunks <= work.units, `${chunks} chunks for ${threads} threads`);
    assert.ok((work.units * work.unitWork) / chunks >= MIN_CHUNK_WORK, 'each chunk has the least work');
  }
  const small = WORK.add({ count: 7 * 7 * 2048 } as Parameters<typeof WORK.add>[0]);
  assert.is(chunkCount(small, 4), 1, 'an add on 7x7x2048 runs on one thread');
  assert.is(chunkCount(WORK.fc({ inC: 8, outC: 4 } as Parameters<typeof WORK.fc>[0]), 4, 1), 1, 'one unit: one chunk');
});

test('threads: auto takes the cores up to 4; where threads cannot run, 1 thread and one warning', () => {
  const warnings: string[] = [];
  const warn = (message: string) => warnings.push(message);
  const free = { cores: 2, obstacle: null };
  assert.is(threadCount('auto', free, warn), 2);
  assert.is(threadCount('auto', { cores: 16, obstacle: null }, warn), MAX_AUTO_THREADS);
  assert.is(threadCount('auto', { cores: 1, obstacle: null }, warn), 1);
  assert.is(threadCount(7, free, warn), 7, 'an explicit count is kept, even above the cores');
  assert.equal(warnings, []);
  const isolated = { cores: 8, obstacle: 'the page is not cross-origin isolated' };
  assert.is(threadCount('auto', isolated, warn), 1);
  assert.is(threadCount('auto', isolated, warn), 1);
  assert.is(warnings.length, 1, 'warned once');
  assert.match(warnings[0], /1 thread, not 4: the page is not cross-origin isolated/);
  assert.is(threadCount(1, isolated, warn), 1);
  assert.throws(
    () => threadCount(2, isolated, warn),
    (e: unknown) => e instanceof OptionError && /threads must be 1 or "auto" here \(the page is not/.test(e.message),
  );
});

test('threads must be a positive integer or "auto", in the library as on the command line', async () => {
  assert.is(checkThreads(), 'auto');
  for (const bad of [0, -1, 1.5, 'two', Number.NaN]) {
    assert.throws(
      () => checkThreads(bad),
      (e: unknown) =>
        e instanceof OptionError && e.option === 'threads' && /positive integer or "auto"/.test(e.message),
    );
  }
  try {
    await loadModel(benchmarkModel(), { threads: 0 });
    assert.unreachable('loaded');
  } catch (error) {
    assert.instance(error, OptionError);
  }
});

test('serve keeps workers x threads within the cores unless both are given', () => {
  assert.equal(serveSizing(undefined, 'auto', 2), { workers: 2, threads: 1 });
  assert.equal(serveSizing(1, 'auto', 2), { workers: 1, threads: 2 });
  assert.equal(serveSizing(1, 'auto', 16), { workers: 1, threads: MAX_AUTO_THREADS });
  assert.equal(serveSizing(3, 'auto', 2), { workers: 3, threads: 1 });
  assert.equal(serveSizing(undefined, 2, 2), { workers: 1, threads: 2 });
  assert.equal(serveSizing(undefined, 4, 2), { workers: 1, threads: 4 });
  assert.equal(serveSizing(2, 2, 2), { workers: 2, threads: 2 }, 'both given: both honoured');
});

test.run();
