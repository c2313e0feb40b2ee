/** The messages between the server's main thread and its classification workers (worker.ts). */
import type { Prediction } from '../runtime/topk.ts';
import type { ServeErrorKind } from './errors.ts';

/** Given to each worker when it starts. */
export interface WorkerConfig {
  /** The .rnw file every worker loads for itself. */
  modelPath: string;
  /** Threads that each worker's model runs on. */
  threads: number;
}

/** One image to classify or embed (/v1/embed), or one preprocessed tensor to run; `bytes` is transferred, not copied. */
export interface Job extends JobOptions {
  id: number;
  bytes: Uint8Array;
  top: number;
  maxPixels: number;
  embed?: true;
}

export interface JobOptions {
  /** `bytes` hold a preprocessed input (tensor-input.ts) rather than an encoded image. */
  tensor?: TensorLayout;
  /** Answer the logits too (the Open Inference Protocol's output). */
  logits?: boolean;
}

/**
 * A preprocessed input of the network's size, little-endian, one image: FP32 holds the normalized
 * values in the network's channel order, UINT8 the RGB pixels already resized and cropped.
 */
export interface TensorLayout {
  datatype: 'FP32' | 'UINT8';
  layout: 'NCHW' | 'NHWC';
}

/** What `classify --json` prints for a file, without the file name; the logits when asked for. */
export interface ClassifyResult {
  top: Prediction[];
  ms: number;
  logits?: Float32Array;
  /** For a model taught with `unknown: true`: the best score is below its threshold. */
  unknown?: boolean;
}

/** What the main thread knows of the model (the workers load it): for /v2's metadata and checks. */
export interface ModelSummary {
  architecture: string;
  /** The input tensor, NHWC. */
  input: { h: number; w: number; c: number };
  labels: string[];
}

/** What `embed --json` prints for a file, without the file name. */
export interface EmbedResult {
  embedding: number[];
  ms: number;
}

export type JobReply =
  | { id: number; result: ClassifyResult | EmbedResult }
  | { id: number; error: { kind: ServeErrorKind; message: string } };

/** A worker says `ready` once, after its model has loaded, then answers each job. */
export type WorkerMessage = { ready: true; model: ModelSummary } | JobReply;
