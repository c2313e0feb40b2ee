/**
 * Seeded randomness for the builder, so that a (depth, seed) pair always yields the same network.
 * mulberry32 is tiny and good enough for weight initialisation; it is not for cryptography.
 */

/** Uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Random {
  uniform(lo: number, hi: number): number;
  normal(mean: number, std: number): number;
}

export function seededRandom(seed: number): Random {
  const next = mulberry32(seed);
  // Box-Muller yields normals in pairs; keeping the second halves the uniform draws.
  let spare: number | undefined;
  const standardNormal = (): number => {
    if (spare !== undefined) {
      const value = spare;
      spare = undefined;
      return value;
    }
    const u = 1 - next(); // in (0, 1], so the log is finite
    const radius = Math.sqrt(-2 * Math.log(u));
    const angle = 2 * Math.PI * next();
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };
  return {
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal: (mean, std) => mean + std * standardNormal(),
  };
}

/** A Float32Array of `count` values drawn from `draw`. */
export function randomArray(count: number, draw: () => number): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = draw();
  return values;
}
