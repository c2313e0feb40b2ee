/**
 * The embedding: the network's global-average-pool tensor (the fc's input), dequantized. The same
 * uint8 values give the same floats everywhere: one double multiply of small integers rounded to f32.
 */

import { ResnetWasmError } from '../errors.ts';
import type { NetworkHeader, QuantTensor } from '../model/types.ts';

/** The id of the tensor the last layer (the fc) reads. */
export function embeddingTensor(header: NetworkHeader): number {
  const last = header.layers[header.layers.length - 1];
  if (last.kind !== 'fc')
    throw new ResnetWasmError(`the last layer "${last.name}" is ${last.kind}, not fc: the model has no embedding`);
  return last.input;
}

export function dequantize(values: Uint8Array, tensor: QuantTensor): Float32Array {
  return Float32Array.from(values, (q) => tensor.scale * (q - tensor.zeroPoint));
}
