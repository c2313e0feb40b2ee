/**
 * Dense linear algebra in double precision (matrices row-major), in a fixed order of operations:
 * the same input gives the same bits on every platform.
 */

/** L with L Lᵀ = A, A symmetric positive definite (n × n). */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = i === j ? Math.sqrt(s) : s / l[j * n + j];
    }
  }
  return l;
}

/** x with L Lᵀ x = b: forward then back substitution. */
export function choleskySolve(l: Float64Array, n: number, b: Float64Array): Float64Array {
  const z = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[i * n + k] * z[k];
    z[i] = s / l[i * n + i];
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = z[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * x[k];
    x[i] = s / l[i * n + i];
  }
  return x;
}

/** Gram-Schmidt; vectors that add (almost) nothing new are dropped. */
export function orthonormalBasis(vectors: Float64Array[]): Float64Array[] {
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

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
