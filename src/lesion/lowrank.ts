/**
 * A low-rank linear stand-in for an identity block's residual branch, fitted on the full network
 * without training: on photos, the block's input x and its branch's output y (before the add) at
 * sampled pixels, and the rank-r map y ≈ U·Dᵀ(x − x̄) + ȳ minimizing the squared error over all
 * maps of rank r (reduced-rank regression: the least-squares map B = Σyx Σxx⁻¹ projected on the
 * top r eigenvectors V of B Σxx Bᵀ = Σyx Σxx⁻¹ Σxy, found by subspace iteration, so no C × C
 * product of inverses is ever formed). It runs as two 1x1 convs, C → r → C (without.ts,
 * withLowRankBranches), 2·C·r multiply-adds a pixel against the block's 17·C²/16.
 */

import { mulberry32 } from '../builder/random.ts';
import { writeModel } from '../format/writer.ts';
import { cholesky, choleskySolve, dot, orthonormalBasis } from '../linalg.ts';
import type { QuantModel } from '../model/types.ts';
import { loadModel } from '../runtime/model.ts';
import { type ResidualBlock, residualBlocks } from './blocks.ts';
import type { StudyPhoto } from './photos.ts';
import type { BranchMap } from './without.ts';

/** The default rank: C/32 keeps the map at 6% of the block's multiply-adds. */
export const RANK_DIVISOR = 32;
/** Pixels sampled per photo and block (strided, shifted per photo): enough samples, C² work each. */
const PIXELS_PER_PHOTO = 64;
/**
 * Ridge on Σxx, as a share of its mean diagonal: Σxx of 1024–2048 channels from a few thousand
 * samples is near singular, and at 1e-3 the maps fitted noise (bench/lesion-lowrank.ts: 54% held-out
 * agreement against 60% at 0.1).
 */
const RIDGE = 0.1;
const ITERATIONS = 3;
/** Samples accumulated at a time: the products then run over short contiguous rows. */
const BATCH = 32;
/** The subspace iteration's start. */
const SEED = 18;

/** Each named identity block's branch as a rank-`rank(C)` map fitted on `photos`, by name. */
export async function fitLowRank(
  model: QuantModel,
  names: readonly string[],
  photos: StudyPhoto[],
  rank: (channels: number) => number = (c) => Math.max(1, Math.round(c / RANK_DIVISOR)),
): Promise<Map<string, BranchMap>> {
  const blocks = residualBlocks(model).filter((b) => names.includes(b.name));
  const moments = blocks.map((b) => new Moments(model.tensors[b.input].c));
  const runtime = await loadModel(writeModel(model), { threads: 1 });
  try {
    const network = runtime.layers;
    photos.forEach((photo, p) => {
      network.setInput(photo.input);
      network.header.layers.forEach((layer, i) => {
        network.runLayer(layer, i);
        blocks.forEach((block, k) => {
          if (block.output !== layer.output) return;
          const [x, y] = [block.input, branchOutput(model, block)].map((t) =>
            dequantized(model, t, network.readTensor(t)),
          );
          moments[k].add(x, y, sampledPixels(model.tensors[block.input], p));
        });
      });
    });
  } finally {
    runtime.dispose();
  }
  return new Map(blocks.map((block, k) => [block.name, reducedRank(moments[k], rank(moments[k].channels))]));
}

function branchOutput(model: QuantModel, block: ResidualBlock): number {
  const add = model.layers[block.layers[block.layers.length - 1]];
  return (add.kind === 'add' ? add.inputs : []).find((t) => t !== block.input)!;
}

function dequantized(model: QuantModel, t: number, q: Uint8Array): Float64Array {
  const { scale, zeroPoint } = model.tensors[t];
  return Float64Array.from(q, (v) => scale * (v - zeroPoint));
}

function sampledPixels(shape: { h: number; w: number }, photo: number): number[] {
  const pixels = shape.h * shape.w;
  const step = Math.max(1, Math.floor(pixels / PIXELS_PER_PHOTO));
  return Array.from({ length: Math.min(PIXELS_PER_PHOTO, pixels) }, (_, k) => (k * step + (photo % step)) % pixels);
}

/** Sums of x, y, x xᵀ and x yᵀ over samples (channels-long vectors). */
class Moments {
  readonly sx: Float64Array;
  readonly sy: Float64Array;
  readonly xx: Float64Array;
  readonly xy: Float64Array;
  count = 0;
  private readonly xs: Float64Array;
  private readonly ys: Float64Array;
  private pending = 0;

