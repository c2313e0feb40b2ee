/**
 * Multinomial logistic regression on embeddings, the head `teach` learns: class-balanced (each
 * class weighs the same whatever its count of examples), L2 on the weights, no bias, on the
 * examples centred on the mean of the class means and scaled to unit length (ReLU-pooled features
 * are non-negative with a large common part: centring and unit length turn the logits into
 * cosines). Scaling an embedding does not change which class wins when there is no bias, so the
 * head runs on the embedding as an fc: logits = W (e − centre) / L, L the examples' mean length
 * from the centre. Minimized by L-BFGS in the examples' span (span.ts). Plain double arithmetic in
 * a fixed order: the same examples give the same head.
 */
import type { FloatHead } from './head.ts';
import { lbfgs } from './lbfgs.ts';
import { featureWeights, type Span, spanOf } from './span.ts';

export interface RegressionOptions {
  /** L2 strength on the weights, per unit of example weight (the examples weigh 1 in all). */
  l2: number;
  /** At most this many L-BFGS iterations (it stops earlier at the minimum). */
  iterations: number;
}

/** Examples as rows of `x` (all the same length), classes 0..classes-1 in `y`. */
export interface Examples {
  x: Float32Array[];
  y: number[];
  classes: number;
}

export function fitLogistic({ x, y, classes }: Examples, options: RegressionOptions): FloatHead {
  const normalized = normalizedExamples({ x, y, classes });
  const { span } = normalized;
  const objective = (v: Float64Array, gradient: Float64Array) =>
    loss(v, gradient, span, y, balancedWeights(y, classes), classes, options.l2);
  return headOnEmbeddings(normalized, lbfgs(objective, new Float64Array(classes * span.rank), options.iterations));
}

/** The examples centred on the mean of the class means, at unit length, and their span. */
export interface Normalized {
  centre: Float64Array;
  rows: Float64Array[];
  /** The examples' mean length from the centre before scaling. */
  meanLength: number;
  span: Span;
  classes: number;
}

export function normalizedExamples({ x, y, classes }: Examples): Normalized {
  const centre = classMeanCentre({ x, y, classes });
  const rows = x.map((e) => Float64Array.from(e, (v, j) => v - centre[j]));
  const lengths = rows.map((row) => Math.sqrt(row.reduce((s, v) => s + v * v, 0)));
  const meanLength = lengths.reduce((s, v) => s + v, 0) / rows.length || 1;
  rows.forEach((row, i) => row.forEach((v, j) => (row[j] = lengths[i] > 0 ? v / lengths[i] : 0)));
  return { centre, rows, meanLength, span: spanOf(rows), classes };
}

/**
 * Weights V (classes × rank) on the span's coordinates of the normalized examples as an fc on the
 * raw embedding: logits = W (e − centre) / meanLength, the centring folded into the bias.
 */
export function headOnEmbeddings({ centre, rows, meanLength, span, classes }: Normalized, v: Float64Array): FloatHead {
  const weight = featureWeights(span, v, classes, rows).map((w) => w / meanLength);
  const d = centre.length;
  const bias = Float64Array.from({ length: classes }, (_, c) => {
    let s = 0;
    for (let j = 0; j < d; j++) s -= weight[c * d + j] * centre[j];
    return s;
  });
  return { weight, bias };
}

/** The mean of the class means: the centre of the classes, whatever their counts of examples. */
function classMeanCentre({ x, y, classes }: Examples): Float64Array {
  const d = x[0].length;
  const counts = new Array<number>(classes).fill(0);
  for (const c of y) counts[c]++;
  const present = counts.filter((n) => n > 0).length;
  const centre = new Float64Array(d);
  x.forEach((row, i) => {
    const share = 1 / (present * counts[y[i]]);
    for (let j = 0; j < d; j++) centre[j] += share * row[j];
  });
  return centre;
}

/** Each example weighs 1 / (classes · its class's count): every class sums to 1 / classes. */
export function balancedWeights(y: number[], classes: number): Float64Array {
  const counts = new Array<number>(classes).fill(0);
  for (const c of y) counts[c]++;
  return Float64Array.from(y, (c) => 1 / (classes * counts[c]));
}

/**
 * Σ_i w_i · cross-entropy(softmax(V f_i), y_i) + l2/2 · |V|², f_i example i's coordinates in the
 * span and V (classes × rank) row-major. Writes the gradient, returns the value.
 */
function loss(
  v: Float64Array,
  gradient: Float64Array,
  span: Span,
  y: number[],
  weights: Float64Array,
  classes: number,
  l2: number,
): number {
  const { coordinates: f, rank } = span;
  let value = 0;
  for (let k = 0; k < v.length; k++) {
    value += 0.5 * l2 * v[k] * v[k];
    gradient[k] = l2 * v[k];
  }
  const exp = new Float64Array(classes);
  for (let i = 0; i < y.length; i++) {
    const at = i * rank;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = 0;
      for (let k = 0, w = c * rank; k < rank; k++) s += v[w + k] * f[at + k];
      exp[c] = s;
      max = Math.max(max, s);
    }
    const target = exp[y[i]];
    let sum = 0;
    for (let c = 0; c < classes; c++) {
      exp[c] = Math.exp(exp[c] - max);
      sum += exp[c];
    }
    value += weights[i] * (max + Math.log(sum) - target);
    for (let c = 0; c < classes; c++) {
      const residual = weights[i] * (exp[c] / sum - (c === y[i] ? 1 : 0));
      for (let k = 0, w = c * rank; k < rank; k++) gradient[w + k] += residual * f[at + k];
    }
  }
  return value;
}
