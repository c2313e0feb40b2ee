/** The messages between the server's main thread and its classification workers (worker.ts). */
import type { Prediction } from '../runtime/topk.ts';
import type { ServeErrorKind } from './errors.ts';

/** Given to each worker when it starts. */
export interface WorkerConfig {
  /** The .rnw file every worker loads for itself. */
  modelPath: string;
}

/** One image to classify (or embed, for /v1/embed); `bytes` is transferred, not copied. */
export interface Job {
  id: number;
  bytes: Uint8Array;
  top: number;
  maxPixels: number;
  embed?: true;
}

/** What `classify --json` prints for a file, without the file name. */
export interface ClassifyResult {
  top: Prediction[];
  ms: number;
  /** For a model taught with `unknown: true`: the best score is below its threshold. */
  unknown?: boolean;
}

/** What `embed --json` prints for a file, without the file name. */
export interface EmbedResult {
  embedding: number[];
  ms: number;
}

export type JobReply = { id: number; result: ClassifyResult | EmbedResult } | { id: number; error: { kind: ServeErrorKind; message: string } };

/** A worker says `ready` once, after its model has loaded, then answers each job. */
export type WorkerMessage = { ready: true } | JobReply;
