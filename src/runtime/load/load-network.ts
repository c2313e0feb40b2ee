/**
 * The streaming loader. Bytes arrive in chunks from wherever the model lives (sources.ts: a URL, a
 * file, a stream, memory; http.ts resumes a broken download; cache.ts keeps it in a browser's Cache
 * API) and assemble.ts places each record in wasm memory as it arrives. Only a record that spans
 * chunks is buffered in JavaScript (by the parser): the file as a whole never is, unless the Cache
 * API option keeps it.
 */
import type { Network } from '../network.ts';
import { assemble } from './assemble.ts';
import { loadThroughCache, openCache } from './cache.ts';
import type { ReadPlan } from './chunks.ts';
import type { LoadOptions } from './options.ts';
import { type ModelSource, sourceChunks } from './sources.ts';

/** Loads a network, placing each layer in wasm memory as it arrives; resolves once the whole file is verified. */
export async function loadNetwork(source: ModelSource, options: LoadOptions = {}): Promise<Network> {
  options.signal?.throwIfAborted();
  const cache = await openCache(source, options.cache);
  const plan: ReadPlan = { boundaries: [] };
  if (cache === null) return assemble(sourceChunks(source, options, plan), options, plan);
  return loadThroughCache(cache.store, cache.url, options);
}
