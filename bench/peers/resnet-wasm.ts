// Ours: the .rnw file streamed into wasm memory; the photo quantized once, as classify() would.
import { preprocessQuantized } from '../../src/image/preprocess.ts';
import { loadModel } from '../../src/runtime/model.ts';
import type { PeerOptions, Session } from './measure.ts';

export async function load({ model: file, threads, input }: PeerOptions): Promise<Session> {
  const model = await loadModel(file, { threads });
  const x = preprocessQuantized(input.image, model.header.preprocessing, model.header.tensors[0]);
  return { run: () => model.run(x) };
}
