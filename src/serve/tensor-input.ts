/**
 * A preprocessed tensor, as an Open Inference Protocol client sends it (oip.ts), made the network's
 * uint8 NHWC input: FP32 normalized values quantized, UINT8 pixels through the lookup table, so a
 * tensor preprocessed by the library gives the logits the photo itself gives.
 */

import { quantizeNormalized, quantizePixels } from '../image/preprocess.ts';
import type { PixelMap } from '../image/resample.ts';
import type { QuantParams, Shape } from '../model/types.ts';
import type { TensorLayout } from './protocol.ts';

export function tensorToInput(
  bytes: Uint8Array,
  tensor: TensorLayout,
  shape: Shape,
  map: PixelMap,
  quant: QuantParams,
): Uint8Array {
  if (tensor.datatype === 'UINT8') return quantizePixels(tensor.layout === 'NHWC' ? bytes : toNhwc(bytes, shape), map);
  const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / Float32Array.BYTES_PER_ELEMENT);
  return quantizeNormalized(tensor.layout === 'NHWC' ? values : toNhwc(values, shape), quant);
}

function toNhwc<T extends Float32Array | Uint8Array>(chw: T, { h, w, c }: Shape): T {
  const out = new (chw.constructor as new (n: number) => T)(chw.length);
  for (let ch = 0; ch < c; ch++) {
    for (let p = 0; p < h * w; p++) out[p * c + ch] = chw[ch * h * w + p];
  }
  return out;
}
