/**
 * Multinomial logistic regression on embeddings: class-balanced (each class weighs the same
 * whatever its count of examples), L2 on the weights (not the biases), on standardized features
 * (each feature's mean and spread over the examples), minimized by L-BFGS for a fixed number of
 * iterations. Plain double arithmetic in a fixed order: the same examples give the same head.
 * The result is expressed on the raw embeddings (the standardization folded into it).
 */
import type { FloatHead } from './head.ts';

export interface RegressionOptions {
  /** L2 strength on the standardized weights (per unit of balanced example weight). */
  l2: number;
  /** L-BFGS iterations. */
  iterations: number;
}

/** Examples as rows of `x` (all the same length), classes 0..classes-1 in `y`. */
export interface Examples {
  x: Float32Array[];
  y: number[];
  classes: number;
}

const HISTORY = 8;
/** A gradient this small leaves nothing to learn: the objective is flat within rounding. */
const GRADIENT_TOLERANCE = 1e-6;

export function fitLogistic({ x, y, classes }: Examples, options: RegressionOptions): FloatHead {
  const d = x[0].length;
  const { mean, scale } = standardization(x);
  const z = x.map((row) => Float64Array.from(row, (v, j) => (v - mean[j]) * scale[j]));
  const weights = balancedWeights(y, classes);
  const objective = (theta: Float64Array, gradient: Float64Array) =>
    loss(theta, gradient, z, y, weights, classes, options.l2);
  const theta = lbfgs(objective, new Float64Array(classes * (d + 1)), options.iterations);
  return unstandardize(theta, mean, scale, classes, d);
}

/** Mean and 1/spread of every feature; a feature that never varies gets scale 0 (it cannot teach). */
export function standardization(x: Float32Array[]): { mean: Float64Array; scale: Float64Array } {
  const d = x[0].length;
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (const row of x) for (let j = 0; j < d; j++) mean[j] += row[j];
  for (let j = 0; j < d; j++) mean[j] /= x.length;
  for (const row of x) for (let j = 0; j < d; j++) scale[j] += (row[j] - mean[j]) ** 2;
  for (let j = 0; j < d; j++) {
    const spread = Math.sqrt(scale[j] / x.length);
    scale[j] = spread > 1e-6 ? 1 / spread : 0;
  }
  return { mean, scale };
}

/** Each example weighs 1 / (classes · its class's count): every class sums to 1 / classes. */
export function balancedWeights(y: number[], classes: number): Float64Array {
  const counts = new Array<number>(classes).fill(0);
  for (const c of y) counts[c]++;
  return Float64Array.from(y, (c) => 1 / (classes * counts[c]));
}

/**
 * Σ_i w_i · cross-entropy(softmax(W z_i + b), y_i) + l2/2 · |W|²; theta holds W row-major
 * (classes × d) then b. Writes the gradient, returns the value.
 */
export function loss(
  theta: Float64Array,
  gradient: Float64Array,
  z: Float64Array[],
  y: number[],
  weights: Float64Array,
  classes: number,
  l2: number,
): number {
  const d = z[0].length;
  const biasAt = classes * d;
  gradient.fill(0);
  let value = 0;
  const logits = new Float64Array(classes);
  for (let i = 0; i < z.length; i++) {
    const zi = z[i];
    for (let c = 0; c < classes; c++) logits[c] = theta[biasAt + c] + dot(theta, c * d, zi);
    const max = logits.reduce((m, v) => Math.max(m, v), -Infinity);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[c] - max);
    value += weights[i] * (max + Math.log(sum) - logits[y[i]]);
    for (let c = 0; c < classes; c++) {
      const residual = weights[i] * (Math.exp(logits[c] - max) / sum - (c === y[i] ? 1 : 0));
      gradient[biasAt + c] += residual;
      const row = c * d;
      for (let j = 0; j < d; j++) gradient[row + j] += residual * zi[j];
    }
  }
  for (let k = 0; k < biasAt; k++) {
    value += 0.5 * l2 * theta[k] * theta[k];
    gradient[k] += l2 * theta[k];
  }
  return value;
}

