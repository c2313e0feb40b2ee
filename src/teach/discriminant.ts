/**
 * Shrinkage linear discriminant, the head `teach` learns by default: on the examples centred on the
 * mean of the class means and scaled to unit length (as the regression, regression.ts), class c
 * scores Σ⁻¹ m_c · z, m_c the class's mean and Σ = (1 − α) S + α ν I the class-balanced
 * within-class covariance S shrunk toward ν I, ν = trace(S) / d. Directions along which examples of
 * one class spread weigh less, which is what carries over to photos of classes never taught (a
 * group's unseen members differ from the taught ones along those directions): bench/teach.ts.
 * Without a bias the scores' order does not change with the length of z, so the head runs on the raw
 * embedding as an fc. S and m_c lie in the examples' span, so Σ is solved there (r ≤ n coordinates,
 * span.ts). Scores are then scaled to the temperature that fits the examples best, so that their
 * softmax reads as a probability. Double arithmetic in a fixed order: same examples, same bits.
 */
import { cholesky, choleskySolve } from '../linalg.ts';
import type { FloatHead } from './head.ts';
import { balancedWeights, type Examples, headOnEmbeddings, normalizedExamples } from './regression.ts';

/** The share of ν I in Σ: bench/teach.ts measured 0.5 to 0.98, 0.8 and 0.9 did best. */
export const SHRINKAGE = 0.8;

export function fitDiscriminant(examples: Examples, shrinkage = SHRINKAGE): FloatHead {
  const normalized = normalizedExamples(examples);
  const { rank, coordinates } = normalized.span;
  const { y, classes } = examples;
  const means = classMeans(coordinates, rank, y, classes);
  const covariance = withinClass(coordinates, rank, y, means, balancedWeights(y, classes));
  let trace = 0;
  for (let k = 0; k < rank; k++) trace += covariance[k * rank + k];
  // One example a class leaves no spread to measure: Σ is then ν I, the class means themselves.
  const nu = trace > 0 ? trace / normalized.centre.length : 1;
  for (let k = 0; k < covariance.length; k++) covariance[k] *= 1 - shrinkage;
  for (let k = 0; k < rank; k++) covariance[k * rank + k] += shrinkage * nu;
  const factor = cholesky(covariance, rank);
  const v = new Float64Array(classes * rank);
  means.forEach((mean, c) => v.set(choleskySolve(factor, rank, mean), c * rank));
  const scale = temperature(coordinates, rank, y, classes, v);
  return headOnEmbeddings(
    normalized,
    v.map((w) => w * scale),
  );
}

/** Each class's mean of the coordinates (a class without examples keeps zeros). */
function classMeans(f: Float64Array, rank: number, y: number[], classes: number): Float64Array[] {
  const means = Array.from({ length: classes }, () => new Float64Array(rank));
  const counts = new Array<number>(classes).fill(0);
  y.forEach((c, i) => {
    counts[c]++;
    for (let k = 0; k < rank; k++) means[c][k] += f[i * rank + k];
  });
  means.forEach((mean, c) => mean.forEach((value, k) => (mean[k] = value / (counts[c] || 1))));
  return means;
}

/** Σ_i w_i (f_i − m_{y_i})(f_i − m_{y_i})ᵀ, rank × rank, every class weighing the same. */
function withinClass(
  f: Float64Array,
  rank: number,
  y: number[],
  means: Float64Array[],
  weights: Float64Array,
): Float64Array {
  const covariance = new Float64Array(rank * rank);
  const deviation = new Float64Array(rank);
  y.forEach((c, i) => {
    for (let k = 0; k < rank; k++) deviation[k] = f[i * rank + k] - means[c][k];
    for (let a = 0; a < rank; a++) {
      const scaled = weights[i] * deviation[a];
      for (let b = 0; b <= a; b++) covariance[a * rank + b] += scaled * deviation[b];
    }
  });
  for (let a = 0; a < rank; a++) for (let b = 0; b < a; b++) covariance[b * rank + a] = covariance[a * rank + b];
  return covariance;
}

/** Scores of a softmax this sharp on unit-length examples are certainty: the temperature stops there. */
const SHARPEST = 100;

/**
 * The factor t on the scores that minimizes the examples' class-balanced cross-entropy (convex in
 * t: bisection on its derivative), at most SHARPEST over the scores' largest spread (examples a
 * linear head separates would push t to infinity).
 */
function temperature(f: Float64Array, rank: number, y: number[], classes: number, v: Float64Array): number {
  const scores = y.map((_, i) =>
    Float64Array.from({ length: classes }, (_, c) => {
      let s = 0;
      for (let k = 0; k < rank; k++) s += v[c * rank + k] * f[i * rank + k];
      return s;
    }),
  );
  const spread = scores.reduce((m, s) => Math.max(m, Math.max(...s) - Math.min(...s)), 0);
  if (!(spread > 0)) return 1;
  const weights = balancedWeights(y, classes);
  // d/dt of the cross-entropy: Σ_i w_i (E_softmax(t s_i)[s] − s_i,y_i), increasing in t.
  const slope = (t: number) =>
    scores.reduce((sum, s, i) => {
      const max = Math.max(...s);
      let z = 0;
      let expected = 0;
      for (const value of s) {
        const e = Math.exp(t * (value - max));
        z += e;
        expected += e * value;
      }
      return sum + weights[i] * (expected / z - s[y[i]]);
    }, 0);
  let [low, high] = [0, SHARPEST / spread];
  if (slope(high) <= 0) return high;
  for (let step = 0; step < 40; step++) {
    const middle = (low + high) / 2;
    if (slope(middle) < 0) low = middle;
    else high = middle;
  }
  return (low + high) / 2;
}
