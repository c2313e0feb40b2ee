// Statistics of interleaved rounds. On a shared host a neighbour's burst slows whatever runs at that
// moment, so a ratio of two configurations is taken within each round (both measured minutes apart
// at most), and the median of those per-round ratios, with its spread, is what a table reports.

import { percentile } from '../src/cli/statistics.ts';

/** Of the values, over rounds or runs. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Quartiles. */
  q1: number;
  q3: number;
  n: number;
}

export function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: percentile(sorted, 0.5),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
    q1: percentile(sorted, 0.25),
    q3: percentile(sorted, 0.75),
    n: sorted.length,
  };
}

/**
 * numerators[r] / denominators[r] for each round r where both were measured (null: that
 * configuration failed or was not run in round r), summarised; null if no round had both.
 */
export function roundRatios(
  numerators: readonly (number | null)[],
  denominators: readonly (number | null)[],
): Spread | null {
  const ratios: number[] = [];
  numerators.forEach((a, r) => {
    const b = denominators[r];
    if (a !== null && b !== null && b !== undefined) ratios.push(a / b);
  });
  return ratios.length ? spread(ratios) : null;
}
