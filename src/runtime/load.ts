/**
 * The streaming model loader. Bytes arrive in chunks from wherever the model lives (a URL, a file,
 * a stream, memory) and go through ModelStreamParser; the wasm memory is sized once when the header
 * has arrived, and each record is copied into its final place as soon as its CRC checks out, so the
 * model is ready the moment the trailer is verified. Only a record that spans chunks is buffered in
 * JavaScript (by the parser): the file as a whole never is, unless the Cache API option keeps it.
 */
import { ModelFormatError, ResnetWasmError } from '../errors.ts';
import { ModelStreamParser, type ModelEvent, type ModelHeader } from '../format/reader.ts';
import { METADATA_OFFSET, roundUp, TRAILER_BYTES } from '../format/layout.ts';
import { outputTensor, outSize } from '../model/types.ts';
import { Model } from './model.ts';
import { Network, threadScratchBytes, winogradTileBytes, type NetworkOptions } from './network.ts';
import { inputScratchBytes } from '../image/preprocess.ts';
import { defaultModelUrl } from '../default-model.ts';

/**
 * Where a model file comes from: a URL (string or URL object; `file:` URLs and, in Node, plain
 * paths are read with fs), a ReadableStream or async iterable of Uint8Array chunks, or the bytes.
 */
export type ModelSource = string | URL | Uint8Array | ArrayBuffer | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

export interface LoadProgress {
  /** Bytes received and checked so far (back to 0 if a server forced a restart). */
  bytesLoaded: number;
  /** The file's size, when the source tells it (Content-Length, file size, byte length). */
  totalBytes: number | undefined;
  /** Layers whose parameters are in place. */
  layersReady: number;
  /** 0 until the header has arrived. */
  layerCount: number;
}

export interface LoadOptions extends NetworkOptions {
  /** Called after every chunk has been checked and placed. */
  onProgress?: (progress: LoadProgress) => void;
  /** Cancels the load: the promise rejects with the signal's reason (an AbortError) and the memory is dropped. */
  signal?: AbortSignal;
  /**
   * Browsers: the name of a Cache API cache. An HTTP(S) model found there loads from it (and is
   * checked like any download); otherwise the download is stored there once it has been verified.
   */
  cache?: string;
  /** How many times a broken HTTP download is resumed (or restarted) before the load fails (default 5). */
  retries?: number;
}

/** A model could not be fetched: HTTP status, network failure after the retries, a bad source. */
export class ModelLoadError extends ResnetWasmError {
  readonly url?: string;
  readonly status?: number;

  constructor(message: string, details: { url?: string; status?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ModelLoadError';
    if (details.url !== undefined) this.url = details.url;
    if (details.status !== undefined) this.status = details.status;
  }
}

/**
 * The most wasm memory a model may claim (docs/FORMAT.md): a header whose memory bound exceeds it is
 * refused before anything is allocated.
 */
export const MAX_WASM_BYTES = 2 ** 31;

const FILE_CHUNK_BYTES = 256 * 1024;
const DEFAULT_RETRIES = 5;
const RETRY_DELAY_MS = 200;

/**
 * The stream restarts from byte 0: the first thing a sized source yields, and what a server that
 * ignores a Range request forces.
 */
interface Start {
  start: true;
  totalBytes: number | undefined;
}

type Chunk = Uint8Array | Start;

/**
 * Where the records of the file being read begin and end, once its header has arrived: a reader
 * that chooses its read sizes (a file) ends them there, so that no record spans two chunks and the
 * parser never has to copy one.
 */
interface ReadPlan {
  boundaries: number[];
}

/**
 * Loads a model, placing each layer in wasm memory as it arrives; resolves once the whole file is
 * verified. With no source (or `undefined`), the packaged ImageNet ResNet-50 (src/default-model.ts).
 */
export async function loadModel(source: ModelSource = defaultModelUrl(), options: LoadOptions = {}): Promise<Model> {
  options.signal?.throwIfAborted();
  const cache = await openCache(source, options.cache);
  const plan: ReadPlan = { boundaries: [] };
  if (cache === null) return loadChunks(sourceChunks(source, options, plan), options, plan);
  return loadThroughCache(cache.store, cache.url, options);
}

/**
 * Feeds chunks to a fresh Loading; a Start chunk begins a new one. A failed or abandoned Loading
 * releases its network, so nothing half-loaded survives.
 */
async function loadChunks(chunks: AsyncIterable<Chunk>, options: LoadOptions, plan: ReadPlan = { boundaries: [] }): Promise<Model> {
  let loading = new Loading(undefined, options, plan);
  try {
    for await (const chunk of abortable(chunks, options.signal)) {
      if (chunk instanceof Uint8Array) {
        await loading.push(chunk);
      } else {
        loading.abandon();
        loading = new Loading(chunk.totalBytes, options, plan);
      }
    }
    options.signal?.throwIfAborted();
    return await loading.finish();
  } catch (error) {
    loading.abandon();
    throw error;
  }
}

/** One pass over the file: the parser, and the network once the header is known. */
class Loading {
  private readonly parser = new ModelStreamParser();
  private network: Network | null = null;
  private readonly progress: LoadProgress;

