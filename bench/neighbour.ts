// A noisy neighbour for `npm run bench -- --contention`, run as a child of bench/run.ts:
//   spin    keeps one core busy with arithmetic (a Pi's camera pipeline, another service);
//   stream  reads and writes a buffer far larger than the last-level cache, so it keeps a core busy
//           and takes memory bandwidth and cache from whatever runs beside it.
// It works in slices of SLICE_MS and yields between them, so it sees its parent go (IPC disconnect)
// and exits even if the parent was killed without stopping it.
import { fileURLToPath, pathToFileURL } from 'node:url';
import { forkChild, nextMessage } from './children.ts';

export type NeighbourKind = 'spin' | 'stream';

/** What runs beside the benchmark, in the order a round measures them. */
export const CONDITIONS = [
  { name: 'quiet', neighbours: [] },
  { name: 'busy core', neighbours: ['spin'] },
  { name: 'busy core + memory stream', neighbours: ['spin', 'stream'] },
] as const satisfies readonly { name: string; neighbours: readonly NeighbourKind[] }[];

export type Condition = (typeof CONDITIONS)[number]['name'];

const SLICE_MS = 20;
/** 256 MiB: eight times this machine's 32 MiB L3, and more than any desktop or Pi cache. */
const STREAM_BYTES = 256 * 1024 * 1024;

function spinner(): () => void {
  let x = 1;
  return () => {
    const end = performance.now() + SLICE_MS;
    while (performance.now() < end) for (let i = 0; i < 10_000; i++) x = (x * 1103515245 + 12345) >>> 0;
    if (x === 0.5) console.log(x); // never: keeps the loop from being optimised away
  };
}

function streamer(): () => void {
  // Filled first, so every page is mapped before the parent is told the neighbour is ready.
  const words = new Int32Array(STREAM_BYTES / 4).fill(1);
  // One cache line in 16 words: each touch brings a new line through the whole cache hierarchy.
  const STEP = 16;
  let at = 0;
  return () => {
    const end = performance.now() + SLICE_MS;
    while (performance.now() < end) {
      for (let i = 0; i < 65_536; i++) {
        words[at] += 1;
        at += STEP;
        if (at >= words.length) at = (at + 1) % STEP;
      }
    }
  };
}

/** Starts one neighbour of each kind and waits until all are at work; the function returned stops them. */
export async function startNeighbours(kinds: readonly NeighbourKind[]): Promise<() => Promise<void>> {
  const children = kinds.map((kind) => forkChild(fileURLToPath(import.meta.url), [kind]));
  const stop = () =>
    Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    ).then(() => undefined);
  try {
    await Promise.all(children.map((child, i) => nextMessage(child, `the ${kinds[i]} neighbour`)));
  } catch (e) {
    await stop();
    throw e;
  }
  return stop;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const kind = process.argv[2] as NeighbourKind;
  const slice = kind === 'spin' ? spinner() : kind === 'stream' ? streamer() : null;
  if (!slice) throw new Error(`neighbour: unknown kind "${kind}" (spin or stream)`);
  process.on('disconnect', () => process.exit(0));
  const loop = () => {
    slice();
    setImmediate(loop);
  };
  slice();
  process.send!('ready');
  setImmediate(loop);
}
