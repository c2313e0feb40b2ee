/**
 * The JSON the gateway publishes: a result per classified frame, an error per refused or failed one
 * (its `kind` is serve's, src/serve/errors.ts). The README's payload reference describes these.
 */
import type { Prediction } from '../runtime/topk.ts';
import type { ServeError, ServeErrorKind } from '../serve/errors.ts';
import type { ClassifyResult } from '../serve/protocol.ts';
import type { Frame } from './frame.ts';

interface FramePayload {
  /** The client id of the gateway that answered. */
  gateway: string;
  camera: string;
  frame: string;
  /** ISO 8601, when the gateway received the frame. */
  receivedAt: string;
  /** Milliseconds from receipt to the answer: waiting, decoding, inference. */
  ms: number;
}

export interface ResultPayload extends FramePayload {
  /** The model file's name, without .rnw. */
  model: string;
  top: Prediction[];
  /** Milliseconds of decoding, preprocessing and inference in the worker. */
  inferenceMs: number;
}

export interface ErrorPayload extends FramePayload {
  error: { kind: ServeErrorKind; message: string };
}

export function resultPayload(gateway: string, frame: Frame, model: string, result: ClassifyResult): ResultPayload {
  return { ...framePayload(gateway, frame), model, top: result.top, inferenceMs: result.ms };
}

export function errorPayload(gateway: string, frame: Frame, error: ServeError): ErrorPayload {
  return { ...framePayload(gateway, frame), ...error.toJSON() };
}

function framePayload(gateway: string, frame: Frame): FramePayload {
  return {
    gateway,
    camera: frame.camera,
    frame: frame.id,
    receivedAt: frame.receivedAt.toISOString(),
    ms: Number((performance.now() - frame.received).toFixed(1)),
  };
}
