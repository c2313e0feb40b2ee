// onnxruntime-web's wasm backend (SIMD, multi-threaded build) on the QDQ or fp32 ONNX file, given
// as the bytes a browser would have fetched. In Node its threads are worker_threads.
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-web';
import type { PeerOptions, Session } from './measure.ts';

export async function load({ model, threads, input }: PeerOptions): Promise<Session> {
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  const session = await ort.InferenceSession.create(await readFile(model), { executionProviders: ['wasm'] });
  const { h, w, c } = input.shape;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input.nchw, [1, c, h, w]) };
  return { run: async () => (await session.run(feeds))[session.outputNames[0]].data as Float32Array };
}
