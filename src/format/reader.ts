/**
 * Reads a model file (docs/FORMAT.md) front to back, from a stream or from bytes in memory.
 * ModelStreamParser takes chunks of any size and reports the header as soon as it is complete and
 * checked, then each record once its CRC is checked, then the end once the trailer is checked.
 * Bytes are buffered only while one piece (a header, a record) spans chunks.
 */
import { type FormatErrorContext, ModelFormatError } from '../errors.ts';
import type { HeadInfo, NetworkHeader, QuantLayer, QuantModel } from '../model/types.ts';
import { validateAffineParameters, validateGraph, validateLayerParameters } from '../model/validate.ts';
import { crc32, crc32Combine } from './crc32.ts';
import {
  ALIGNMENT,
  fileLayout,
  findNonzeroPadding,
  HEADER_BYTES,
  HEADER_CRC_OFFSET,
  hasParameters,
  KIND_CODES,
  LIMITS,
  MAGIC,
  MAJOR_VERSION,
  METADATA_OFFSET,
  payloadBytes,
  RECORD_HEADER_BYTES,
  type RecordLayout,
  roundUp,
  TRAILER_BYTES,
  TRAILER_MAGIC,
  unpackAffine,
  unpackWeights,
} from './layout.ts';

/** The checked header and metadata: everything about the model but its parameters. */
export interface ModelHeader extends NetworkHeader {
  producer?: string;
  minorVersion: number;
  /** Where each layer's record lies, in layer order. */
  records: RecordLayout[];
  fileBytes: number;
}

/**
 * A record's `payload` may be a view of a chunk passed to push(): it stays valid as long as the
 * caller leaves that chunk unchanged.
 */
export type ModelEvent =
  | { type: 'header'; header: ModelHeader }
  | { type: 'record'; index: number; payload: Uint8Array }
  | { type: 'end'; fileBytes: number };

/** The next piece of the file the parser waits for. */
interface Need extends FormatErrorContext {
  bytes: number;
  /** e.g. `payload`, for truncation messages */
  part: string;
}

type Steps<T = void> = Generator<Need, T, Uint8Array>;

const NOTHING = new Uint8Array(0);

export class ModelStreamParser {
  private readonly steps: Steps;
  /** null once the trailer has been read */
  private need: Need | null;
  /** A piece being assembled from several chunks. */
  private partial: Uint8Array | null = null;
  private partialFilled = 0;
  private received = 0;
  private events: ModelEvent[] = [];
  private failure: unknown = null;
  /** File offset of the next byte the steps read. */
  private offset = 0;
  /** CRC-32 of every byte read so far, except the trailer. */
  private fileCrc = 0;

  constructor() {
    this.steps = this.parse();
    this.need = this.resume(NOTHING);
  }

  /** Feeds the next bytes of the file; returns what they completed. Throws ModelFormatError. */
  push(chunk: Uint8Array): ModelEvent[] {
    return this.guard(() => {
      for (let pos = 0; pos < chunk.length; ) pos += this.consume(chunk, pos);
    });
  }

  /** Declares the file complete; throws ModelFormatError if it is not. */
  end(): ModelEvent[] {
    return this.guard(() => {
      if (this.need !== null) throw this.truncation(this.need);
      this.events.push({ type: 'end', fileBytes: this.received });
    });
  }

  /** Runs `work`; a failure is final, so every later call throws it again. */
  private guard(work: () => void): ModelEvent[] {
    if (this.failure !== null) throw this.failure;
    try {
      work();
    } catch (error) {
      this.failure = error;
      throw error;
    }
    const events = this.events;
    this.events = [];
    return events;
  }

  /** Consumes bytes of `chunk` from `pos` towards the piece the steps wait for; returns how many. */
  private consume(chunk: Uint8Array, pos: number): number {
    if (this.need === null) {
      throw new ModelFormatError(`${chunk.length - pos} bytes follow the trailer`, this.received, {
        section: 'trailer',
      });
    }
    const wanted = this.need.bytes;
    if (this.partial === null && chunk.length - pos >= wanted) {
      this.received += wanted;
      this.need = this.resume(chunk.subarray(pos, pos + wanted));
      return wanted;
    }
    this.partial ??= new Uint8Array(wanted);
    const count = Math.min(wanted - this.partialFilled, chunk.length - pos);
    this.partial.set(chunk.subarray(pos, pos + count), this.partialFilled);
    this.partialFilled += count;
    this.received += count;
    if (this.partialFilled === wanted) {
      const piece = this.partial;
      this.partial = null;
      this.partialFilled = 0;
      this.need = this.resume(piece);
    }
    return count;
  }

