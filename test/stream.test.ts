// The streaming loader: every kind of source, progress, abort, HTTP resume and restart, the
// Cache API, the memory API, and the timing and memory targets of streaming.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModelPath } from '../src/cli/paths.ts';
import { ModelFormatError, ModelLoadError, ResnetWasmError } from '../src/errors.ts';
import { readModel } from '../src/format/reader.ts';
import type { Model } from '../src/runtime/model.ts';
import { type LoadProgress, loadModel, type ModelSource } from '../src/runtime/model.ts';
import { Network } from '../src/runtime/network.ts';
import { resnet18File, tinyModelFile } from './helpers/model-files.ts';
import { type FileServer, serveFile } from './helpers/server.ts';

const CAT = join(import.meta.dirname, 'photos', 'chelsea.png');
const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-stream-'));
const TINY = tinyModelFile();
const TINY_PATH = join(dir, 'tiny.rnw');
writeFileSync(TINY_PATH, TINY);
const R18 = resnet18File();
const R18_PATH = join(dir, 'resnet18.rnw');
writeFileSync(R18_PATH, R18);

const tinyLogits = await logitsOf(TINY);
const r18Logits = await logitsOf(R18);

async function logitsOf(source: ModelSource): Promise<Float32Array> {
  const model = await loadModel(source);
  const { logits } = await model.classify(CAT);
  model.dispose();
  return logits;
}

/** Runs `body` against a server for `file`, closing the server whatever happens. */
async function withServer<T>(
  file: Uint8Array,
  options: Parameters<typeof serveFile>[1],
  body: (server: FileServer) => Promise<T>,
): Promise<T> {
  const server = await serveFile(file, options);
  try {
    return await body(server);
  } finally {
    await server.close();
  }
}

async function* inPieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

function sha256(bytes: Uint8Array | ArrayBuffer): string {
  return createHash('sha256').update(new Uint8Array(bytes)).digest('hex');
}

/** Everything the file put in wasm memory (parameters, derived weights; the arena is still zero). */
function wasmDigest(model: Model): string {
  const network = model.layers as unknown as { kernels: { memory: WebAssembly.Memory } };
  return sha256(network.kernels.memory.buffer);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return assert.unreachable('expected the load to fail');
}

test('every kind of source gives the same model', async () => {
  const padded = new Uint8Array(TINY.length + 5);
  padded.set(TINY, 5);
  const sources: [string, () => ModelSource][] = [
    ['path', () => TINY_PATH],
    ['file: URL string', () => pathToFileURL(TINY_PATH).href],
    ['file: URL', () => pathToFileURL(TINY_PATH)],
    ['Uint8Array view', () => padded.subarray(5)],
    ['ArrayBuffer', () => TINY.slice().buffer],
    ['ReadableStream', () => new Blob([TINY.slice()]).stream()],
    ['async iterable, 7-byte chunks', () => inPieces(TINY, 7)],
  ];
  for (const [name, source] of sources) assert.equal(await logitsOf(source()), tinyLogits, name);
  await withServer(TINY, {}, async (server) => {
    assert.equal(await logitsOf(server.url), tinyLogits, 'http URL string');
    assert.equal(await logitsOf(new URL(server.url)), tinyLogits, 'http URL');
  });
});

test('progress: bytes and layers only grow, and end at the file size and the layer count', async () => {
  const layerCount = readModel(TINY).header.layers.length;
  const sources: [string, ModelSource, number | undefined][] = [
    ['path', TINY_PATH, TINY.length],
    ['bytes', TINY, TINY.length],
    ['iterable', inPieces(TINY, 300), undefined],
  ];
  for (const [name, source, totalBytes] of sources) {
    const seen: LoadProgress[] = [];
    (await loadModel(source, { onProgress: (p) => seen.push(p) })).dispose();
    const last = seen[seen.length - 1];
    assert.equal(last, { bytesLoaded: TINY.length, totalBytes, layersReady: layerCount, layerCount }, name);
    seen.slice(1).forEach((p, i) => {
      assert.ok(
        p.bytesLoaded >= seen[i].bytesLoaded && p.layersReady >= seen[i].layersReady,
        `${name}: progress went back`,
      );
      assert.is(p.totalBytes, totalBytes);
    });
  }
});

