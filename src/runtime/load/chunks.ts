// A model file as one async sequence of chunks, whatever its source: the bytes, and Start marks
// that carry the file size when the source knows it (and restart the load when an HTTP server
// answers a Range request with the whole file); an AbortSignal is raced against every wait.

/**
 * The stream restarts from byte 0: the first thing a sized source yields, and what a server that
 * ignores a Range request forces.
 */
export interface Start {
  start: true;
  totalBytes: number | undefined;
}

export type Chunk = Uint8Array | Start;

/**
 * Where the records of the file being read begin and end, once its header has arrived: a reader
 * that chooses its read sizes (a file) ends them there, so that no record spans two chunks and the
 * parser never has to copy one.
 */
export interface ReadPlan {
  boundaries: number[];
}

/** Reads a stream chunk by chunk; cancels it when the consumer stops early (error, abort). */
export async function* streamChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let done = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) break;
      yield next.value;
    }
    done = true;
  } finally {
    if (!done) reader.cancel().catch(() => undefined);
  }
}

/** Ends the iteration with the signal's reason as soon as it aborts, even while a chunk is awaited. */
export async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  if (signal === undefined) return yield* source;
  const iterator = source[Symbol.asyncIterator]();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  let done = false;
  try {
    for (;;) {
      signal.throwIfAborted();
      const next = await Promise.race([iterator.next(), aborted]);
      if (next.done) break;
      yield next.value;
    }
    done = true;
  } finally {
    signal.removeEventListener('abort', onAbort);
    // Not awaited: a source stuck in next() would hold the rejection back forever.
    if (!done) iterator.return?.()?.catch(() => undefined);
  }
}
