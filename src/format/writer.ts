/** Writes a QuantModel as a model file (docs/FORMAT.md). */
import { ModelFormatError } from '../errors.ts';
import type { LayerHeader, NetworkHeader, QuantLayer, QuantModel } from '../model/types.ts';
import { validateAffineParameters, validateGraph, validateLayerParameters } from '../model/validate.ts';
import { crc32 } from './crc32.ts';
import {
  fileLayout,
  HEADER_BYTES,
  HEADER_CRC_OFFSET,
  hasParameters,
  KIND_CODES,
  LIMITS,
  MAGIC,
  MAJOR_VERSION,
  METADATA_OFFSET,
  MINOR_VERSION,
  packAffine,
  packWeights,
  payloadBytes,
  type RecordLayout,
  TRAILER_MAGIC,
} from './layout.ts';

export const DEFAULT_PRODUCER = 'resnet-wasm';

/** The whole file. Checks the model first and throws ModelFormatError rather than write a bad file. */
export function writeModel(model: QuantModel, producer = DEFAULT_PRODUCER): Uint8Array {
  const header = validateGraph(model);
  // Payload checks report the offsets the file will have.
  const layout = fileLayout(encodeMetadata(header, producer).length, header.layers.map(payloadBytes));
  const payloads = model.layers.map((layer, index) => recordPayload(model, layer, layout.records[index], index));
  return writePackedModel(header, payloads, producer);
}

/**
 * The whole file from a header and payloads already in the kernel layout (a loaded network's
 * records, a taught head's fc). Checks the graph and each payload's length.
 */
export function writePackedModel(
  network: NetworkHeader,
  payloads: readonly Uint8Array[],
  producer = DEFAULT_PRODUCER,
): Uint8Array {
  const header = { ...validateGraph(network), ...(network.head ? { head: network.head } : {}) };
  const metadata = encodeMetadata(header, producer);
  const layout = fileLayout(metadata.length, header.layers.map(payloadBytes));
  const file = new Uint8Array(layout.fileBytes);
  const view = new DataView(file.buffer);
  writeHeader(file, view, metadata, header.layers.length);
  header.layers.forEach((layer, index) => {
    const record = layout.records[index];
    if (payloads[index].length !== record.payloadBytes) {
      throw new ModelFormatError(
        `payload of ${payloads[index].length} bytes, expected ${record.payloadBytes}`,
        record.offset,
        { section: `record ${index}`, layer: layer.name },
      );
    }
    writeRecord(file, view, record, KIND_CODES[layer.kind], index, payloads[index]);
  });
  writeTrailer(file, view, layout.trailerOffset);
  return file;
}

function recordPayload(model: QuantModel, layer: QuantLayer, record: RecordLayout, index: number): Uint8Array {
  if (layer.kind === 'affine') {
    validateAffineParameters(layer, record.payloadOffset, `record ${index}`);
    return packAffine(layer);
  }
  if (!hasParameters(layer)) return new Uint8Array(0);
  validateLayerParameters(layer, record.payloadOffset, `record ${index}`);
  return packWeights(layer, model.tensors[layer.input].zeroPoint);
}

function encodeMetadata(header: NetworkHeader, producer: string): Uint8Array {
  const metadata = new TextEncoder().encode(JSON.stringify(metadataJson(header, producer)));
  if (metadata.length > LIMITS.maxMetadataBytes) {
    throw new ModelFormatError(
      `metadata takes ${metadata.length} bytes, more than the ${LIMITS.maxMetadataBytes} allowed`,
      METADATA_OFFSET,
      { section: 'metadata' },
    );
  }
  return metadata;
}

function metadataJson(header: NetworkHeader, producer: string) {
  return {
    architecture: header.architecture,
    producer,
    preprocessing: header.preprocessing,
    labels: header.labels,
    tensors: header.tensors,
    layers: header.layers.map(withShortMultipliers),
    ...(header.head ? { head: header.head } : {}),
  };
}

function withShortMultipliers(layer: LayerHeader): LayerHeader {
  switch (layer.kind) {
    case 'add':
      return { ...layer, multiplierA: shortestF32(layer.multiplierA), multiplierB: shortestF32(layer.multiplierB) };
    case 'gap':
      return { ...layer, multiplier: shortestF32(layer.multiplier) };
    default:
      return layer;
  }
}

/**
 * The number with the fewest significant digits that rounds to the same f32 as `x`, so that
 * JSON.stringify prints the shortest decimal that reads back to that f32 (FORMAT.md).
 */
export function shortestF32(x: number): number {
  const f = Math.fround(x);
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(f.toPrecision(digits));
    if (Math.fround(candidate) === f) return candidate;
  }
  return Number(f.toPrecision(9)); // 9 significant digits always identify an f32
}

function writeHeader(file: Uint8Array, view: DataView, metadata: Uint8Array, recordCount: number): void {
  file.set(MAGIC, 0);
  view.setUint16(8, MAJOR_VERSION, true);
  view.setUint16(10, MINOR_VERSION, true);
  view.setUint32(12, metadata.length, true);
  view.setUint32(16, recordCount, true);
  file.set(metadata, HEADER_BYTES);
  const crc = crc32(metadata, crc32(file.subarray(0, HEADER_CRC_OFFSET)));
  view.setUint32(HEADER_CRC_OFFSET, crc, true);
}

function writeRecord(
  file: Uint8Array,
  view: DataView,
  record: RecordLayout,
  kindCode: number,
  index: number,
  payload: Uint8Array,
): void {
  view.setUint32(record.offset, payload.length, true);
  view.setUint16(record.offset + 4, kindCode, true);
  view.setUint32(record.offset + 8, index, true);
  view.setUint32(record.offset + 12, crc32(payload), true);
  file.set(payload, record.payloadOffset);
}

function writeTrailer(file: Uint8Array, view: DataView, trailerOffset: number): void {
  file.set(TRAILER_MAGIC, trailerOffset);
  view.setUint32(trailerOffset + 4, file.length, true);
  view.setUint32(trailerOffset + 8, crc32(file.subarray(0, trailerOffset)), true);
}
