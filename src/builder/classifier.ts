/**
 * A data-dependent classifier for random test networks. A trained classifier's weights lie in the
 * directions in which its features vary from photo to photo; random weights look equally at
 * every direction, mostly at ones where the photos do not differ, so their answer is decided by a
 * constant offset and by noise. Projecting the random weights onto the span of the calibration
 * photos' centred features, and centring the logits, gives a classifier whose answer depends on
 * the photo as a trained one's does.
 */
import type { FloatLayer } from '../model/types.ts';

type FloatFc = Extract<FloatLayer, { kind: 'fc' }>;

/** `features[i]` is the fc input for calibration photo i. */
export function focusClassifier(layer: FloatFc, features: Float32Array[]): FloatFc {
  const mean = meanVector(features);
  const basis = orthonormalBasis(features.map((f) => Float64Array.from(f, (v, i) => v - mean[i])));
  const weight = new Float32Array(layer.weight.length);
  const bias = new Float32Array(layer.cout);
  for (let o = 0; o < layer.cout; o++) {
    const row = layer.weight.subarray(o * layer.cin, (o + 1) * layer.cin);
    const projected = new Float64Array(layer.cin);
    for (const q of basis) {
      const c = dot(row, q);
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

/** Gram-Schmidt; vectors that add (almost) nothing new are dropped. */
function orthonormalBasis(vectors: Float64Array[]): Float64Array[] {
  const basis: Float64Array[] = [];
  for (const v of vectors) {
    const u = Float64Array.from(v);
    for (const q of basis) {
      const c = dot(u, q);
      for (let i = 0; i < u.length; i++) u[i] -= c * q[i];
    }
    const norm = Math.sqrt(dot(u, u));
    if (norm > 1e-9 * Math.sqrt(dot(v, v)) && norm > 0) basis.push(u.map((x) => x / norm));
  }
  return basis;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
