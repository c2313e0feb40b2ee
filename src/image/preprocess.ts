/**
 * Decoded photo → network input: resize + centre crop (torchvision's eval transform), channel
 * reorder, then either the exact input quantization of docs/ARCHITECTURE.md (for the int8
 * network) or the normalized float values (for the fp32 reference). Both start from the same
 * resized 8-bit pixels (resample.ts).
 */
import type { Preprocessing, QuantParams } from '../model/types.ts';
import type { RgbImage } from './decode.ts';
import { DEFAULT_MAX_PIXELS } from './header.ts';
import { type PixelMap, type ResampleSite, resampleInto, worstCaseScratchBytes } from './resample.ts';
import { render, resizeAndCenterCrop, resizeCropWindow } from './resize.ts';
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

/** The quantizing map of a network: its lookup table and channel order. */
export function quantizingMap(pre: Preprocessing, quant: QuantParams): PixelMap {
  return { table: inputLookupTable(pre, quant), bgr: pre.colorOrder === 'BGR' };
}

/**
 * Scratch that writing any input of at most 40 megapixels (the decoders' limit, which raw frames
 * share) needs in a network's memory: a few hundred KiB, alongside tensor 0 before layer 0 runs.
 */
export function inputScratchBytes(pre: Preprocessing): number {
  return worstCaseScratchBytes(pre.resize, pre.crop, DEFAULT_MAX_PIXELS);
}

/** Writes the network's uint8 input, NHWC crop x crop x 3, at `output` in the site's memory. */
export function writeQuantized(
  site: ResampleSite,
  output: number,
  img: RgbImage,
  pre: Preprocessing,
  map: PixelMap,
): void {
  const { out, rect } = resizeCropWindow(img, pre.resize, pre.crop);
  resampleInto(site, img, out, rect, map, output);
}

/** The network's uint8 input, NHWC crop x crop x 3, as a new array. */
export function preprocessQuantized(img: RgbImage, pre: Preprocessing, quant: QuantParams): Uint8Array {
  const { out, rect } = resizeCropWindow(img, pre.resize, pre.crop);
  return render(img, out, rect, quantizingMap(pre, quant)).data;
}

/**
 * The crop's RGB pixels (NHWC, already resized and cropped) as the network's uint8 input: the bytes
 * writeQuantized makes from the same pixels.
 */
export function quantizePixels(pixels: Uint8Array, map: PixelMap): Uint8Array {
  const out = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i += 3) {
    for (let c = 0; c < 3; c++) out[i + c] = map.table[c * 256 + pixels[i + (map.bgr ? 2 - c : c)]];
  }
  return out;
}

/**
 * Normalized values (NHWC, the network's channel order: preprocessFloat's output) as the network's
 * uint8 input, by the input quantization of docs/ARCHITECTURE.md: clamp(rne(v / scale) + zeroPoint).
 */
export function quantizeNormalized(values: Float32Array, quant: QuantParams): Uint8Array {
  return Uint8Array.from(values, (v) => Math.min(Math.max(roundHalfToEven(v / quant.scale) + quant.zeroPoint, 0), 255));
}

/** The fp32 reference's input, NHWC crop x crop x 3: the normalized values rounded to f32. */
export function preprocessFloat(img: RgbImage, pre: Preprocessing): Float32Array {
  const crop = resizeAndCenterCrop(img, pre.resize, pre.crop).data;
  const out = new Float32Array(crop.length);
  const source = pre.colorOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  for (let i = 0; i < crop.length; i += 3) {
    for (let c = 0; c < 3; c++) out[i + c] = normalize(pre, c, crop[i + source[c]]);
  }
  return out;
}

function normalize(pre: Preprocessing, channel: number, pixel: number): number {
  return (pixel * pre.pixelScale - pre.mean[channel]) / pre.std[channel];
}
