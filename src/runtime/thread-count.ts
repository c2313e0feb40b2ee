/**
 * How many threads a network runs on: `threads: 'auto'` (the default) takes the cores, at most
 * MAX_AUTO_THREADS, where threads can run at all, and one thread with a single warning where they
 * cannot; an explicit count above 1 where they cannot is an OptionError that says why.
 */
import { OptionError, type ThreadsChoice } from '../options/validate.ts';

/** More threads than this gained nothing measurable on ResNet-50 (layers are too small to share further). */
export const MAX_AUTO_THREADS = 4;

/** What decides the thread count on this engine. */
export interface ThreadHost {
  /** Logical cores (Node: os.availableParallelism(); browsers: navigator.hardwareConcurrency). */
  cores: number;
  /** Why more than one thread cannot run here, or null where it can. */
  obstacle: string | null;
}

export function threadHost(): ThreadHost {
  return { cores: cores(), obstacle: obstacle() };
}

let warned = false;

/** The thread count for `choice` on `host`; `warn` hears the fallback of `auto` to 1 thread, once per process. */
export function threadCount(
  choice: ThreadsChoice,
  host: ThreadHost,
  warn: (message: string) => void = (message) => console.warn(message),
): number {
  const wanted = choice === 'auto' ? Math.max(1, Math.min(host.cores, MAX_AUTO_THREADS)) : choice;
  if (wanted === 1 || host.obstacle === null) return wanted;
  if (choice !== 'auto') throw new OptionError('threads', `1 or "auto" here (${host.obstacle})`, choice);
  if (!warned) warn(`resnet-wasm: running on 1 thread, not ${wanted}: ${host.obstacle}`);
  warned = true;
  return 1;
}

function cores(): number {
  const concurrency = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
  if (typeof concurrency === 'number' && concurrency >= 1) return concurrency;
  // Not import(): the browser bundle, which Node also runs (--conditions=browser), stubs node: imports.
  const os = globalThis.process?.getBuiltinModule?.('node:os') as typeof import('node:os') | undefined;
  return os?.availableParallelism() ?? 1;
}

/**
 * Threads share the wasm memory (SharedArrayBuffer, which browsers give only to cross-origin
 * isolated pages) and the calling thread blocks in Atomics.wait, which a browser allows only in
 * workers.
 */
function obstacle(): string | null {
  if (typeof SharedArrayBuffer === 'undefined') return 'SharedArrayBuffer is not available';
  if (isNode()) return null;
  const scope = globalThis as { WorkerGlobalScope?: unknown; crossOriginIsolated?: boolean };
  if (scope.crossOriginIsolated !== true)
    return 'the page is not cross-origin isolated (COOP/COEP headers), so memory cannot be shared';
  if (scope.WorkerGlobalScope === undefined)
    return "a browser's main thread cannot wait for workers: load the model in a Web Worker";
  return null;
}

export function isNode(): boolean {
  return typeof process !== 'undefined' && process.versions?.node !== undefined;
}
