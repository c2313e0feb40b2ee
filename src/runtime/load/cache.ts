/**
 * Browsers: a model downloaded over HTTP(S) is kept in a Cache API cache once verified, and loaded
 * from there (checked like any download) the next time.
 */
import { ModelFormatError } from '../../errors.ts';
import type { Network } from '../network.ts';
import { assemble } from './assemble.ts';
import { type Chunk, streamChunks } from './chunks.ts';
import { httpChunks, identityLength } from './http.ts';
import type { LoadOptions } from './options.ts';
import { type ModelSource, resolveLocation } from './sources.ts';

interface CacheStore {
  match(url: string): Promise<Response | undefined>;
  put(url: string, response: Response): Promise<void>;
  delete(url: string): Promise<boolean>;
}

interface CacheStorageLike {
  open(name: string): Promise<CacheStore>;
}

/** The named cache, for an HTTP(S) source where the Cache API exists. */
export async function openCache(
  source: ModelSource,
  name: string | undefined,
): Promise<{ store: CacheStore; url: string } | null> {
  const caches = (globalThis as { caches?: CacheStorageLike }).caches;
  if (name === undefined || caches === undefined || !(typeof source === 'string' || source instanceof URL)) return null;
  const location = resolveLocation(source);
  if (!(location instanceof URL) || !/^https?:$/.test(location.protocol)) return null;
  return { store: await caches.open(name), url: location.href };
}

/**
 * Loads from the cache when the file is there and intact (a damaged copy is deleted and
 * downloaded again); otherwise downloads, keeping the chunks, and stores them once verified.
 */
export async function loadThroughCache(store: CacheStore, url: string, options: LoadOptions): Promise<Network> {
  const cached = await store.match(url);
  if (cached?.body) {
    try {
      return await assemble(cachedChunks(cached), options);
    } catch (error) {
      if (!(error instanceof ModelFormatError)) throw error;
      await store.delete(url);
    }
  }
  const kept: Uint8Array[] = [];
  const model = await assemble(keepChunks(httpChunks(url, options), kept), options);
  const file = new Blob(kept as BlobPart[]);
  const headers = { 'content-type': 'application/octet-stream', 'content-length': String(file.size) };
  // A full or unavailable cache must not fail a load that succeeded.
  await store.put(url, new Response(file, { headers })).catch(() => undefined);
  return model;
}

async function* cachedChunks(response: Response): AsyncGenerator<Chunk> {
  yield { start: true, totalBytes: identityLength(response) };
  yield* streamChunks(response.body!);
}

/** Passes chunks through and keeps them in `kept` (emptied when the stream restarts). */
async function* keepChunks(chunks: AsyncIterable<Chunk>, kept: Uint8Array[]): AsyncGenerator<Chunk> {
  for await (const chunk of chunks) {
    if (chunk instanceof Uint8Array) kept.push(chunk);
    else kept.length = 0;
    yield chunk;
  }
}
