import { defaultModelUrl } from '../default-model.ts';
import { BlockLesionError, ResnetWasmError } from '../errors.ts';
import { decodeModel } from '../format/reader.ts';
import { writeModel, writePackedModel } from '../format/writer.ts';
import { quantizingMap, writeQuantized } from '../image/preprocess.ts';
import type { PixelMap } from '../image/resample.ts';
import { type ImageSource, toRgbImage } from '../image/sources.ts';
import { type LesionOptions, withoutBlocks } from '../lesion/without.ts';
import type { NetworkHeader } from '../model/types.ts';
import { macs } from '../model/types.ts';
import { checkDecoder, checkTop } from '../options/validate.ts';
import { type FrameSource, FrameStream, type StreamOptions } from '../stream/frames.ts';
import { baseId } from '../teach/base-id.ts';
import { dequantize, embeddingTensor } from '../teach/embedding.ts';
import { TeachError } from '../teach/errors.ts';
import { type Head, headHeader, headLogits, headPayload } from '../teach/head.ts';
import type { Classification, ClassifyOptions } from './classification.ts';
import { loadNetwork } from './load/load-network.ts';
import type { LoadOptions } from './load/options.ts';
import type { ModelSource } from './load/sources.ts';
import type { InputTarget, MemoryFootprint, Network } from './network.ts';
import { topK } from './topk.ts';
import type { KernelBuild } from './wasm.ts';

export type { LoadProgress } from './load/options.ts';
export type { Classification, ClassifyOptions, LoadOptions, ModelSource };

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

/** The network a model and the models made from it with withHead share; the loaded one owns it. */
interface SharedNetwork {
  network: Network | null;
  baseId?: string;
}

/** A loaded int8 network: classify photos, or run preprocessed inputs. */
export class Model {
  private shared: SharedNetwork | null;
  /** Whether dispose() releases the network (false for a model made by withHead). */
  private readonly owner: boolean;
  /** A taught head run in JavaScript in place of the network's fc (withHead), or null. */
  private readonly head: Head | null;
  readonly header: NetworkHeader;
  /** Multiply-accumulates per inference. */
  readonly macs: number;
  /** Pixel value → quantized input, per channel. */
  private readonly inputMap: PixelMap;
  /** The fc's input, the global-average-pool tensor (null for a network that does not end in an fc). */
  private readonly embeddingId: number | null;

  /** @internal */
  constructor(network: Network, shared: { from: SharedNetwork; head: Head } | null = null) {
    this.shared = shared ? shared.from : { network };
    this.owner = shared === null;
    this.head = shared ? shared.head : null;
    this.header = shared ? headHeader(network.header, shared.head) : network.header;
    this.macs = macs(this.header);
    this.inputMap = quantizingMap(network.header.preprocessing, network.header.tensors[0]);
    this.embeddingId = network.header.layers.at(-1)?.kind === 'fc' ? embeddingTensor(network.header) : null;
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
    const write = (target: InputTarget) =>
      writeQuantized(target, target.at, rgb, this.header.preprocessing, this.inputMap);
    const logits = this.head
      ? this.headLogits(this.live().runWrittenTo(write, this.embedding()))
      : this.live().runWritten(write);
    const best = topK(logits, this.labels, top);
    const threshold = this.header.head?.unknown;
    const unknown = threshold === undefined ? {} : { unknown: best.length > 0 && best[0].score < threshold };
    return { top: best, logits, ms: performance.now() - start, ...unknown };
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
    if (!this.head) return this.live().run(input);
    this.live().setInput(input);
    return this.headLogits(this.live().runWrittenTo(() => {}, this.embedding()));
  }

  /** Values in an embedding: the channels of the global average pool (2048 for ResNet-50). */
  get embeddingSize(): number {
    return this.header.tensors[this.embedding()].c;
  }

