/**
 * L-BFGS (Nocedal and Wright, algorithm 7.5) with a backtracking (Armijo) line search: plain double
 * arithmetic in a fixed order, so the same objective gives the same bits everywhere.
 */

/** Writes the gradient at theta, returns the value. */
export type Objective = (theta: Float64Array, gradient: Float64Array) => number;

const HISTORY = 8;
/** A gradient this small leaves nothing to learn: the objective is flat within rounding. */
const GRADIENT_TOLERANCE = 1e-7;

/** At most `iterations` steps from `theta`; stops earlier at a minimum. */
export function lbfgs(objective: Objective, theta: Float64Array, iterations: number): Float64Array {
  const n = theta.length;
  let gradient = new Float64Array(n);
  let value = objective(theta, gradient);
  const steps: Float64Array[] = [];
  const changes: Float64Array[] = [];
  for (let iteration = 0; iteration < iterations; iteration++) {
    if (Math.sqrt(dot(gradient, gradient)) < GRADIENT_TOLERANCE) break;
    const direction = twoLoop(gradient, steps, changes);
    const slope = dot(direction, gradient);
    if (!(slope < 0)) break; // no descent left: at the minimum within rounding
    let step = steps.length === 0 ? 1 / Math.sqrt(dot(gradient, gradient)) : 1;
    const next = new Float64Array(n);
    const nextGradient = new Float64Array(n);
    let nextValue = Infinity;
    for (let tries = 0; tries < 30; tries++) {
      for (let k = 0; k < n; k++) next[k] = theta[k] + step * direction[k];
      nextValue = objective(next, nextGradient);
      if (nextValue <= value + 1e-4 * step * slope) break;
      step /= 2;
    }
    if (!(nextValue < value)) break;
    const s = next.map((v, k) => v - theta[k]);
    const c = nextGradient.map((v, k) => v - gradient[k]);
    if (dot(s, c) > 1e-14) {
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
    const alpha = dot(steps[m], q) / dot(changes[m], steps[m]);
    alphas[m] = alpha;
    for (let k = 0; k < q.length; k++) q[k] -= alpha * changes[m][k];
  }
  if (steps.length > 0) {
    const last = steps.length - 1;
    const gamma = dot(steps[last], changes[last]) / dot(changes[last], changes[last]);
    for (let k = 0; k < q.length; k++) q[k] *= gamma;
  }
  for (let m = 0; m < steps.length; m++) {
    const beta = dot(changes[m], q) / dot(changes[m], steps[m]);
    for (let k = 0; k < q.length; k++) q[k] += steps[m][k] * (alphas[m] - beta);
  }
  return q.map((v) => -v);
}

export function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * b[k];
  return s;
}