test('a stream throttled to 8 MB/s: layers are ready before the last byte, all of them once it is checked', async () => {
  await withServer(R18, { bytesPerSecond: 8e6 }, async (server) => {
    const seen: LoadProgress[] = [];
    const model = await loadModel(server.url, { onProgress: (p) => seen.push(p) });
    const readyEarly = seen.find((p) => p.layersReady > 0 && p.bytesLoaded < p.totalBytes!);
    assert.ok(readyEarly, 'no layer was ready before the stream ended');
    assert.ok(readyEarly.bytesLoaded < R18.length / 2, `first layer ready only at byte ${readyEarly.bytesLoaded}`);
    // Each layer is placed as its bytes arrive: when the last chunk has been checked and placed,
    // nothing is left to do but build the Model (the time that takes is measured in bench/).
    const last = seen.find((p) => p.bytesLoaded === p.totalBytes)!;
    assert.is(
      last.layersReady,
      last.layerCount,
      `${last.layersReady} of ${last.layerCount} layers ready at the last byte`,
    );
    assert.equal((await model.classify(CAT)).logits, r18Logits);
    model.dispose();
  });
});

test('a download cut twice resumes with Range requests: byte-identical file, same memory, same logits', async () => {
  const cuts = [Math.floor(R18.length * 0.4), Math.floor(R18.length * 0.35)];
  const store = new FakeCacheStorage();
  await withGlobal('caches', store, () =>
    withServer(R18, { cutAfter: cuts }, async (server) => {
      const model = await loadModel(server.url, { cache: 'resnet-wasm' });
      // Each resume asks for the bytes after those that reached the client (some of the sent ones were lost).
      assert.equal(
        server.requests.map((r) => r.status),
        [200, 206, 206],
      );
      const [first, second] = server.requests.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r.range ?? '')?.[1]));
      assert.ok(first > 0 && first <= cuts[0], `first resume from ${first}`);
      assert.ok(second > first && second <= first + cuts[1], `second resume from ${second}`);
      assert.is(server.requests[1].ifRange, '"model-v1"');
      const stored = await store.bytes('resnet-wasm', server.url);
      assert.is(sha256(stored!), sha256(R18), 'the assembled file differs from the served one');
      const direct = await loadModel(R18);
      assert.is(wasmDigest(model), wasmDigest(direct));
      assert.equal((await model.classify(CAT)).logits, r18Logits);
      model.dispose();
      direct.dispose();
    }),
  );
});

test('a server that ignores Range restarts the load cleanly from byte 0', async () => {
  await withServer(R18, { cutAfter: [2e6], ignoreRange: true }, async (server) => {
    const seen: LoadProgress[] = [];
    const model = await loadModel(server.url, { onProgress: (p) => seen.push(p) });
    assert.equal(
      server.requests.map((r) => r.status),
      [200, 200],
    );
    assert.match(server.requests[1].range ?? '', /^bytes=\d+-$/);
    assert.ok(
      seen.some((p, i) => i > 0 && p.bytesLoaded < seen[i - 1].bytesLoaded),
      'progress should restart',
    );
    assert.equal((await model.classify(CAT)).logits, r18Logits);
    model.dispose();
  });
});

test('retries are bounded; HTTP errors fail at once with ModelLoadError', async () => {
  await withServer(TINY, { cutAfter: [1000, 1000, 1000, 1000] }, async (server) => {
    const error = await rejection(loadModel(server.url, { retries: 2 }));
    assert.instance(error, ModelLoadError);
    assert.match(String(error), /after 2 retries/);
    assert.is(server.requests.length, 3);
  });
  await withServer(TINY, { status: 404 }, async (server) => {
    const error = await rejection(loadModel(server.url));
    assert.instance(error, ModelLoadError);
    assert.is((error as ModelLoadError).status, 404);
    assert.is(server.requests.length, 1);
  });
});

test('a corrupted download fails with ModelFormatError and closes the connection', async () => {
  const corrupted = R18.slice();
  corrupted[R18.length >> 2] ^= 0x10;
  await withServer(corrupted, { bytesPerSecond: 50e6 }, async (server) => {
    const error = await rejection(loadModel(server.url));
    assert.instance(error, ModelFormatError);
    assert.match(String(error), /CRC-32 mismatch/);
    await server.requests[0].closed;
    assert.ok(server.requests[0].sent < R18.length, 'the rest of the file should not be sent');
  });
});