  private resume(piece: Uint8Array): Need | null {
    const next = this.steps.next(piece);
    return next.done ? null : next.value;
  }

  private truncation(need: Need): ModelFormatError {
    const missing = need.bytes - this.partialFilled;
    return new ModelFormatError(
      `file truncated: ${missing} more bytes of the ${need.part} expected`,
      this.received,
      need,
    );
  }

  private *parse(): Steps {
    const header = yield* this.readHeader();
    this.events.push({ type: 'header', header });
    for (let index = 0; index < header.layers.length; index++) yield* this.readRecord(header, index);
    yield* this.readTrailer(header);
  }

  /** The next `bytes` bytes of the file; `hashed` adds them to the whole-file CRC. */
  private *take(need: Need, hashed = true): Steps<Uint8Array> {
    const piece = need.bytes === 0 ? NOTHING : yield need;
    this.offset += need.bytes;
    if (hashed) this.fileCrc = crc32(piece, this.fileCrc);
    return piece;
  }

  /** Zero bytes up to the next 16-byte boundary. */
  private *readPadding(context: FormatErrorContext): Steps {
    const start = this.offset;
    const padding = yield* this.take({ ...context, bytes: roundUp(start, ALIGNMENT) - start, part: 'padding' });
    const nonzero = padding.findIndex((byte) => byte !== 0);
    if (nonzero >= 0) throw new ModelFormatError('nonzero padding byte', start + nonzero, context);
  }

  private *readHeader(): Steps<ModelHeader> {
    const section = { section: 'header' };
    const fail = (problem: string, offset: number) => new ModelFormatError(problem, offset, section);
    // Every field is read before the next yield: the piece may be a view of a chunk the caller reuses.
    const fixed = yield* this.take({ ...section, bytes: HEADER_BYTES, part: 'header' });
    if (MAGIC.some((byte, i) => fixed[i] !== byte)) throw fail('not a resnet-wasm model file (wrong magic)', 0);
    const view = dataView(fixed);
    const major = view.getUint16(8, true);
    if (major !== MAJOR_VERSION) throw fail(`major version ${major}, this reader reads version ${MAJOR_VERSION}`, 8);
    const minorVersion = view.getUint16(10, true);
    const metadataBytes = view.getUint32(12, true);
    if (metadataBytes < 1 || metadataBytes > LIMITS.maxMetadataBytes) {
      throw fail(`metadata length ${metadataBytes} outside 1..${LIMITS.maxMetadataBytes}`, 12);
    }
    const recordCount = view.getUint32(16, true);
    if (recordCount < 1 || recordCount > LIMITS.maxRecords) {
      throw fail(`record count ${recordCount} outside 1..${LIMITS.maxRecords}`, 16);
    }
    const storedCrc = view.getUint32(HEADER_CRC_OFFSET, true);
    const prefixCrc = crc32(fixed.subarray(0, HEADER_CRC_OFFSET));

    const metadata = yield* this.take({ section: 'metadata', bytes: metadataBytes, part: 'metadata' });
    if (crc32(metadata, prefixCrc) !== storedCrc) throw fail('header CRC-32 mismatch', HEADER_CRC_OFFSET);
    const { graph, producer } = parseMetadata(metadata);
    if (graph.layers.length !== recordCount) {
      throw fail(`record count ${recordCount}, but the metadata has ${graph.layers.length} layers`, 16);
    }
    yield* this.readPadding({ section: 'metadata' });
    const layout = fileLayout(metadataBytes, graph.layers.map(payloadBytes));
    return {
      ...graph,
      ...(producer === undefined ? {} : { producer }),
      minorVersion,
      records: layout.records,
      fileBytes: layout.fileBytes,
    };
  }

  private *readRecord(header: ModelHeader, index: number): Steps {
    const layer = header.layers[index];
    const record = header.records[index];
    const context = { section: `record ${index}`, layer: layer.name };
    const fail = (problem: string, offset: number) => new ModelFormatError(problem, offset, context);

    const view = dataView(yield* this.take({ ...context, bytes: RECORD_HEADER_BYTES, part: 'record header' }));
    const kind = view.getUint16(4, true);
    if (kind !== KIND_CODES[layer.kind]) {
      throw fail(`kind code ${kind}, the metadata says ${layer.kind} (${KIND_CODES[layer.kind]})`, record.offset + 4);
    }
    const recordIndex = view.getUint32(8, true);
    if (recordIndex !== index) throw fail(`record says it is number ${recordIndex}`, record.offset + 8);
    const length = view.getUint32(0, true);
    if (length !== record.payloadBytes) {
      throw fail(`payload length ${length}, the metadata implies ${record.payloadBytes}`, record.offset);
    }
    if (view.getUint16(6, true) !== 0) throw fail('reserved field is not 0', record.offset + 6);
    const storedCrc = view.getUint32(12, true);

    // The payload is hashed once: its CRC is folded into the file CRC rather than recomputed.
    const payload = yield* this.take({ ...context, bytes: length, part: 'payload' }, false);
    const crc = crc32(payload);
    if (crc !== storedCrc) throw fail('CRC-32 mismatch', record.payloadOffset);
    this.fileCrc = crc32Combine(this.fileCrc, crc, length);
    const nonzero = findNonzeroPadding(layer, payload);
    if (nonzero >= 0) throw fail('nonzero byte in a padding channel', record.payloadOffset + nonzero);
    this.events.push({ type: 'record', index, payload });
    yield* this.readPadding(context);
  }

