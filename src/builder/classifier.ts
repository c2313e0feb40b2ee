/**
 * A data-dependent classifier for random test networks. A trained classifier's weights lie in the
 * directions in which its features vary from photo to photo; random weights look equally at
 * every direction, mostly at ones where the photos do not differ, so their answer is decided by a
 * constant offset and by noise. Projecting the random weights onto the span of the calibration
 * photos' centred features, and centring the logits, gives a classifier whose answer depends on
 * the photo as a trained one's does.
 */
import { dot, orthonormalBasis } from '../linalg.ts';
import type { FloatLayer } from '../model/types.ts';

type FloatFc = Extract<FloatLayer, { kind: 'fc' }>;

export interface FocusOptions {
  /**
   * Project on only this many principal directions of the photos' centred features, rather than on
   * all they span, each divided by the photos' spread along it: a stronger focus. The photos differ
   * most along those directions, while int8 noise spreads over every feature, so fewer directions
   * answer more alike in fp32 and int8 (deep networks with near-ties between their top two classes
   * need it); equal weights keep the strongest direction from deciding every answer alone.
   */
  components?: number;
}

/** `features[i]` is the fc input for calibration photo i. */
export function focusClassifier(layer: FloatFc, features: Float32Array[], options: FocusOptions = {}): FloatFc {
  const mean = meanVector(features);
  const centred = features.map((f) => Float64Array.from(f, (v, i) => v - mean[i]));
  const basis =
    options.components === undefined ? orthonormalBasis(centred) : principalDirections(centred, options.components);
  const gains = options.components === undefined ? basis.map(() => 1) : basis.map((q) => 1 / spread(centred, q));
  const weight = new Float32Array(layer.weight.length);
  const bias = new Float32Array(layer.cout);
  for (let o = 0; o < layer.cout; o++) {
    const row = layer.weight.subarray(o * layer.cin, (o + 1) * layer.cin);
    const projected = new Float64Array(layer.cin);
    for (const [j, q] of basis.entries()) {
      const c = dot(row, q) * gains[j];
      for (let i = 0; i < layer.cin; i++) projected[i] += c * q[i];
    }
    weight.set(projected, o * layer.cin);
    // The bias cancels the mean photo's logit: what decides the class is what differs between photos.
    bias[o] = layer.bias[o] - dot(projected, mean);
  }
  return { ...layer, weight, bias };
}

function meanVector(vectors: Float32Array[]): Float64Array {
  const mean = new Float64Array(vectors[0].length);
  for (const v of vectors) v.forEach((x, i) => (mean[i] += x / vectors.length));
  return mean;
}

/**
 * The `count` leading principal directions of centred vectors, by power iteration on their Gram
 * matrix (one row per vector, so its size is the number of photos, not of features), each
 * eigenvector kept orthogonal to the ones before it.
 */
function principalDirections(centred: Float64Array[], count: number): Float64Array[] {
  const gram = centred.map((a) => centred.map((b) => dot(a, b)));
  const found: Float64Array[] = [];
  for (let j = 0; j < Math.min(count, centred.length - 1); j++) {
    let v = Float64Array.from(centred, (_, n) => Math.cos(1.3 * n + j));
    for (let iteration = 0; iteration < 300; iteration++) {
      v = Float64Array.from(gram, (row) => dot(row, v));
      for (const u of found) {
        const c = dot(v, u);
        v = v.map((x, n) => x - c * u[n]);
      }
      const norm = Math.sqrt(dot(v, v));
      if (norm === 0) return found.map((u) => combine(centred, u));
      v = v.map((x) => x / norm);
    }
    found.push(v);
  }
  return found.map((u) => combine(centred, u));
}

/** The standard deviation of the vectors along the unit direction q. */
function spread(centred: Float64Array[], q: Float64Array): number {
  return Math.sqrt(centred.reduce((sum, v) => sum + dot(v, q) ** 2, 0) / centred.length);
}

/** Σ weights[n]·vectors[n], normalized. */
function combine(vectors: Float64Array[], weights: Float64Array): Float64Array {
  const sum = new Float64Array(vectors[0].length);
  vectors.forEach((v, n) => v.forEach((x, i) => (sum[i] += weights[n] * x)));
  const norm = Math.sqrt(dot(sum, sum));
  return sum.map((x) => x / norm);
}