test('a file whose size disagrees with its header is refused before any allocation', async () => {
  const path = join(dir, 'short.rnw');
  writeFileSync(path, TINY.subarray(0, TINY.length - 16));
  const error = await rejection(loadModel(path));
  assert.instance(error, ModelFormatError);
  assert.match(String(error), /file truncated: the metadata implies \d+ bytes, the source has \d+/);
  const long = new Uint8Array(TINY.length + 3);
  long.set(TINY);
  assert.match(String(await rejection(loadModel(long))), /3 bytes follow/);
});

test('abort: before the start, mid-download, and while a source hangs: an AbortError, at once', async () => {
  const before = new AbortController();
  before.abort();
  assert.is(((await rejection(loadModel(TINY, { signal: before.signal }))) as Error).name, 'AbortError');

  await withServer(R18, { bytesPerSecond: 4e6 }, async (server) => {
    const controller = new AbortController();
    let progressAfterAbort = 0;
    const error = await rejection(
      loadModel(server.url, {
        signal: controller.signal,
        onProgress: (p) => {
          if (controller.signal.aborted) progressAfterAbort++;
          else if (p.layersReady > 3) controller.abort();
        },
      }),
    );
    assert.is((error as Error).name, 'AbortError');
    assert.is(progressAfterAbort, 0, 'chunks were placed after the abort');
    await server.requests[0].closed;
    assert.ok(server.requests[0].sent < R18.length, 'the download went on after the abort');
  });

  // The source yields a chunk, then hangs on the next read: the abort comes while it waits.
  const controller = new AbortController();
  const hanging = {
    async *[Symbol.asyncIterator]() {
      yield TINY.subarray(0, 100);
      controller.abort();
      await new Promise(() => {});
    },
  };
  assert.is(((await rejection(loadModel(hanging, { signal: controller.signal }))) as Error).name, 'AbortError');
});

test('a stream of something else than Uint8Array chunks is a ModelLoadError', async () => {
  const strings = (async function* () {
    yield 'not bytes';
  })();
  const error = await rejection(loadModel(strings as unknown as AsyncIterable<Uint8Array>));
  assert.instance(error, ModelLoadError);
  assert.match(String(error), /yielded a string, expected Uint8Array chunks/);
});

test('Cache API: a verified download is stored, loaded from the cache next time, and a damaged copy replaced', async () => {
  const store = new FakeCacheStorage();
  await withGlobal('caches', store, () =>
    withServer(TINY, {}, async (server) => {
      assert.equal(await logitsOf(server.url), tinyLogits, 'first load, from the network');
      assert.is(
        sha256((await store.bytes('other', server.url)) ?? new Uint8Array(0)),
        sha256(new Uint8Array(0)),
        'no cache option, no caching',
      );
      await loadModel(server.url, { cache: 'resnet-wasm' });
      assert.is(server.requests.length, 2);
      const model = await loadModel(server.url, { cache: 'resnet-wasm' });
      assert.is(server.requests.length, 2, 'the second load should not touch the network');
      assert.equal((await model.classify(CAT)).logits, tinyLogits);

      const damaged = TINY.slice();
      damaged[TINY.length >> 1] ^= 1;
      await store.put('resnet-wasm', server.url, damaged);
      assert.equal((await (await loadModel(server.url, { cache: 'resnet-wasm' })).classify(CAT)).logits, tinyLogits);
      assert.is(server.requests.length, 3, 'a damaged copy is downloaded again');
      assert.is(sha256((await store.bytes('resnet-wasm', server.url))!), sha256(TINY));
    }),
  );
});

