import { readFile } from 'node:fs/promises';
import type { NetworkHeader } from '../model/types.ts';
import { macs } from '../model/types.ts';
import { readModel } from '../format/reader.ts';
import { decodeImage, type RgbImage } from '../image/decode.ts';
import { preprocessQuantized } from '../image/preprocess.ts';
import { Network, type MemoryFootprint } from './network.ts';
import { topK, type Prediction } from './topk.ts';

export type ModelSource = string | URL | Uint8Array | ArrayBuffer;

export interface Classification {
  top: Prediction[];
  logits: Float32Array;
  /** Preprocessing + inference time in milliseconds. */
  ms: number;
}

/** A loaded int8 network: classify photos, or run preprocessed inputs. */
export class Model {
  private network: Network | null;
  readonly header: NetworkHeader;
  /** Multiply-accumulates per inference. */
  readonly macs: number;

  constructor(network: Network) {
    this.network = network;
    this.header = network.header;
    this.macs = macs(network.header);
  }

  get labels(): string[] {
    return this.header.labels;
  }

  /** Classifies an encoded photo (JPEG, PNG) or decoded RGB pixels. */
  classify(image: Uint8Array | RgbImage, options: { top?: number } = {}): Classification {
    const start = performance.now();
    const rgb = image instanceof Uint8Array ? decodeImage(image) : image;
    const logits = this.run(preprocessQuantized(rgb, this.header.preprocessing, this.header.tensors[0]));
    return { top: topK(logits, this.labels, options.top ?? 5), logits, ms: performance.now() - start };
  }

  /** Logits for an already quantized NHWC input (tensor 0 of the network). */
  run(input: Uint8Array): Float32Array {
    return this.live().run(input);
  }

  footprint(): MemoryFootprint {
    return this.live().footprint;
  }

  /** The layer-by-layer executor, for profiling. */
  get layers(): Network {
    return this.live();
  }

  /** Releases the wasm memory; the model cannot be used afterwards. */
  dispose(): void {
    this.network = null;
  }

  private live(): Network {
    if (!this.network) throw new Error('this model has been disposed');
    return this.network;
  }
}

/** Loads a model file (path, file URL, or its bytes): checked completely before it is usable. */
export async function loadModel(source: ModelSource): Promise<Model> {
  const bytes = await sourceBytes(source);
  const { header, payloads } = readModel(bytes);
  const network = await Network.create(header, payloads.map((p) => p.length));
  payloads.forEach((payload, i) => network.setParameters(i, payload));
  return new Model(network);
}

async function sourceBytes(source: ModelSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  return new Uint8Array(await readFile(source));
}
