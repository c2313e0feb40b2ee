/**
 * Decoded photo → network input: resize + centre crop (torchvision's eval transform), channel
 * reorder, then either the exact input quantization of docs/ARCHITECTURE.md (for the int8
 * network) or the normalized float values (for the fp32 reference).
 */
import type { Preprocessing, QuantParams } from '../model/types.ts';
import type { RgbImage } from './decode.ts';
import { resizeAndCenterCrop } from './resize.ts';
import { roundHalfToEven } from './rounding.ts';

/**
 * table[c * 256 + p] is the quantized input for pixel value p in network channel c:
 * v = (p * pixelScale - mean[c]) / std[c], q = clamp(rne(v / scale) + zeroPoint, 0, 255),
 * all in double, in that order.
 */
export function inputLookupTable(pre: Preprocessing, quant: QuantParams): Uint8Array {
  const table = new Uint8Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < 256; p++) {
      const q = roundHalfToEven(normalize(pre, c, p) / quant.scale) + quant.zeroPoint;
      table[c * 256 + p] = Math.min(Math.max(q, 0), 255);
    }
  }
  return table;
}

/** The network's uint8 input, NHWC crop x crop x 3. */
export function preprocessQuantized(img: RgbImage, pre: Preprocessing, quant: QuantParams): Uint8Array {
  const table = inputLookupTable(pre, quant);
  return mapCrop(img, pre, new Uint8Array(pre.crop * pre.crop * 3), (c, p) => table[c * 256 + p]);
}

/** The fp32 reference's input, NHWC crop x crop x 3: the normalized values rounded to f32. */
export function preprocessFloat(img: RgbImage, pre: Preprocessing): Float32Array {
  return mapCrop(img, pre, new Float32Array(pre.crop * pre.crop * 3), (c, p) => normalize(pre, c, p));
}

function normalize(pre: Preprocessing, channel: number, pixel: number): number {
  return (pixel * pre.pixelScale - pre.mean[channel]) / pre.std[channel];
}

/** Resizes and crops, then writes value(c, pixel) for every network channel c into `out`. */
function mapCrop<T extends Uint8Array | Float32Array>(
  img: RgbImage,
  pre: Preprocessing,
  out: T,
  value: (channel: number, pixel: number) => number,
): T {
  const crop = resizeAndCenterCrop(img, pre.resize, pre.crop).data;
  const source = pre.colorOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  for (let i = 0; i < crop.length; i += 3) {
    for (let c = 0; c < 3; c++) out[i + c] = value(c, crop[i + source[c]]);
  }
  return out;
}
