/**
 * torchvision's `Resize(size)` + `CenterCrop(crop)` on a PIL image, reproduced bit for bit.
 *
 * Resize is PIL's `ImagingResample` with the bilinear filter: separable (horizontal pass, then
 * vertical), a triangle filter whose support widens with the downscale factor (antialiasing),
 * weights computed in double, normalized, then rounded to fixed point so that pixels are
 * accumulated in integers. Only the coefficient tables touch floating point, and only with
 * correctly rounded IEEE operations, so every platform produces the same bytes.
 */
import type { RgbImage } from './decode.ts';
import { roundHalfToEven } from './rounding.ts';

/** PIL's 8-bit resampler: 8 bits of result, 2 of headroom, the rest fraction. */
const PRECISION_BITS = 32 - 8 - 2;
const FIXED_ONE = 1 << PRECISION_BITS;
/** Accumulators start at one half so that the final shift rounds to nearest. */
const FIXED_HALF = 1 << (PRECISION_BITS - 1);

export interface Size {
  width: number;
  height: number;
}

/** A rectangle in pixel coordinates; it may reach outside the image it refers to. */
export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * torchvision's output size for Resize(size) with an int: the shorter side becomes `size`, the
 * longer `int(size * long / short)` (truncated).
 */
export function shorterSideSize(width: number, height: number, size: number): Size {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/**
 * torchvision's CenterCrop window: offset `int(round((side - crop) / 2))` with Python's
 * half-to-even round. A crop larger than the image is zero-padded first, `floor(excess / 2)` on
 * the left/top, which here is a negative offset.
 */
export function centerCropRect(width: number, height: number, crop: number): Rect {
  return { left: cropOffset(width, crop), top: cropOffset(height, crop), width: crop, height: crop };
}

function cropOffset(side: number, crop: number): number {
  return crop > side ? -Math.floor((crop - side) / 2) : roundHalfToEven((side - crop) / 2);
}

/** PIL's `img.resize((width, height), Image.BILINEAR)`. */
export function resize(img: RgbImage, width: number, height: number): RgbImage {
  return resampleRect(img, { width, height }, { left: 0, top: 0, width, height });
}

/** torchvision `Resize(size)`. */
export function resizeShorterSide(img: RgbImage, size: number): RgbImage {
  const out = shorterSideSize(img.width, img.height, size);
  return resize(img, out.width, out.height);
}

/** torchvision `CenterCrop(crop)`. */
export function centerCrop(img: RgbImage, crop: number): RgbImage {
  const rect = centerCropRect(img.width, img.height, crop);
  return cropPadded(img, rect, (inside) => copyRect(img, inside));
}

/**
 * `CenterCrop(crop)(Resize(size)(img))`, computing only the pixels that survive the crop: each
 * output pixel depends on its own coefficients alone, so the result is identical, and a
 * panorama whose resized long side would be huge costs no more than a square photo.
 */
export function resizeAndCenterCrop(img: RgbImage, size: number, crop: number): RgbImage {
  const resized = shorterSideSize(img.width, img.height, size);
  const rect = centerCropRect(resized.width, resized.height, crop);
  return cropPadded(resized, rect, (inside) => resampleRect(img, resized, inside));
}

/**
 * The pixels of `rect` within an image of size `full`, zero outside it; `render` produces the
 * part of `rect` that lies inside the image.
 */
function cropPadded(full: Size, rect: Rect, render: (inside: Rect) => RgbImage): RgbImage {
  const inside = intersect(rect, full);
  const part = render(inside);
  if (inside.width === rect.width && inside.height === rect.height) return part;
  const data = new Uint8Array(rect.width * rect.height * 3);
  const rowBytes = inside.width * 3;
  for (let y = 0; y < inside.height; y++) {
    const dst = ((inside.top - rect.top + y) * rect.width + (inside.left - rect.left)) * 3;
    data.set(part.data.subarray(y * rowBytes, (y + 1) * rowBytes), dst);
  }
  return { width: rect.width, height: rect.height, data };
}

function intersect(rect: Rect, full: Size): Rect {
  const left = Math.max(rect.left, 0);
  const top = Math.max(rect.top, 0);
  const right = Math.min(rect.left + rect.width, full.width);
  const bottom = Math.min(rect.top + rect.height, full.height);
  return { left, top, width: right - left, height: bottom - top };
}

function copyRect(img: RgbImage, rect: Rect): RgbImage {
  const data = new Uint8Array(rect.width * rect.height * 3);
  const rowBytes = rect.width * 3;
  for (let y = 0; y < rect.height; y++) {
    const src = ((rect.top + y) * img.width + rect.left) * 3;
    data.set(img.data.subarray(src, src + rowBytes), y * rowBytes);
  }
  return { width: rect.width, height: rect.height, data };
}

/**
 * The pixels of `rect` (inside an output of size `out`) of the image resampled to `out`. Like
 * PIL, the horizontal pass runs only on the source rows the vertical pass will read.
 */
function resampleRect(img: RgbImage, out: Size, rect: Rect): RgbImage {
  if (out.width === img.width && out.height === img.height) return copyRect(img, rect);
  const columns = filterTable(img.width, out.width, rect.left, rect.width);
  const rows = filterTable(img.height, out.height, rect.top, rect.height);
  const firstRow = rows.first[0];
  const lastRow = rows.first[rect.height - 1] + rows.count[rect.height - 1];
  const band = resampleHorizontally(img, columns, firstRow, lastRow - firstRow);
  const data = resampleVertically(band, rect.width, rows, firstRow);
  return { width: rect.width, height: rect.height, data };
}

/** Which source samples feed each output sample, and with what fixed-point weights. */
interface FilterTable {
  /** First source index read by each output sample. */
  first: Int32Array;
  /** Number of source samples read by each output sample. */
  count: Int32Array;
  /** `stride` weights per output sample (the first `count` are used). */
  weights: Int32Array;
  stride: number;
}

/** PIL's `precompute_coeffs` + `normalize_coeffs_8bpc` for output samples start..start+length-1. */
function filterTable(inSize: number, outSize: number, start: number, length: number): FilterTable {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the triangle's support is 1, stretched when downscaling
  const inverseFilterScale = 1 / filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(length);
  const count = new Int32Array(length);
  const weights = new Int32Array(length * stride);
  const raw = new Float64Array(stride);
  for (let i = 0; i < length; i++) {
    const center = (start + i + 0.5) * scale;
    // C's (int) conversion truncates: PIL's "+ 0.5" bounds are rounded that way.
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let total = 0;
    for (let t = 0; t < n; t++) {
      // Same operation order as PIL so the doubles, and then the fixed-point weights, agree.
      raw[t] = triangle((t + lo - center + 0.5) * inverseFilterScale);
      total += raw[t];
    }
    for (let t = 0; t < n; t++) weights[i * stride + t] = Math.trunc(0.5 + (raw[t] / total) * FIXED_ONE);
    first[i] = lo;
    count[i] = n;
  }
  return { first, count, weights, stride };
}

function triangle(x: number): number {
  const a = Math.abs(x);
  return a < 1 ? 1 - a : 0;
}

/** Fixed-point sum → byte: drop the fraction (the half added up front rounds), clip like PIL. */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Resamples `rowCount` source rows from `firstRow` along x; returns them RGB-interleaved. */
function resampleHorizontally(img: RgbImage, table: FilterTable, firstRow: number, rowCount: number): Uint8Array {
  const outWidth = table.first.length;
  const out = new Uint8Array(rowCount * outWidth * 3);
  const src = img.data;
  const { first, count, weights, stride } = table;
  let o = 0;
  for (let y = 0; y < rowCount; y++) {
    const rowStart = (firstRow + y) * img.width * 3;
    for (let x = 0; x < outWidth; x++) {
      let r = FIXED_HALF;
      let g = FIXED_HALF;
      let b = FIXED_HALF;
      let s = rowStart + first[x] * 3;
      const k = x * stride;
      const n = count[x];
      for (let t = 0; t < n; t++, s += 3) {
        const w = weights[k + t];
        r += src[s] * w;
        g += src[s + 1] * w;
        b += src[s + 2] * w;
      }
      out[o++] = clip8(r);
      out[o++] = clip8(g);
      out[o++] = clip8(b);
    }
  }
  return out;
}

/**
 * Resamples along y. Row by row with one accumulator per sample: the same integer sums as PIL's
 * pixel-by-pixel loop (integer addition is exact), but walking memory in order.
 */
function resampleVertically(band: Uint8Array, width: number, table: FilterTable, firstRow: number): Uint8Array {
  const rowBytes = width * 3;
  const outHeight = table.first.length;
  const out = new Uint8Array(outHeight * rowBytes);
  const sums = new Int32Array(rowBytes);
  const { first, count, weights, stride } = table;
  for (let y = 0; y < outHeight; y++) {
    sums.fill(FIXED_HALF);
    for (let t = 0; t < count[y]; t++) {
      const w = weights[y * stride + t];
      const row = (first[y] + t - firstRow) * rowBytes;
      for (let j = 0; j < rowBytes; j++) sums[j] += band[row + j] * w;
    }
    const o = y * rowBytes;
    for (let j = 0; j < rowBytes; j++) out[o + j] = clip8(sums[j]);
  }
  return out;
}
