import type { NetworkHeader } from '../model/types.ts';
import { macs } from '../model/types.ts';
import { ResnetWasmError } from '../errors.ts';
import { toRgbImage, type ImageSource } from '../image/sources.ts';
import type { DecoderChoice } from '../image/decoders.ts';
import { quantizingMap, writeQuantized } from '../image/preprocess.ts';
import type { PixelMap } from '../image/resample.ts';
import type { Network, MemoryFootprint } from './network.ts';
import { topK, type Prediction } from './topk.ts';
import type { KernelBuild } from './wasm.ts';
import { checkDecoder, checkTop } from '../options/validate.ts';
import { FrameStream, type FrameSource, type StreamOptions } from '../stream/frames.ts';
import { loadNetwork } from './load/load-network.ts';
import type { LoadOptions } from './load/options.ts';
import type { ModelSource } from './load/sources.ts';
import { defaultModelUrl } from '../default-model.ts';

export type { ModelSource, LoadOptions };
export type { LoadProgress } from './load/options.ts';

/**
 * Loads a model, placing each layer in wasm memory as it arrives; resolves once the whole file is
 * verified. With no source (or `undefined`), the packaged ImageNet ResNet-50 (src/default-model.ts).
 */
export async function loadModel(source: ModelSource = defaultModelUrl(), options: LoadOptions = {}): Promise<Model> {
  const network = await loadNetwork(source, options);
  try {
    return new Model(network);
  } catch (error) {
    network.close();
    throw error;
  }
}

export interface ClassifyOptions {
  /** How many classes to return: a positive integer (default 5; more than the model's classes gives all). */
  top?: number;
  /** Which decoder reads encoded bytes (default `auto`: sharp where it loads, else JavaScript). */
  decoder?: DecoderChoice;
}

export interface Classification {
  top: Prediction[];
  logits: Float32Array;
  /** Decoding + preprocessing + inference time in milliseconds. */
  ms: number;
}

/** A loaded int8 network: classify photos, or run preprocessed inputs. */
export class Model {
  private network: Network | null;
  readonly header: NetworkHeader;
  /** Multiply-accumulates per inference. */
  readonly macs: number;
  /** Pixel value → quantized input, per channel. */
  private readonly inputMap: PixelMap;

  /** @internal */
  constructor(network: Network) {
    this.network = network;
    this.header = network.header;
    this.macs = macs(network.header);
    this.inputMap = quantizingMap(network.header.preprocessing, network.header.tensors[0]);
  }

  get labels(): string[] {
    return this.header.labels;
  }

  /**
   * Classifies a photo: a path or encoded bytes (JPEG, PNG; WebP and more where sharp loads), RGB(A)
   * pixels, or a browser image (src/image/sources.ts). Asynchronous because sharp decodes off the
   * main thread.
   */
  async classify(image: ImageSource, options: ClassifyOptions = {}): Promise<Classification> {
    const start = performance.now();
    const top = checkTop(options.top);
    const decoder = checkDecoder(options.decoder);
    this.live();
    const rgb = await toRgbImage(image, { decoder });
    // Resized, cropped and quantized in wasm, straight into tensor 0.
    const logits = this.live().runWritten((target) => writeQuantized(target, target.at, rgb, this.header.preprocessing, this.inputMap));
    return { top: topK(logits, this.labels, top), logits, ms: performance.now() - start };
  }

  /**
   * Classifies a live source's frames, newest first: MJPEG bytes (a Node stream, a `fetch` body),
   * or in browsers a <video> element or a MediaStream. Iterate it with `for await`; frames that
   * arrive while one is classified replace each other, and each result counts those dropped
   * (src/stream/frames.ts). `summary` has the counts.
   */
  classifyStream(source: FrameSource, options: StreamOptions = {}): FrameStream {
    this.live();
    return new FrameStream(this, source, options);
  }

  /** Logits for an already quantized NHWC input (tensor 0 of the network). */
  run(input: Uint8Array): Float32Array {
    return this.live().run(input);
  }

  /** The kernel build that runs: `relaxed` (relaxed SIMD) or `baseline`; both give the same bits. */
  get kernelBuild(): KernelBuild {
    return this.live().kernelBuild;
  }

  /** Bytes of wasm memory this model holds: all of it, its parameters, its activation arena. */
  footprint(): MemoryFootprint {
    return { ...this.live().footprint };
  }

  /** The layer-by-layer executor, for profiling. @internal */
  get layers(): Network {
    return this.live();
  }

  /**
   * Stops its worker threads and drops the wasm instance and its memory (the garbage collector
   * reclaims them once nothing else holds them); every later call but dispose() throws. Calling it
   * again does nothing.
   */
  dispose(): void {
    this.network?.close();
    this.network = null;
  }

  private live(): Network {
    if (!this.network) throw new ResnetWasmError('this model has been disposed: its memory is released, load the model again to use it');
    return this.network;
  }
}