  constructor(readonly channels: number) {
    [this.sx, this.sy] = [0, 1].map(() => new Float64Array(channels));
    [this.xx, this.xy] = [0, 1].map(() => new Float64Array(channels * channels));
    // Pending samples channel-major: row i holds channel i of each pending sample.
    [this.xs, this.ys] = [0, 1].map(() => new Float64Array(channels * BATCH));
  }

  add(x: Float64Array, y: Float64Array, pixels: number[]): void {
    const c = this.channels;
    for (const pixel of pixels) {
      for (let i = 0; i < c; i++) {
        this.xs[i * BATCH + this.pending] = x[pixel * c + i];
        this.ys[i * BATCH + this.pending] = y[pixel * c + i];
        this.sx[i] += x[pixel * c + i];
        this.sy[i] += y[pixel * c + i];
      }
      this.count++;
      if (++this.pending === BATCH) this.flush();
    }
  }

  flush(): void {
    const [c, n, xs, ys] = [this.channels, this.pending, this.xs, this.ys];
    for (let i = 0; i < c; i++) {
      const a = i * BATCH;
      for (let j = i; j < c; j++) {
        const b = j * BATCH;
        let s = 0;
        for (let k = 0; k < n; k++) s += xs[a + k] * xs[b + k];
        this.xx[i * c + j] += s;
      }
      for (let j = 0; j < c; j++) {
        const b = j * BATCH;
        let s = 0;
        for (let k = 0; k < n; k++) s += xs[a + k] * ys[b + k];
        this.xy[i * c + j] += s;
      }
    }
    this.pending = 0;
  }
}

/** The rank-r least-squares map from the moments (module comment), with z scaled to unit variance. */
function reducedRank(m: Moments, rank: number): BranchMap {
  m.flush();
  const c = m.channels;
  const inMean = m.sx.map((s) => s / m.count);
  const outMean = m.sy.map((s) => s / m.count);
  const sxx = new Float64Array(c * c);
  const sxy = new Float64Array(c * c);
  for (let i = 0; i < c; i++)
    for (let j = 0; j < c; j++) {
      sxx[i * c + j] = m.xx[Math.min(i, j) * c + Math.max(i, j)] / m.count - inMean[i] * inMean[j];
      sxy[i * c + j] = m.xy[i * c + j] / m.count - inMean[i] * outMean[j];
    }
  let trace = 0;
  for (let i = 0; i < c; i++) trace += sxx[i * c + i];
  for (let i = 0; i < c; i++) sxx[i * c + i] += (RIDGE * trace) / c + 1e-12;
  const factor = cholesky(sxx, c);
  // Columns of v, in y space; u = Σxx⁻¹ Σxy v maps x to the prediction's coordinates along v.
  const random = mulberry32(SEED);
  let v: Float64Array[] = Array.from({ length: rank }, () => Float64Array.from({ length: c }, () => random() - 0.5));
  let u: Float64Array[] = [];
  for (let it = 0; it <= ITERATIONS; it++) {
    v = orthonormalBasis(v);
    u = v.map((col) => choleskySolve(factor, c, times(sxy, c, col)));
    if (it < ITERATIONS) v = u.map((col) => timesTransposed(sxy, c, col));
  }
  // z_k = u_k·(x − x̄) has variance u_kᵀ Σxx u_k: scale it to 1, v_k by the same factor. (Fewer
  // than `rank` columns are left only where the branch's outputs span fewer directions.)
  const kept = u.length;
  const down = new Float64Array(kept * c);
  const up = new Float64Array(c * kept);
  u.forEach((col, k) => {
    const sd = Math.sqrt(Math.max(dot(col, times(sxx, c, col)), 1e-30));
    for (let i = 0; i < c; i++) {
      down[k * c + i] = col[i] / sd;
      up[i * kept + k] = v[k][i] * sd;
    }
  });
  return { rank: kept, down, up, inMean, outMean };
}

/** a·x, a c × c row-major. */
function times(a: Float64Array, c: number, x: Float64Array): Float64Array {
  const y = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    let s = 0;
    for (let j = 0; j < c; j++) s += a[i * c + j] * x[j];
    y[i] = s;
  }
  return y;
}

/** aᵀ·x, a c × c row-major. */
function timesTransposed(a: Float64Array, c: number, x: Float64Array): Float64Array {
  const y = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    const xi = x[i];
    for (let j = 0; j < c; j++) y[j] += a[i * c + j] * xi;
  }
  return y;
}