test('footprint reports the wasm memory, parameters and arena; dispose releases the instance', async () => {
  const model = await loadModel(R18, { threads: 1 });
  const f = model.footprint();
  // Every payload stays as it came (Winograd derives U' as it runs); derived: unfolded biases only.
  const payloadBytes = readModel(R18).payloads.reduce((sum, p) => sum + p.length, 0);
  assert.ok(f.parameterBytes >= payloadBytes && f.derivedBytes > 0 && f.derivedBytes < payloadBytes / 100);
  assert.ok(f.arenaBytes > 0 && f.wasmBytes >= f.parameterBytes + f.derivedBytes + f.arenaBytes);
  const planned = async (threads: number) => {
    const { header, payloads } = readModel(R18);
    return (
      await Network.plan(
        header,
        payloads.map((p) => p.length),
        { threads },
      )
    ).layout.wasmBytes;
  };
  assert.is(f.wasmBytes, await planned(1), 'the loader checks the memory it allocates');
  const threaded = await loadModel(R18, { threads: 3 });
  assert.is(
    threaded.footprint().wasmBytes,
    await planned(3),
    'the loader checks the memory it allocates, on threads too',
  );
  threaded.dispose();
  const network = new WeakRef(model.layers);
  model.dispose();
  model.dispose();
  const disposedError = (e: unknown) => e instanceof ResnetWasmError && /disposed/.test((e as Error).message);
  for (const use of [() => model.footprint(), () => model.run(new Uint8Array(3))]) assert.throws(use, disposedError);
  assert.ok(disposedError(await model.classify(CAT).catch((e: unknown) => e)), 'classify rejects');
  await collectGarbage();
  assert.is(network.deref(), undefined, 'the network (and its wasm memory) should be collectable');
});

for (const [name, path] of [
  ['ResNet-18', R18_PATH],
  ['the default ResNet-50', defaultModelPath()],
]) {
  test(`${name}: peak live JS heap + wasm memory while streaming from disk ≤ 1.5 × file + arena, default options`, async () => {
    const gc = await collectGarbage();
    // Node counts a wasm memory's growth unreliably, so the wasm part is its size (fixed from the header on).
    const javascript = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const baseline = javascript();
    let peak = baseline;
    // Collected before each sample: garbage that the next GC reclaims is not what the loader holds.
    const sample = () => {
      gc();
      peak = Math.max(peak, javascript());
    };
    const model = await loadModel(path, { onProgress: sample });
    assert.ok(model.layers.convPaths().includes('winograd'));
    const extra = peak - baseline + model.footprint().wasmBytes;
    const bound = 1.5 * statSync(path).size + model.footprint().arenaBytes;
    assert.ok(
      extra <= bound,
      `peak ${(extra / 2 ** 20).toFixed(1)} MiB over the bound ${(bound / 2 ** 20).toFixed(1)} MiB`,
    );
    model.dispose();
  });
}

test('bench --cold --json: a line with cold_ms, the median of fresh processes streaming the model from disk', () => {
  const cli = join(import.meta.dirname, '..', 'bin', 'resnet-wasm.js');
  const r = spawnSync(process.execPath, [cli, 'bench', '--cold', '--model', TINY_PATH, '--json'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(Object.keys(result).sort(), ['cold_ms', 'model', 'runs_ms']);
  assert.is(result.runs_ms.length, 5);
  assert.ok(result.cold_ms > 0 && result.runs_ms.includes(result.cold_ms));
});

/** Runs a full GC (exposing gc() for this process on first use); returns gc for later use. */
async function collectGarbage(): Promise<() => void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  await new Promise((resolve) => setTimeout(resolve, 0));
  gc();
  return gc;
}

async function withGlobal<T>(name: string, value: unknown, body: () => Promise<T>): Promise<T> {
  const scope = globalThis as Record<string, unknown>;
  scope[name] = value;
  try {
    return await body();
  } finally {
    delete scope[name];
  }
}

/** The slice of the Cache API the loader uses, kept in memory. */
class FakeCacheStorage {
  private readonly caches = new Map<string, Map<string, Uint8Array>>();

  async open(name: string) {
    const entries = this.caches.get(name) ?? new Map<string, Uint8Array>();
    this.caches.set(name, entries);
    return {
      match: async (url: string) => {
        const bytes = entries.get(url);
        return bytes && new Response(bytes.slice(), { headers: { 'content-length': String(bytes.length) } });
      },
      put: async (url: string, response: Response) => {
        entries.set(url, new Uint8Array(await response.arrayBuffer()));
      },
      delete: async (url: string) => entries.delete(url),
    };
  }

  async bytes(name: string, url: string): Promise<Uint8Array | undefined> {
    return this.caches.get(name)?.get(url);
  }

  async put(name: string, url: string, bytes: Uint8Array): Promise<void> {
    await (await this.open(name)).put(url, new Response(bytes.slice()));
  }
}

test.run();
