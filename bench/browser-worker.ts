// One configuration of `npm run bench:browser` in a module worker of its own (as a web app would
// run it): ours (dist/browser.js) or onnxruntime-web's wasm backend (threaded, SIMD), loaded and
// warmed up once, then a stretch of timed runs each time the page asks (once a round).
import type * as Ort from 'onnxruntime-web';

export interface LoadRequest {
  runtime: 'resnet-wasm' | 'onnxruntime-web';
  /** URLs of the model file and of its input: quantized NHWC bytes for ours, f32 NCHW for onnxruntime-web. */
  model: string;
  input: string;
  threads: number;
}

export type Request = { load: LoadRequest } | { runs: number };
export type Reply = { loadMs: number } | { timesMs: number[]; logits: number[] } | { error: string };

const RUNTIME = '/browser.js';
const ORT = '/ort/ort.wasm.min.mjs';
const WARM_UP_RUNS = 3;
const INPUT_SIZE = 224;

let run: () => Promise<Float32Array>;

self.onmessage = async ({ data }: MessageEvent<Request>) => {
  try {
    postMessage('load' in data ? await load(data.load) : await timed(data.runs));
  } catch (error) {
    postMessage({ error: (error as Error).stack ?? String(error) } satisfies Reply);
  }
};

async function load(request: LoadRequest): Promise<Reply> {
  const start = performance.now();
  const input = await (await fetch(request.input)).arrayBuffer();
  run = request.runtime === 'resnet-wasm' ? await loadOurs(request, input) : await loadOrt(request, input);
  const loadMs = performance.now() - start;
  for (let i = 0; i < WARM_UP_RUNS; i++) await run();
  return { loadMs };
}

/** One untimed run (other configurations have had the caches and cores since), then `runs` timed. */
async function timed(runs: number): Promise<Reply> {
  await run();
  const timesMs: number[] = [];
  let logits: Float32Array = new Float32Array(0);
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    logits = await run();
    timesMs.push(performance.now() - start);
  }
  return { timesMs, logits: Array.from(logits) };
}

async function loadOurs({ model, threads }: LoadRequest, input: ArrayBuffer): Promise<() => Promise<Float32Array>> {
  const { loadModel } = await import(RUNTIME);
  const network = await loadModel(model, { threads });
  const x = new Uint8Array(input);
  return async () => network.run(x);
}

async function loadOrt({ model, threads }: LoadRequest, input: ArrayBuffer): Promise<() => Promise<Float32Array>> {
  const ort: typeof Ort = await import(ORT);
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = '/ort/';
  const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'] });
  const feeds = {
    [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(input), [1, 3, INPUT_SIZE, INPUT_SIZE]),
  };
  return async () => (await session.run(feeds))[session.outputNames[0]].data as Float32Array;
}
