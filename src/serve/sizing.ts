/**
 * How many workers `serve` starts and how many threads each model runs on. By default one worker
 * per core on one thread each (throughput); whichever of the two is not given explicitly is chosen
 * so that workers × threads stays within the cores. Both given: both honoured, even above the cores.
 */
import type { ThreadsChoice } from '../options/validate.ts';
import { MAX_AUTO_THREADS } from '../runtime/thread-count.ts';

export interface ServeSizing {
  workers: number;
  /** Threads per worker's model. */
  threads: number;
}

export function serveSizing(workers: number | undefined, threads: ThreadsChoice, cores: number): ServeSizing {
  if (threads !== 'auto') return { workers: workers ?? Math.max(1, Math.floor(cores / threads)), threads };
  const chosenWorkers = workers ?? Math.max(1, cores);
  return {
    workers: chosenWorkers,
    threads: Math.max(1, Math.min(MAX_AUTO_THREADS, Math.floor(cores / chosenWorkers))),
  };
}