  private *readTrailer(header: ModelHeader): Steps {
    const context = { section: 'trailer' };
    const start = this.offset;
    const fail = (problem: string, at: number) => new ModelFormatError(problem, start + at, context);
    const expectedCrc = this.fileCrc;
    const trailer = yield* this.take({ ...context, bytes: TRAILER_BYTES, part: 'trailer' }, false);
    if (TRAILER_MAGIC.some((byte, i) => trailer[i] !== byte)) throw fail('wrong trailer magic', 0);
    const view = dataView(trailer);
    const fileBytes = view.getUint32(4, true);
    if (fileBytes !== header.fileBytes) throw fail(`file length ${fileBytes}, expected ${header.fileBytes}`, 4);
    if (view.getUint32(8, true) !== expectedCrc) throw fail('whole-file CRC-32 mismatch', 8);
    if (view.getUint32(12, true) !== 0) throw fail('reserved field is not 0', 12);
  }
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function parseMetadata(bytes: Uint8Array): { graph: NetworkHeader; producer?: string } {
  const context = { section: 'metadata' };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new ModelFormatError(`not valid UTF-8 JSON (${(error as Error).message})`, METADATA_OFFSET, context);
  }
  const graph = validateGraph(json, METADATA_OFFSET);
  const producer = (json as Record<string, unknown>).producer;
  if (producer !== undefined && typeof producer !== 'string') {
    throw new ModelFormatError('producer must be a string', METADATA_OFFSET, context);
  }
  const head = parseHead((json as Record<string, unknown>).head);
  return { graph: head === undefined ? graph : { ...graph, head }, producer };
}

/** The optional `head` field of a taught model (FORMAT.md, "Taught heads"). */
function parseHead(head: unknown): HeadInfo | undefined {
  if (head === undefined) return undefined;
  const fail = (problem: string) => new ModelFormatError(`head: ${problem}`, METADATA_OFFSET, { section: 'metadata' });
  if (typeof head !== 'object' || head === null) throw fail('must be an object');
  const { base, unknown } = head as Record<string, unknown>;
  if (typeof base !== 'string' || !/^[0-9a-f]{8}$/.test(base)) throw fail('base must be 8 lowercase hex digits');
  if (unknown === undefined) return { base };
  if (typeof unknown !== 'number' || !(unknown > 0 && unknown < 1))
    throw fail('unknown must be a probability between 0 and 1');
  return { base, unknown };
}

/** Checks a whole file in memory; the payloads are views of `bytes`. */
export function readModel(bytes: Uint8Array): { header: ModelHeader; payloads: Uint8Array[] } {
  const parser = new ModelStreamParser();
  const events = [...parser.push(bytes), ...parser.end()];
  const payloads: Uint8Array[] = [];
  let header: ModelHeader | undefined;
  for (const event of events) {
    if (event.type === 'header') header = event.header;
    if (event.type === 'record') payloads[event.index] = event.payload;
  }
  return { header: header!, payloads };
}

/** The plain QuantModel of a file: decodeModel(writeModel(m)) deep-equals m. */
export function decodeModel(bytes: Uint8Array): QuantModel {
  const { header, payloads } = readModel(bytes);
  const { architecture, preprocessing, labels, tensors } = header;
  const layers = header.layers.map((layer, index): QuantLayer => {
    if (layer.kind === 'affine') {
      const decoded = { ...layer, ...unpackAffine(layer, payloads[index]) };
      validateAffineParameters(decoded, header.records[index].payloadOffset, `record ${index}`);
      return decoded;
    }
    if (!hasParameters(layer)) return layer;
    const parameters = unpackWeights(layer, payloads[index], tensors[layer.input].zeroPoint);
    const decoded = { ...layer, ...parameters };
    validateLayerParameters(decoded, header.records[index].payloadOffset, `record ${index}`);
    return decoded;
  });
  return { architecture, preprocessing, labels, tensors, layers };
}