function dot(theta: Float64Array, at: number, z: Float64Array): number {
  let s = 0;
  for (let j = 0; j < z.length; j++) s += theta[at + j] * z[j];
  return s;
}

type Objective = (theta: Float64Array, gradient: Float64Array) => number;

/** L-BFGS with a backtracking (Armijo) line search, `iterations` steps from `theta`. */
export function lbfgs(objective: Objective, theta: Float64Array, iterations: number): Float64Array {
  const n = theta.length;
  let gradient = new Float64Array(n);
  let value = objective(theta, gradient);
  const steps: Float64Array[] = [];
  const changes: Float64Array[] = [];
  for (let iteration = 0; iteration < iterations; iteration++) {
    if (Math.sqrt(dotAll(gradient, gradient)) < GRADIENT_TOLERANCE) break;
    const direction = twoLoop(gradient, steps, changes);
    const slope = dotAll(direction, gradient);
    if (!(slope < 0)) break; // no descent left: at the minimum within rounding
    let step = steps.length === 0 ? 1 / Math.sqrt(dotAll(gradient, gradient)) : 1;
    const next = new Float64Array(n);
    const nextGradient = new Float64Array(n);
    let nextValue = Infinity;
    for (let tries = 0; tries < 20; tries++) {
      for (let k = 0; k < n; k++) next[k] = theta[k] + step * direction[k];
      nextValue = objective(next, nextGradient);
      if (nextValue <= value + 1e-4 * step * slope) break;
      step /= 2;
    }
    if (!(nextValue < value)) break;
    const s = next.map((v, k) => v - theta[k]);
    const c = nextGradient.map((v, k) => v - gradient[k]);
    if (dotAll(s, c) > 1e-12) {
      steps.push(s);
      changes.push(c);
      if (steps.length > HISTORY) {
        steps.shift();
        changes.shift();
      }
    }
    theta = next;
    gradient = nextGradient;
    value = nextValue;
  }
  return theta;
}

/** −H·g from the stored steps and gradient changes (Nocedal and Wright, algorithm 7.4). */
function twoLoop(gradient: Float64Array, steps: Float64Array[], changes: Float64Array[]): Float64Array {
  const q = Float64Array.from(gradient);
  const alphas: number[] = [];
  for (let m = steps.length - 1; m >= 0; m--) {
    const alpha = dotAll(steps[m], q) / dotAll(changes[m], steps[m]);
    alphas[m] = alpha;
    for (let k = 0; k < q.length; k++) q[k] -= alpha * changes[m][k];
  }
  if (steps.length > 0) {
    const last = steps.length - 1;
    const gamma = dotAll(steps[last], changes[last]) / dotAll(changes[last], changes[last]);
    for (let k = 0; k < q.length; k++) q[k] *= gamma;
  }
  for (let m = 0; m < steps.length; m++) {
    const beta = dotAll(changes[m], q) / dotAll(changes[m], steps[m]);
    for (let k = 0; k < q.length; k++) q[k] += steps[m][k] * (alphas[m] - beta);
  }
  return q.map((v) => -v);
}

function dotAll(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * b[k];
  return s;
}

/** W z + b with z = (e − mean) · scale is (W · scale) e + (b − W · scale · mean). */
function unstandardize(
  theta: Float64Array,
  mean: Float64Array,
  scale: Float64Array,
  classes: number,
  d: number,
): FloatHead {
  const weight = new Float64Array(classes * d);
  const bias = new Float64Array(classes);
  for (let c = 0; c < classes; c++) {
    let shift = 0;
    for (let j = 0; j < d; j++) {
      weight[c * d + j] = theta[c * d + j] * scale[j];
      shift += weight[c * d + j] * mean[j];
    }
    bias[c] = theta[classes * d + c] - shift;
  }
  return { weight, bias };
}
