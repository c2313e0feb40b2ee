// onnxruntime-node, the native CPU build (MLAS kernels): the reference for what int8 QDQ costs
// without wasm. Threads are its intra-op pool; one inter-op thread, as the graph is a chain.
import ort from 'onnxruntime-node';
import type { PeerOptions, Session } from './measure.ts';

export async function load({ model, threads, input }: PeerOptions): Promise<Session> {
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const { h, w, c } = input.shape;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input.nchw, [1, c, h, w]) };
  return { run: async () => (await session.run(feeds))[session.outputNames[0]].data as Float32Array };
}
