/**
 * PIL's bilinear resize (ImagingResample, 8 bits a sample), run by the wasm kernels of
 * assembly/preprocess.ts, straight into its destination: a network's tensor 0, or any buffer in a
 * kernel instance's memory.
 *
 * Separable, horizontal pass first, then vertical, each rounding to 8 bits, as PIL does: a triangle
 * filter whose support widens with the downscale factor (antialiasing), weights computed here in
 * double, normalized, then rounded to fixed point so that pixels are accumulated in integers. Only
 * the coefficient tables touch floating point, and only with correctly rounded IEEE operations, so
 * every platform produces the same bytes.
 *
 * Only the output pixels asked for are computed (each depends on its own coefficients alone), and
 * only the source rows and columns they read are copied into wasm memory, one row at a time, into a
 * ring of horizontally resampled rows as deep as the vertical filter. So the scratch memory depends
 * on the output size and the scale factor, not on the source image's size.
 */
import { ImageDecodeError } from '../errors.ts';
import type { RgbImage } from './decode.ts';

/** PIL's 8-bit resampler: 8 bits of result, 2 of headroom, the rest fraction. */
const FIXED_ONE = 1 << (32 - 8 - 2);
/** Room that vector loads and stores may use past a buffer's end. */
const SLACK = 16;

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

/** The kernels of assembly/preprocess.ts. */
export interface PreprocessKernels {
  resampleRow(
    src: number,
    firsts: number,
    counts: number,
    weights: number,
    stride: number,
    width: number,
    out: number,
  ): void;
  blendRow(
    ring: number,
    ringRows: number,
    rowStride: number,
    firstRow: number,
    count: number,
    weights: number,
    pixels: number,
    blended: number,
    table: number,
    bgr: number,
    out: number,
  ): void;
}

/** A kernel instance, its memory, and a region of that memory free for resampling. @internal */
export interface ResampleSite {
  kernels: PreprocessKernels;
  memory: WebAssembly.Memory;
  scratch: number;
  scratchBytes: number;
}

/** How output bytes come from resampled pixels: table[c * 256 + value] for network channel c. */
export interface PixelMap {
  table: Uint8Array;
  /** Network channel c reads colour 2 - c. */
  bgr: boolean;
}

/** The pixels as they are: what a resize for its own sake writes. */
export const IDENTITY_MAP: PixelMap = { table: Uint8Array.from({ length: 768 }, (_, i) => i & 255), bgr: false };

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

/** What resampling `img` to `out` costs for the pixels of `rect` that lie inside `out`. */
interface Plan {
  inside: Rect;
  columns: FilterTable;
  rows: FilterTable;
  /** Source columns read: `span` from `firstColumn` (columns.first counts from there). */
  firstColumn: number;
  span: number;
  /** Bytes of one row of horizontally resampled pixels, with slack. */
  rowStride: number;
}

/**
 * Writes the pixels of `rect` (in an output of size `out`) of `img` resampled to `out`, mapped
 * through `map`, RGB-interleaved, to `output` in the site's memory; those outside the image are
 * zero pixels, mapped too (torchvision pads a crop larger than the image with zeros).
 * @internal
 */
export function resampleInto(
  site: ResampleSite,
  img: RgbImage,
  out: Size,
  rect: Rect,
  map: PixelMap,
  output: number,
): void {
  const plan = planResample(img, out, rect);
  const at = placeScratch(plan, site);
  const heap = new Uint8Array(site.memory.buffer);
  const words = (offset: number, values: Int32Array) =>
    new Int32Array(site.memory.buffer, offset, values.length).set(values);
  words(at.firsts, plan.columns.first);
  words(at.counts, plan.columns.count);
  words(at.columnWeights, plan.columns.weights);
  words(at.rowWeights, plan.rows.weights);
  heap.set(map.table, at.table);
  if (plan.inside.width < rect.width || plan.inside.height < rect.height) fillPadding(heap, output, rect, map);

  const { inside, columns, rows, rowStride } = plan;
  const ringRows = rows.stride;
  const sourceRowBytes = img.width * 3;
  const firstColumnByte = plan.firstColumn * 3;
  const spanBytes = plan.span * 3;
  let nextRow = rows.first[0];
  for (let y = 0; y < inside.height; y++) {
    for (const end = rows.first[y] + rows.count[y]; nextRow < end; nextRow++) {
      const from = nextRow * sourceRowBytes + firstColumnByte;
      heap.set(img.data.subarray(from, from + spanBytes), at.source);
      site.kernels.resampleRow(
        at.source,
        at.firsts,
        at.counts,
        at.columnWeights,
        columns.stride,
        inside.width,
        at.ring + (nextRow % ringRows) * rowStride,
      );
    }
    const target = output + ((inside.top - rect.top + y) * rect.width + (inside.left - rect.left)) * 3;
    const weights = at.rowWeights + y * rows.stride * 4;
    site.kernels.blendRow(
      at.ring,
      ringRows,
      rowStride,
      rows.first[y],
      rows.count[y],
      weights,
      inside.width,
      at.blended,
      at.table,
      map.bgr ? 1 : 0,
      target,
    );
  }
}

