/**
 * A tensor's value distribution in bounded memory, for the percentile and entropy calibrations.
 *
 * Values are counted by magnitude, one array per sign, in bins [k·w, (k+1)·w). The bin width w is
 * a power of two, so x / w is exact; when a larger value arrives, w doubles by merging neighbouring
 * bins, which is exact too. w is therefore always the smallest power of two whose bins hold the
 * largest magnitude seen, and the counts do not depend on the order of the inputs: calibration is
 * one pass over the images, and its result is the same for any order and on every machine.
 */

export const HISTOGRAM_BINS = 2048;

export interface Range {
  min: number;
  max: number;
}

export class MagnitudeHistogram {
  // One array: the negative side's bins, the exact zeros, the positive side's bins. Exact zeros
  // are counted apart: zero is exact on every uint8 grid whose range contains it, and half of a
  // ReLU output is zeros, which would otherwise swamp the entropy search's first bin.
  private readonly counts = new Float64Array(2 * HISTOGRAM_BINS + 1);
  private readonly negative = this.counts.subarray(0, HISTOGRAM_BINS);
  private readonly positive = this.counts.subarray(HISTOGRAM_BINS + 1);
  private binWidth = 0;

  /** `maxMagnitude` is the largest |x| in `data` and in everything added before. */
  add(data: Float32Array, maxMagnitude: number): void {
    this.fit(maxMagnitude);
    // binWidth is a power of two within f32's reach, so |x| times its inverse is exactly |x| / w,
    // below HISTOGRAM_BINS, and `| 0` floors it. The sign picks the side by arithmetic: a branch
    // on it is mispredicted on every other value of a ReLU output, which made this loop slow. (A NaN
    // lands in the first negative bin; the observed range is NaN then, and so is the result.)
    const { counts } = this;
    const inverse = 1 / this.binWidth;
    for (let i = 0; i < data.length; i++) {
      const x = data[i];
      const bin = (Math.abs(x) * inverse) | 0;
      counts[bin + +(x > 0) * (HISTOGRAM_BINS + 1) + +(x === 0) * HISTOGRAM_BINS]++;
    }
  }

  /**
   * `observed` without the values beyond the given percentile at the top and below the mirrored
   * one (100 − percentile) at the bottom, to bin resolution; percentile 100 returns `observed`.
   */
  percentileRange(observed: Range, percentile: number): Range {
    const count = sum(this.counts);
    const tail = ((100 - percentile) / 100) * count;
    return {
      min: Math.max(observed.min, -this.tailEdge(this.negative, tail)),
      max: Math.min(observed.max, this.tailEdge(this.positive, tail)),
    };
  }

  /**
   * TensorRT's entropy calibration on the magnitudes: the clipping threshold whose quantized
   * distribution is closest (KL divergence) to the observed one. A signed tensor gets the
   * symmetric threshold, so its magnitude has half of uint8's 256 levels; a nonnegative one has
   * all of them.
   */
  entropyRange(observed: Range): Range {
    const levels = observed.min < 0 ? 128 : 256;
    const threshold = this.binWidth * entropyThresholdBins(this.magnitudes(), levels);
    return { min: Math.max(observed.min, -threshold), max: Math.min(observed.max, threshold) };
  }

  private fit(maxMagnitude: number): void {
    if (maxMagnitude === 0) return;
    if (this.binWidth === 0) this.binWidth = powerOfTwoAbove(maxMagnitude / HISTOGRAM_BINS);
    while (maxMagnitude >= HISTOGRAM_BINS * this.binWidth) this.doubleBinWidth();
  }

  private doubleBinWidth(): void {
    for (const side of [this.positive, this.negative]) {
      // Bin k only reads bins 2k and 2k+1, which are not yet overwritten.
      for (let k = 0; k < HISTOGRAM_BINS / 2; k++) side[k] = side[2 * k] + side[2 * k + 1];
      side.fill(0, HISTOGRAM_BINS / 2);
    }
    this.binWidth *= 2;
  }

  /** The lowest bin edge with at most `tail` of this side's values beyond it. */
  private tailEdge(side: Float64Array, tail: number): number {
    let beyond = 0;
    for (let k = side.length - 1; k >= 0; k--) {
      if (beyond + side[k] > tail) return (k + 1) * this.binWidth;
      beyond += side[k];
    }
    return 0;
  }

  /** Counts of nonzero |x| per bin, up to the last occupied bin. */
  private magnitudes(): Float64Array {
    const counts = this.positive.map((count, k) => count + this.negative[k]);
    let used = counts.length;
    while (used > 0 && counts[used - 1] === 0) used--;
    return counts.subarray(0, used);
  }
}

/** The smallest power of two strictly above v > 0 (Math.log2 only guesses; the loops make it exact). */
function powerOfTwoAbove(v: number): number {
  let p = 2 ** Math.floor(Math.log2(v));
  while (p <= v) p *= 2;
  while (p / 2 > v) p /= 2;
  return p;
}

/**
 * How many bins to keep: every candidate from `levels` bins to all of them is scored, and the one
 * of least divergence wins (the first on a tie). With no more bins than levels nothing is lost.
 */
function entropyThresholdBins(counts: Float64Array, levels: number): number {
  if (counts.length <= levels) return counts.length;
  let best = counts.length;
  let bestDivergence = Infinity;
  for (let kept = levels; kept <= counts.length; kept++) {
    const divergence = clippingDivergence(counts, kept, levels);
    if (divergence < bestDivergence) [best, bestDivergence] = [kept, divergence];
  }
  return best;
}

const UNSEEN_COUNT = 1e-4;

/**
 * KL(P ‖ Q). P: the counts clipped to `kept` bins, what lies beyond piled onto the last kept bin
 * (clipping saturates there). Q: the kept counts quantized to `levels` groups of adjacent bins,
 * each group's count spread evenly over the bins P occupies, as a uniform grid of `levels` steps
 * would reproduce them. Where Q is empty but P is not (outliers piled onto an empty bin), Q gets
 * a tiny pseudo-count, as TensorRT smooths it: rare outliers may then be clipped at a large but
 * finite cost.
 */
function clippingDivergence(counts: Float64Array, kept: number, levels: number): number {
  const outliers = sum(counts.subarray(kept));
  const total = sum(counts);
  const keptTotal = total - outliers;
  if (keptTotal === 0) return Infinity;
  const reference = (k: number) => (k === kept - 1 ? counts[k] + outliers : counts[k]);
  const groupSize = Math.floor(kept / levels);
  let divergence = 0;
  for (let group = 0; group < levels; group++) {
    const start = group * groupSize;
    const end = group === levels - 1 ? kept : start + groupSize;
    let groupCount = 0;
    let occupied = 0;
    for (let k = start; k < end; k++) {
      groupCount += counts[k];
      if (reference(k) > 0) occupied++;
    }
    if (occupied === 0) continue;
    const q = Math.max(groupCount, UNSEEN_COUNT) / occupied / keptTotal;
    for (let k = start; k < end; k++) {
      const p = reference(k) / total;
      if (p > 0) divergence += p * Math.log(p / q);
    }
  }
  return divergence;
}

function sum(values: Float64Array): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i];
  return total;
}
