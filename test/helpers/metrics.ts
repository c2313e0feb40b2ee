/** How two sets of logits compare: the measures the quality tests and reports assert on. */

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/**
 * The mean cosine between each pair of logit vectors after subtracting each batch's mean vector:
 * how alike the answers differ between photos.
 */
export function centredCosine(a: Float32Array[], b: Float32Array[]): number {
  const [ca, cb] = [centred(a), centred(b)];
  return ca.reduce((sum, v, i) => sum + cosine(v, cb[i]), 0) / a.length;
}

function centred(batch: Float32Array[]): Float64Array[] {
  const mean = new Float64Array(batch[0].length);
  for (const v of batch) v.forEach((x, i) => (mean[i] += x / batch.length));
  return batch.map((v) => Float64Array.from(v, (x, i) => x - mean[i]));
}
