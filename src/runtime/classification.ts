/** What `Model.classify` takes and answers; its own module so that the stream code needs no Model. */
import type { DecoderChoice } from '../image/decoders.ts';
import type { Prediction } from './topk.ts';

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
  /** Present for a head taught with `unknown: true`: whether the best score fell below its threshold. */
  unknown?: boolean;
}
