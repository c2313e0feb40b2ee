/**
 * The streaming assembly of a network: chunks go through ModelStreamParser; the wasm memory is
 * planned when the header has arrived, checked, and allocated once; each record is copied into its
 * final place as soon as its CRC checks out, so the network is ready the moment the trailer is
 * verified.
 */
import { ModelFormatError } from '../../errors.ts';
import { METADATA_OFFSET, TRAILER_BYTES } from '../../format/layout.ts';
import { type ModelEvent, type ModelHeader, ModelStreamParser } from '../../format/reader.ts';
import { MAX_WASM_BYTES, type MemoryLayout } from '../memory-plan.ts';
import { Network } from '../network.ts';
import { abortable, type Chunk, type ReadPlan } from './chunks.ts';
import type { LoadOptions, LoadProgress } from './options.ts';

/**
 * Feeds chunks to a fresh Loading; a Start chunk begins a new one. A failed or abandoned Loading
 * releases its network, so nothing half-loaded survives.
 */
export async function assemble(
  chunks: AsyncIterable<Chunk>,
  options: LoadOptions,
  plan: ReadPlan = { boundaries: [] },
): Promise<Network> {
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

  async finish(): Promise<Network> {
    await this.handle(this.parser.end());
    return this.network!;
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
        checkSize(event.header, this.progress.totalBytes);
        const plan = await Network.plan(
          event.header,
          event.header.records.map((r) => r.payloadBytes),
          this.options,
        );
        checkMemory(plan.layout);
        const { records, fileBytes } = event.header;
        this.plan.boundaries = [...records.map((r) => r.offset), fileBytes - TRAILER_BYTES, fileBytes];
        this.network = await Network.allocate(plan);
        this.progress.layerCount = event.header.layers.length;
      } else if (event.type === 'record') {
        this.network!.setParameters(event.index, event.payload);
        this.progress.layersReady++;
      }
    }
  }
}

/** Refuses, before anything is allocated, a header that does not match the source's size. */
function checkSize(header: ModelHeader, totalBytes: number | undefined): void {
  const context = { section: 'metadata' };
  if (totalBytes !== undefined && totalBytes < header.fileBytes) {
    throw new ModelFormatError(
      `file truncated: the metadata implies ${header.fileBytes} bytes, the source has ${totalBytes}`,
      totalBytes,
      context,
    );
  }
  if (totalBytes !== undefined && totalBytes > header.fileBytes) {
    throw new ModelFormatError(
      `${totalBytes - header.fileBytes} bytes follow the ${header.fileBytes} that the metadata implies`,
      header.fileBytes,
      context,
    );
  }
}

/** Refuses, before Network.allocate, a network whose planned memory exceeds MAX_WASM_BYTES (docs/FORMAT.md). */
function checkMemory(layout: MemoryLayout): void {
  if (layout.wasmBytes > MAX_WASM_BYTES) {
    const problem = `the model needs ${layout.wasmBytes} bytes of wasm memory, more than the ${MAX_WASM_BYTES} allowed`;
    throw new ModelFormatError(problem, METADATA_OFFSET, { section: 'metadata' });
  }
}
