// Every kind of model source turned into chunks (chunks.ts): bytes, a file (read at record
// boundaries), a caller's stream or iterable, or a URL (http.ts).
import { ModelLoadError } from '../../errors.ts';
import { isNode } from '../thread-count.ts';
import { type Chunk, type ReadPlan, streamChunks } from './chunks.ts';
import { httpChunks } from './http.ts';
import type { LoadOptions } from './options.ts';

/**
 * Where a model file comes from: a URL (string or URL object; `file:` URLs and, in Node, plain
 * paths are read with fs), a ReadableStream or async iterable of Uint8Array chunks, or the bytes.
 */
export type ModelSource =
  | string
  | URL
  | Uint8Array
  | ArrayBuffer
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>;

const FILE_CHUNK_BYTES = 256 * 1024;

/** The chunks of a source; a file's reads end at the record boundaries `plan` learns from the header. */
export function sourceChunks(source: ModelSource, options: LoadOptions, plan: ReadPlan): AsyncIterable<Chunk> {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return bytesChunks(new Uint8Array(source));
  if (typeof source === 'string' || source instanceof URL) {
    const location = resolveLocation(source);
    return location instanceof URL && location.protocol !== 'file:'
      ? httpChunks(location.href, options)
      : fileChunks(location, plan);
  }
  if (isReadableStream(source)) return checkedChunks(streamChunks(source));
  if (isAsyncIterable(source)) return checkedChunks(source);
  throw new ModelLoadError(`cannot load a model from ${describe(source)}: expected a URL, a path, a stream or bytes`);
}

async function* bytesChunks(bytes: Uint8Array): AsyncGenerator<Chunk> {
  yield { start: true, totalBytes: bytes.length };
  yield bytes;
}

/**
 * A string is a URL when it has a scheme; otherwise a path in Node, and a URL relative to the
 * page elsewhere. (A one-letter scheme is a Windows drive, not a URL.)
 */
export function resolveLocation(source: string | URL): string | URL {
  if (source instanceof URL) return source;
  if (/^[a-z][a-z0-9+.-]+:/i.test(source)) return new URL(source);
  const page = (globalThis as { location?: { href: string } }).location;
  return isNode() || page === undefined ? source : new URL(source, page.href);
}

/**
 * Reads the file into one buffer, over and over: each chunk is placed in wasm memory before the
 * next read, so reading leaves no garbage behind. Once the header is known, reads end at record
 * boundaries (a record larger than a chunk is read whole), so records are never copied either.
 */
async function* fileChunks(path: string | URL, plan: ReadPlan): AsyncGenerator<Chunk> {
  // Imported here so that bundles for browsers never need node:fs.
  const { open } = await import('node:fs/promises');
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    yield { start: true, totalBytes: size };
    let buffer = new Uint8Array(0);
    for (let pos = 0; pos < size; ) {
      const length = readLength(plan.boundaries, pos, size);
      if (buffer.length < length) buffer = new Uint8Array(length);
      const { bytesRead } = await file.read(buffer, 0, length, pos);
      // A file that shrank while being read: the parser reports the truncation.
      if (bytesRead === 0) return;
      pos += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}

/** Up to the last boundary within FILE_CHUNK_BYTES of `pos`, else up to the next boundary. */
function readLength(boundaries: number[], pos: number, size: number): number {
  const limit = Math.min(size, pos + FILE_CHUNK_BYTES);
  const ahead = boundaries.filter((b) => b > pos && b <= size);
  const within = ahead.filter((b) => b <= limit);
  const end = within.length > 0 ? within[within.length - 1] : (ahead[0] ?? limit);
  return end - pos;
}

/** Chunks from a caller's stream or iterable: anything but Uint8Array is a caller's mistake we name. */
async function* checkedChunks(chunks: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    if (!(chunk instanceof Uint8Array))
      throw new ModelLoadError(`the model stream yielded ${describe(chunk)}, expected Uint8Array chunks`);
    yield chunk;
  }
}

function isReadableStream(value: unknown): value is ReadableStream<Uint8Array> {
  return typeof (value as ReadableStream | null)?.getReader === 'function';
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === 'function';
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return typeof value === 'string' ? 'a string' : String(value);
  return `a ${value.constructor?.name ?? 'object'}`;
}