/** Scratch bytes that resampling `img` to `out` for `rect` needs. */
export function resampleScratchBytes(img: Size, out: Size, rect: Rect): number {
  const plan = planResample(img, out, rect);
  return scratchLayout(plan).end;
}

/**
 * The most scratch any image of at most `maxPixels` pixels needs, for a shorter-side resize to
 * `size` then a `crop` x `crop` window: the downscale factor is at most sqrt(maxPixels) / (size - 1)
 * on either axis (the long side's output is truncated, so its factor can pass short / size), and
 * the window at most crop x crop.
 */
export function worstCaseScratchBytes(size: number, crop: number, maxPixels: number): number {
  // (With size 1 a nearly square image keeps its whole long side: sqrt(2 maxPixels) at most.)
  const scale = Math.max(1, Math.sqrt(maxPixels) / Math.max(size - 1, 0.5));
  const stride = Math.ceil(scale) * 2 + 1;
  const span = Math.ceil((crop + 2) * scale) + 2;
  return layoutFor(crop, crop, stride, stride, span, alignUp16(crop * 3) + SLACK).end;
}

function planResample(img: Size, out: Size, rect: Rect): Plan {
  const inside = intersect(rect, out);
  const columns = filterTable(img.width, out.width, inside.left, inside.width);
  const rows = filterTable(img.height, out.height, inside.top, inside.height);
  const firstColumn = columns.first[0] ?? 0;
  const last = inside.width - 1;
  const span = inside.width > 0 ? columns.first[last] + columns.count[last] - firstColumn : 0;
  // The kernel reads source pixels relative to the first column copied.
  for (let x = 0; x < inside.width; x++) columns.first[x] -= firstColumn;
  return { inside, columns, rows, firstColumn, span, rowStride: alignUp16(inside.width * 3) + SLACK };
}

function intersect(rect: Rect, full: Size): Rect {
  const left = Math.max(rect.left, 0);
  const top = Math.max(rect.top, 0);
  const right = Math.min(rect.left + rect.width, full.width);
  const bottom = Math.min(rect.top + rect.height, full.height);
  return { left, top, width: Math.max(right - left, 0), height: Math.max(bottom - top, 0) };
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

interface ScratchLayout {
  firsts: number;
  counts: number;
  columnWeights: number;
  rowWeights: number;
  table: number;
  source: number;
  ring: number;
  blended: number;
  /** Bytes from the scratch start to the end of the last buffer. */
  end: number;
}

function scratchLayout(plan: Plan): ScratchLayout {
  const { inside, columns, rows, span, rowStride } = plan;
  return layoutFor(inside.width, inside.height, columns.stride, rows.stride, span, rowStride);
}

function layoutFor(
  width: number,
  height: number,
  columnStride: number,
  rowStride: number,
  span: number,
  rowBytes: number,
): ScratchLayout {
  const sizes = {
    firsts: width * 4,
    counts: width * 4,
    columnWeights: width * columnStride * 4,
    rowWeights: height * rowStride * 4,
    table: 768,
    source: span * 3,
    ring: rowStride * rowBytes,
    blended: rowBytes,
  };
  let end = 0;
  const offsets = Object.fromEntries(
    Object.entries(sizes).map(([name, bytes]) => {
      const offset = end;
      end = alignUp16(end + bytes + SLACK);
      return [name, offset];
    }),
  ) as Omit<ScratchLayout, 'end'>;
  return { ...offsets, end };
}

/** The layout placed at the site's scratch; refuses what does not fit. */
function placeScratch(plan: Plan, site: ResampleSite): ScratchLayout {
  const layout = scratchLayout(plan);
  if (layout.end > site.scratchBytes) {
    throw new ImageDecodeError(
      `resampling this image needs ${layout.end} bytes of scratch memory, more than the ${site.scratchBytes} reserved: the image is too large`,
    );
  }
  const at = (offset: number) => site.scratch + offset;
  return {
    firsts: at(layout.firsts),
    counts: at(layout.counts),
    columnWeights: at(layout.columnWeights),
    rowWeights: at(layout.rowWeights),
    table: at(layout.table),
    source: at(layout.source),
    ring: at(layout.ring),
    blended: at(layout.blended),
    end: at(layout.end),
  };
}

/** Every pixel of the rect as a zero pixel mapped; the pixels inside the image are written later. */
function fillPadding(heap: Uint8Array, output: number, rect: Rect, map: PixelMap): void {
  const zero = [0, 256, 512].map((c) => map.table[c]);
  const row = Uint8Array.from({ length: rect.width * 3 }, (_, i) => zero[i % 3]);
  for (let y = 0; y < rect.height; y++) heap.set(row, output + y * row.length);
}

function alignUp16(x: number): number {
  return Math.ceil(x / 16) * 16;
}
