/**
 * The span of the examples. A linear head with an L2 penalty on its weights has its optimum in the
 * span of the rows it learns from, so the regression runs on r ≤ n coordinates instead of the
 * d = 2048 features: F (n × r) with F Fᵀ = Z Zᵀ, from a pivoted Cholesky factorization of the Gram
 * matrix (which also drops directions the examples do not span). The rows chosen as pivots are
 * exactly Z_P = T Q with T lower triangular and Q orthonormal, so weights V on the coordinates are
 * V Q = (V T⁻¹) Z_P on the features. Fixed order, double arithmetic: the same rows give the same bits.
 */

export interface Span {
  /** F, row-major n × r: example i's coordinates. */
  coordinates: Float64Array;
  rank: number;
  /** The examples chosen as pivots, in order: coordinate k starts at example pivots[k]. */
  pivots: number[];
}

/** Pivots smaller than this share of the largest squared length are directions the rows do not span. */
const RANK_TOLERANCE = 1e-10;

export function spanOf(rows: Float64Array[]): Span {
  const n = rows.length;
  const gram = gramMatrix(rows);
  const residual = Float64Array.from({ length: n }, (_, i) => gram[i * n + i]);
  const largest = residual.reduce((m, v) => Math.max(m, v), 0);
  const columns: Float64Array[] = [];
  const pivots: number[] = [];
  const pivoted = new Uint8Array(n);
  while (columns.length < n) {
    let p = -1;
    for (let i = 0; i < n; i++) if (!pivoted[i] && (p < 0 || residual[i] > residual[p])) p = i;
    if (p < 0 || !(residual[p] > RANK_TOLERANCE * largest)) break;
    const length = Math.sqrt(residual[p]);
    const column = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (pivoted[i]) continue;
      let s = gram[i * n + p];
      for (const c of columns) s -= c[i] * c[p];
      column[i] = s / length;
    }
    column[p] = length;
    pivoted[p] = 1;
    pivots.push(p);
    for (let i = 0; i < n; i++) if (!pivoted[i]) residual[i] -= column[i] * column[i];
    columns.push(column);
  }
  const rank = columns.length;
  const coordinates = new Float64Array(n * rank);
  columns.forEach((column, k) => {
    for (let i = 0; i < n; i++) coordinates[i * rank + k] = column[i];
  });
  return { coordinates, rank, pivots };
}

/**
 * Z Zᵀ, n × n: two rows against two at a time (each row's values are loaded once for four sums,
 * twice as fast in JavaScript), every sum still over j in order, so the same bits as one by one.
 */
function gramMatrix(rows: Float64Array[]): Float64Array {
  const n = rows.length;
  const d = rows[0].length;
  const gram = new Float64Array(n * n);
  const set = (i: number, k: number, s: number) => {
    gram[i * n + k] = s;
    gram[k * n + i] = s;
  };
  for (let i = 0; i < n; i += 2) {
    const a0 = rows[i];
    const a1 = rows[Math.min(i + 1, n - 1)];
    for (let k = 0; k <= i; k += 2) {
      const b0 = rows[k];
      const b1 = rows[Math.min(k + 1, n - 1)];
      let s00 = 0;
      let s01 = 0;
      let s10 = 0;
      let s11 = 0;
      for (let j = 0; j < d; j++) {
        const u = a0[j];
        const v = a1[j];
        s00 += u * b0[j];
        s01 += u * b1[j];
        s10 += v * b0[j];
        s11 += v * b1[j];
      }
      set(i, k, s00);
      if (k + 1 <= i) set(i, k + 1, s01);
      if (i + 1 < n) set(i + 1, k, s10);
      if (i + 1 < n && k + 1 <= i + 1) set(i + 1, k + 1, s11);
    }
  }
  return gram;
}

/** Weights V (classes × r) on the span's coordinates as weights on the rows' features (classes × d). */
export function featureWeights(span: Span, v: Float64Array, classes: number, rows: Float64Array[]): Float64Array {
  const { coordinates, rank, pivots } = span;
  const d = rows[0].length;
  const weight = new Float64Array(classes * d);
  const u = new Float64Array(rank);
  for (let c = 0; c < classes; c++) {
    // u T = v_c, T[k][j] = coordinates of pivot k, lower triangular: back substitution.
    for (let j = rank - 1; j >= 0; j--) {
      let s = v[c * rank + j];
      for (let k = j + 1; k < rank; k++) s -= u[k] * coordinates[pivots[k] * rank + j];
      u[j] = s / coordinates[pivots[j] * rank + j];
    }
    const out = c * d;
    for (let k = 0; k < rank; k++) {
      const row = rows[pivots[k]];
      for (let j = 0; j < d; j++) weight[out + j] += u[k] * row[j];
    }
  }
  return weight;
}
