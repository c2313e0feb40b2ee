/** Seeded randomness for tests: the same seed gives the same numbers on every machine. */
export { mulberry32 } from '../../src/builder/random.ts';

export type Rng = () => number;

/** An integer in lo..hi, both included. */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

export function pick<T>(rng: Rng, choices: readonly T[]): T {
  return choices[Math.floor(rng() * choices.length)];
}

/** int8 values in lo..hi (default the weight range −127..127). */
export function randomInt8Array(rng: Rng, length: number, lo = -127, hi = 127): Int8Array {
  return Int8Array.from({ length }, () => randInt(rng, lo, hi));
}

export function randomUint8Array(rng: Rng, length: number, lo = 0, hi = 255): Uint8Array {
  return Uint8Array.from({ length }, () => randInt(rng, lo, hi));
}

export function randomInt32Array(rng: Rng, length: number, lo: number, hi: number): Int32Array {
  return Int32Array.from({ length }, () => randInt(rng, lo, hi));
}

/** f32 values uniform in [lo, hi). */
export function randomFloat32Array(rng: Rng, length: number, lo = 0, hi = 1): Float32Array {
  return Float32Array.from({ length }, () => lo + (hi - lo) * rng());
}