  /**
   * The photo's embedding: the global-average-pool features, dequantized (the same bits on every
   * platform). One inference without the fc.
   */
  async embed(image: ImageSource, options: Pick<ClassifyOptions, 'decoder'> = {}): Promise<Float32Array> {
    this.live();
    const rgb = await toRgbImage(image, options);
    const pooled = this.live().runWrittenTo(
      (target) => writeQuantized(target, target.at, rgb, this.header.preprocessing, this.inputMap),
      this.embedding(),
    );
    return dequantize(pooled, this.header.tensors[this.embedding()]);
  }

  /**
   * The id of the network that makes the embeddings (src/teach/base-id.ts): heads taught on it
   * carry it, and withHead refuses a head with another.
   */
  get baseId(): string {
    const shared = this.shared!;
    this.live();
    shared.baseId ??= baseId(this.header, (layer) => this.live().parameters(layer));
    return shared.baseId;
  }

  /**
   * A model that answers with a taught head's labels (src/teach/teach.ts) and shares this one's
   * network: no second copy of the weights, and disposing this model disposes it too. Throws
   * TeachError for a head taught on another base network.
   */
  withHead(head: Head): Model {
    if (head.base !== this.baseId) {
      throw new TeachError(`the head was taught on base network ${head.base}, this model's is ${this.baseId}`);
    }
    if (head.weight.length !== head.labels.length * this.embeddingSize) {
      throw new TeachError(
        `the head has ${head.weight.length / head.labels.length} weights per class, this model's embedding ${this.embeddingSize}`,
      );
    }
    return new Model(this.live(), { from: this.shared!, head });
  }

  /** The model as a complete .rnw file (docs/FORMAT.md): its network's records, its fc or taught head. */
  toFile(): Uint8Array {
    const network = this.live();
    const payloads = network.header.layers.map((_, index) => network.parameters(index));
    if (this.head) payloads[payloads.length - 1] = headPayload(network.header, this.head);
    return writePackedModel(this.header, payloads);
  }

  /**
   * A faster model without the named residual blocks (`residualBlocks` lists them; src/lesion/):
   * each dropped block's input is requantized to the scale its output had. Loaded anew with
   * `options`; this model is unchanged and stays usable. Throws BlockLesionError for an unknown
   * name, a name given twice, a downsampling block (unless `downsampling: 'shortcut'`) or every
   * block, and for a model with a taught head (its head was taught on the full network's
   * embeddings: drop blocks from the base model, then teach again). No names: the same network.
   */
  async withoutBlocks(names: readonly string[], options: LoadOptions & LesionOptions = {}): Promise<Model> {
    if (this.head)
      throw new BlockLesionError(
        'this model answers with a taught head, taught on the full network: drop blocks from the base model, then teach the head again',
      );
    const { downsampling, ...load } = options;
    const file = this.toFile();
    const full = decodeModel(file);
    const shortened = withoutBlocks(full, names, downsampling ? { downsampling } : {});
    return loadModel(shortened === full ? file : writeModel(shortened), load);
  }

  private headLogits(pooled: Uint8Array): Float32Array {
    return headLogits(this.head!, pooled, this.header.tensors[this.embedding()].zeroPoint);
  }

  private embedding(): number {
    if (this.embeddingId === null)
      throw new ResnetWasmError('this model does not end in an fc layer: it has no embedding to teach from');
    return this.embeddingId;
  }

  /** The kernel build that runs: `relaxed` (relaxed SIMD) or `baseline`; both give the same bits. */
  get kernelBuild(): KernelBuild {
    return this.live().kernelBuild;
  }

  /** Threads sharing each layer: what `threads` (default `auto`) came to on this machine. */
  get threads(): number {
    return this.live().threads;
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
    if (this.owner && this.shared) {
      this.shared.network?.close();
      this.shared.network = null;
    }
    this.shared = null;
  }

  private live(): Network {
    const network = this.shared?.network;
    if (!network)
      throw new ResnetWasmError('this model has been disposed: its memory is released, load the model again to use it');
    return network;
  }
}
