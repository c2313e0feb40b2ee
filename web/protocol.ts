// Messages between the page (app.ts) and the classification worker (worker.ts).
import type { LoadProgress, Prediction } from '../src/index.ts';

export type ToWorker =
  | { type: 'load'; url: string }
  /** An image file's bytes (decoded in the worker by the browser) or a camera frame. */
  | { type: 'classify'; id: number; image: ArrayBuffer | ImageBitmap }
  /** Teach mode: one more example of class `label`. */
  | { type: 'teach'; label: string; image: ArrayBuffer | ImageBitmap }
  | { type: 'forget' }
  | { type: 'download' };

export type FromWorker =
  | ({ type: 'progress' } & LoadProgress)
  | { type: 'ready'; threads: number; isolated: boolean; loadMs: number }
  | { type: 'result'; id: number; top: Prediction[]; logits: Float32Array; ms: number }
  | { type: 'error'; id?: number; message: string }
  /** The taught classes after an example was added (or restored, or forgotten). */
  | { type: 'taught'; classes: { label: string; count: number }[]; ms: number }
  | { type: 'file'; bytes: ArrayBuffer };