  constructor(
    totalBytes: number | undefined,
    private readonly options: LoadOptions,
    private readonly plan: ReadPlan,
  ) {
    this.progress = { bytesLoaded: 0, totalBytes, layersReady: 0, layerCount: 0 };
  }

  async push(chunk: Uint8Array): Promise<void> {
    await this.handle(this.parser.push(chunk));
    this.progress.bytesLoaded += chunk.length;
    this.options.onProgress?.({ ...this.progress });
  }

  async finish(): Promise<Model> {
    await this.handle(this.parser.end());
    return new Model(this.network!);
  }

  /** Stops the network's worker threads, if any, and lets its memory go. */
  abandon(): void {
    this.network?.close();
    this.network = null;
  }

  /** Events in file order; a record's payload may view the chunk, so it is placed before the next push. */
  private async handle(events: ModelEvent[]): Promise<void> {
    for (const event of events) {
      if (event.type === 'header') {
        checkBeforeAllocating(event.header, this.progress.totalBytes, this.options.threads ?? 1);
        const { records, fileBytes } = event.header;
        this.plan.boundaries = [...records.map((r) => r.offset), fileBytes - TRAILER_BYTES, fileBytes];
        this.network = await Network.create(event.header, event.header.records.map((r) => r.payloadBytes), this.options);
        this.progress.layerCount = event.header.layers.length;
      } else if (event.type === 'record') {
        this.network!.setParameters(event.index, event.payload);
        this.progress.layersReady++;
      }
    }
  }
}

/**
 * Refuses, before Network.create allocates, a header that does not match the source's size or
 * whose memory bound exceeds MAX_WASM_BYTES.
 */
function checkBeforeAllocating(header: ModelHeader, totalBytes: number | undefined, threads: number): void {
  const context = { section: 'metadata' };
  if (totalBytes !== undefined && totalBytes < header.fileBytes) {
    throw new ModelFormatError(`file truncated: the metadata implies ${header.fileBytes} bytes, the source has ${totalBytes}`, totalBytes, context);
  }
  if (totalBytes !== undefined && totalBytes > header.fileBytes) {
    throw new ModelFormatError(`${totalBytes - header.fileBytes} bytes follow the ${header.fileBytes} that the metadata implies`, header.fileBytes, context);
  }
  const bound = wasmMemoryBound(header, threads);
  if (bound > MAX_WASM_BYTES) {
    throw new ModelFormatError(`the model may need ${bound} bytes of wasm memory, more than the ${MAX_WASM_BYTES} allowed`, METADATA_OFFSET, context);
  }
}

/**
 * An upper bound of the wasm memory Network.create asks for (docs/FORMAT.md states it): every
 * payload, twice for convs (Winograd's unfolded biases take at most the payload's size again), every
 * tensor with 32 bytes of alignment and slack (4 bytes a value for the f32 logits), every conv's
 * scratch (patch rows or Winograd tiles, whichever is larger), the input preprocessing's scratch
 * (src/image/resample.ts: filter tables and rows for an image of up to 40 megapixels), 64 KiB for
 * the static data and the pad row, and per thread a conv's scratch on whichever path needs more.
 */
export function wasmMemoryBound(header: ModelHeader, threads = 1): number {
  const parameters = header.layers.reduce((sum, layer, i) => {
    const payload = roundUp(header.records[i].payloadBytes, 16);
    return sum + (layer.kind === 'conv' ? 2 * payload : payload);
  }, 0);
  const logits = outputTensor(header);
  const tensors = header.tensors.reduce((sum, t, i) => sum + t.h * t.w * t.c * (i === logits ? 4 : 1) + 32, 0);
  const scratch = header.layers.reduce((sum, layer) => {
    if (layer.kind !== 'conv') return sum;
    const x = header.tensors[layer.input];
    const outH = outSize(x.h, layer.kh, layer.stride, layer.pad);
    const outW = outSize(x.w, layer.kw, layer.stride, layer.pad);
    const patchRows = outH * outW * roundUp(layer.kh * layer.kw * layer.cin, 8);
    return sum + Math.max(patchRows, winogradTileBytes(layer, { h: outH, w: outW })) + 32;
  }, 0);
  const threadScratch = Math.max(0, ...header.layers.map((layer) => (layer.kind === 'conv' ? Math.max(threadScratchBytes(layer, 'winograd'), threadScratchBytes(layer, 'direct')) : 0)));
  return parameters + tensors + scratch + inputScratchBytes(header.preprocessing) + 65536 + Math.max(1, threads) * threadScratch;
}

// ---- sources ----

function sourceChunks(source: ModelSource, options: LoadOptions, plan: ReadPlan): AsyncIterable<Chunk> {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) return bytesChunks(new Uint8Array(source));
  if (typeof source === 'string' || source instanceof URL) {
    const location = resolveLocation(source);
    return location instanceof URL && location.protocol !== 'file:' ? httpChunks(location.href, options) : fileChunks(location, plan);
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
function resolveLocation(source: string | URL): string | URL {
  if (source instanceof URL) return source;
  if (/^[a-z][a-z0-9+.-]+:/i.test(source)) return new URL(source);
  const page = (globalThis as { location?: { href: string } }).location;
  return isNode() || page === undefined ? source : new URL(source, page.href);
}

function isNode(): boolean {
  return typeof process !== 'undefined' && process.versions?.node !== undefined;
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

/** Reads a stream chunk by chunk; cancels it when the consumer stops early (error, abort). */
async function* streamChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
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

/** Chunks from a caller's stream or iterable: anything but Uint8Array is a caller's mistake we name. */
async function* checkedChunks(chunks: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) {
    if (!(chunk instanceof Uint8Array)) throw new ModelLoadError(`the model stream yielded ${describe(chunk)}, expected Uint8Array chunks`);
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

/** Ends the iteration with the signal's reason as soon as it aborts, even while a chunk is awaited. */
async function* abortable<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
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

// ---- HTTP with resume ----

/**
 * Downloads `url`. When the connection breaks, asks for the rest with `Range: bytes=N-` (and
 * `If-Range`, so a file changed on the server comes back whole); a 206 whose Content-Range starts
 * at N continues the stream, a 200 restarts it from byte 0. At most `retries` breaks in all.
 */
async function* httpChunks(url: string, options: LoadOptions): AsyncGenerator<Chunk> {
  const retries = options.retries ?? DEFAULT_RETRIES;
  let received = 0;
  let totalBytes: number | undefined;
  let validator: string | null = null;
  for (let failures = 0; ; ) {
    try {
      const response = await request(url, received, validator, options.signal);
      if (response.status === 206 && !continuesAt(response, received)) {
        received = 0;
        await response.body!.cancel();
        throw new Error('the server answered with another range than the one asked for');
      }
      if (response.status !== 206) {
        received = 0;
        totalBytes = identityLength(response);
        validator = response.headers.get('etag') ?? response.headers.get('last-modified');
        yield { start: true, totalBytes };
      }
      for await (const chunk of streamChunks(response.body!)) {
        received += chunk.length;
        yield chunk;
      }
      if (totalBytes === undefined || received >= totalBytes) return;
      throw new Error(`the connection closed after ${received} of ${totalBytes} bytes`);
    } catch (error) {
      if (error instanceof ResnetWasmError || options.signal?.aborted) throw error;
      if (++failures > retries) {
        throw new ModelLoadError(`${url}: download failed after ${retries} retries: ${(error as Error).message}`, { url, cause: error });
      }
    }
    await delay(RETRY_DELAY_MS * failures, options.signal);
  }
}

/** A GET from byte `from`; refuses HTTP errors (they are not worth retrying). */
async function request(url: string, from: number, validator: string | null, signal: AbortSignal | undefined): Promise<Response> {
  const headers: Record<string, string> = {};
  if (from > 0) headers.range = `bytes=${from}-`;
  if (from > 0 && validator !== null) headers['if-range'] = validator;
  const response = await fetch(url, { headers, signal });
  if (!response.ok || response.body === null) {
    response.body?.cancel().catch(() => undefined);
    throw new ModelLoadError(`${url}: HTTP ${response.status} ${response.statusText}`.trim(), { url, status: response.status });
  }
  return response;
}

/** Whether a 206's Content-Range starts at `from`. */
function continuesAt(response: Response, from: number): boolean {
  const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
  return range !== null && Number(range[1]) === from;
}

/** The file size from Content-Length, unless the body is compressed (then the header counts other bytes). */
function identityLength(response: Response): number | undefined {
  const encoding = response.headers.get('content-encoding');
  const length = response.headers.get('content-length');
  if ((encoding !== null && encoding !== 'identity') || length === null) return undefined;
  return Number(length);
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// ---- Cache API ----

interface CacheStore {
  match(url: string): Promise<Response | undefined>;
  put(url: string, response: Response): Promise<void>;
  delete(url: string): Promise<boolean>;
}

interface CacheStorageLike {
  open(name: string): Promise<CacheStore>;
}

/** The named cache, for an HTTP(S) source where the Cache API exists. */
async function openCache(source: ModelSource, name: string | undefined): Promise<{ store: CacheStore; url: string } | null> {
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
async function loadThroughCache(store: CacheStore, url: string, options: LoadOptions): Promise<Model> {
  const cached = await store.match(url);
  if (cached?.body) {
    try {
      return await loadChunks(cachedChunks(cached), options);
    } catch (error) {
      if (!(error instanceof ModelFormatError)) throw error;
      await store.delete(url);
    }
  }
  const kept: Uint8Array[] = [];
  const model = await loadChunks(keepChunks(httpChunks(url, options), kept), options);
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
