/**
 * The numbers of docs/FORMAT.md, and the conv/fc payload layout (the kernel layout):
 * folded bias int32[OCp], multiplier f32[OCp], then the weights in blocks of NR output channels
 * by CIN_BLOCK input channels.
 */
import type { LayerHeader, LayerKind, QuantLayer } from '../model/types.ts';

export const MAGIC: Uint8Array = Uint8Array.of(0x89, 0x52, 0x4e, 0x57, 0x0d, 0x0a, 0x1a, 0x0a);
export const TRAILER_MAGIC: Uint8Array = Uint8Array.of(0x52, 0x4e, 0x57, 0x45); // "RNWE"
export const MAJOR_VERSION = 1;
export const MINOR_VERSION = 0;

/** Every section starts at a multiple of this many bytes from the start of the file. */
export const ALIGNMENT = 16;
/** The fixed part of the header; the metadata JSON follows it. */
export const HEADER_BYTES = 24;
/** Bytes [0, HEADER_CRC_OFFSET) of the header, then the metadata, are covered by the header CRC. */
export const HEADER_CRC_OFFSET = 20;
export const METADATA_OFFSET = HEADER_BYTES;
export const RECORD_HEADER_BYTES = 16;
export const TRAILER_BYTES = 16;

export const KIND_CODES: Readonly<Record<LayerKind, number>> = {
  conv: 1,
  maxpool: 2,
  add: 3,
  gap: 4,
  fc: 5,
  avgpool: 6,
  affine: 7,
};

const MiB = 1024 * 1024;

export const LIMITS = {
  maxMetadataBytes: 16 * MiB,
  maxRecords: 4096,
  maxSpatial: 4096,
  maxChannels: 8192,
  maxKernel: 15,
  maxStride: 4,
  /** kh·kw·cin: keeps every int32 accumulator exact (docs/ARCHITECTURE.md). */
  maxReduction: 8192,
  maxParameterBytes: 512 * MiB,
  maxAbsWeight: 127,
  maxAbsBias: 2 ** 30,
} as const;

/** Output channels per micro-kernel block. */
export const NR = 4;
/** Input channels per weight group (one `v128.load8x8`). */
export const CIN_BLOCK = 8;

/** A layer whose record carries a payload. */
export type ParamLayerHeader = Extract<LayerHeader, { kind: 'conv' | 'fc' }>;
export type ParamQuantLayer = Extract<QuantLayer, { kind: 'conv' | 'fc' }>;
export type AffineLayerHeader = Extract<LayerHeader, { kind: 'affine' }>;
export type AffineQuantLayer = Extract<QuantLayer, { kind: 'affine' }>;

/** An affine payload's arrays hold whole vectors of this many channels, the kernel's step. */
export const AFFINE_BLOCK = 16;

export interface LayerParameters {
  /** [cout][kh][kw][cin] */
  weight: Int8Array;
  /** Integer bias, input zero point not folded in. */
  bias: Int32Array;
  multiplier: Float32Array;
}

export function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

export function hasParameters<L extends { kind: LayerKind }>(layer: L): layer is Extract<L, { kind: 'conv' | 'fc' }> {
  return layer.kind === 'conv' || layer.kind === 'fc';
}

/** The padded payload geometry of a conv or fc layer (fc is a 1×1 conv). */
export function payloadGeometry(layer: ParamLayerHeader) {
  const taps = layer.kind === 'conv' && !usesPatches(layer);
  const kh = taps ? layer.kh : 1;
  const kw = taps ? layer.kw : 1;
  const cin = layer.kind === 'conv' && usesPatches(layer) ? layer.kh * layer.kw * layer.cin : layer.cin;
  const cp = roundUp(cin, CIN_BLOCK);
  const ocp = roundUp(layer.cout, NR);
  return { kh, kw, cin, cout: layer.cout, cp, ocp, weightsOffset: 8 * ocp };
}

/**
 * A conv on fewer input channels than one weight group (the RGB stem) runs as a 1x1 conv over
 * patch rows of kh·kw·cin bytes, and its weights are packed as such (docs/FORMAT.md, "patch
 * layout"): otherwise most of each 8-channel step would multiply padding.
 */
export function usesPatches(layer: { kind: string; kh?: number; kw?: number; cin: number }): boolean {
  return layer.kind === 'conv' && layer.cin < CIN_BLOCK && (layer.kh ?? 1) * (layer.kw ?? 1) > 1;
}

export function payloadBytes(layer: LayerHeader): number {
  if (layer.kind === 'affine') return 8 * roundUp(layer.channels, AFFINE_BLOCK);
  if (!hasParameters(layer)) return 0;
  const g = payloadGeometry(layer);
  return g.weightsOffset + g.ocp * g.kh * g.kw * g.cp;
}

/**
 * Calls `visit(dst, src)` for every real weight: `dst` its byte offset in the payload,
 * `src` its index in the [cout][kh][kw][cin] array. Padding positions are never visited.
 */
function forEachWeight(layer: ParamLayerHeader, visit: (dst: number, src: number) => void): void {
  const { kh, kw, cin, cout, cp, weightsOffset } = payloadGeometry(layer);
  const blocks = cp / CIN_BLOCK;
  for (let o = 0; o < cout; o++) {
    const ob = Math.floor(o / NR);
    const j = o % NR;
    for (let ky = 0; ky < kh; ky++) {
      for (let kx = 0; kx < kw; kx++) {
        const tap = (ob * kh + ky) * kw + kx;
        const src = ((o * kh + ky) * kw + kx) * cin;
        for (let c = 0; c < cin; c++) {
          const cb = Math.floor(c / CIN_BLOCK);
          visit(weightsOffset + ((tap * blocks + cb) * NR + j) * CIN_BLOCK + (c % CIN_BLOCK), src + c);
        }
      }
    }
  }
}

/** The record payload of a conv or fc layer; expects parameters checked by validateLayerParameters. */
export function packWeights(layer: ParamQuantLayer, inputZeroPoint: number): Uint8Array {
  const { ocp, kh, kw, cin } = payloadGeometry(layer);
  const payload = new Uint8Array(payloadBytes(layer));
  const view = new DataView(payload.buffer);
  const perChannel = kh * kw * cin;
  for (let o = 0; o < layer.cout; o++) {
    const folded = layer.bias[o] - inputZeroPoint * sum(layer.weight, o * perChannel, perChannel);
    view.setInt32(4 * o, folded, true);
    view.setFloat32(4 * (ocp + o), layer.multiplier[o], true);
  }
  forEachWeight(layer, (dst, src) => {
    payload[dst] = layer.weight[src] & 0xff;
  });
  return payload;
}

/**
 * The exact inverse of packWeights. A bias that cannot have come from packWeights (its unfolded
 * value does not fit int32) wraps; validateLayerParameters then rejects it, since the wrapped value
 * exceeds the 2^30 bias bound.
 */
export function unpackWeights(layer: ParamLayerHeader, payload: Uint8Array, inputZeroPoint: number): LayerParameters {
  const { ocp, kh, kw, cin, cout } = payloadGeometry(layer);
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const weight = new Int8Array(cout * kh * kw * cin);
  forEachWeight(layer, (dst, src) => {
    weight[src] = (payload[dst] << 24) >> 24;
  });
  const bias = new Int32Array(cout);
  const multiplier = new Float32Array(cout);
  const perChannel = kh * kw * cin;
  for (let o = 0; o < cout; o++) {
    bias[o] = view.getInt32(4 * o, true) + inputZeroPoint * sum(weight, o * perChannel, perChannel);
    multiplier[o] = view.getFloat32(4 * (ocp + o), true);
  }
  return { weight, bias, multiplier };
}

/**
 * The record payload of an affine layer: multiplier f32[Cp], then offset f32[Cp], with
 * Cp = roundUp(channels, 16) and zeros for the padding channels.
 */
export function packAffine(layer: AffineQuantLayer): Uint8Array {
  const cp = roundUp(layer.channels, AFFINE_BLOCK);
  const payload = new Float32Array(2 * cp);
  payload.set(layer.multiplier, 0);
  payload.set(layer.offset, cp);
  return new Uint8Array(payload.buffer);
}

/** The exact inverse of packAffine. */
export function unpackAffine(
  layer: AffineLayerHeader,
  payload: Uint8Array,
): { multiplier: Float32Array; offset: Float32Array } {
  const cp = roundUp(layer.channels, AFFINE_BLOCK);
  const values = new Float32Array(payload.slice().buffer, 0, 2 * cp);
  return { multiplier: values.slice(0, layer.channels), offset: values.slice(cp, cp + layer.channels) };
}

/**
 * Offset in the payload of the first nonzero byte where the layout demands zero (padding channels'
 * bias, multiplier and weights), or -1. The kernels multiply whatever lies past a pixel's last
 * channel by these zero weights, so a nonzero one would make results depend on stray memory.
 */
export function findNonzeroPadding(layer: LayerHeader, payload: Uint8Array): number {
  for (const [from, to] of paddingRanges(layer)) {
    const found = firstNonzero(payload, from, to);
    if (found >= 0) return found;
  }
  return -1;
}

/** The [from, to) byte ranges of a payload that the layout fills with zeros. */
function* paddingRanges(layer: LayerHeader): Generator<[number, number]> {
  if (layer.kind === 'affine') {
    const cp = roundUp(layer.channels, AFFINE_BLOCK);
    yield [4 * layer.channels, 4 * cp];
    yield [4 * (cp + layer.channels), 8 * cp];
  } else if (hasParameters(layer)) {
    yield* weightPaddingRanges(layer);
  }
}

function* weightPaddingRanges(layer: ParamLayerHeader): Generator<[number, number]> {
  const { kh, kw, cin, cout, cp, ocp, weightsOffset } = payloadGeometry(layer);
  yield [4 * cout, 4 * ocp];
  yield [4 * (ocp + cout), weightsOffset];
  let group = weightsOffset;
  for (let ob = 0; ob < ocp / NR; ob++) {
    for (let tap = 0; tap < kh * kw; tap++) {
      for (let c0 = 0; c0 < cp; c0 += CIN_BLOCK) {
        for (let o = ob * NR; o < (ob + 1) * NR; o++, group += CIN_BLOCK) {
          const realChannels = o < cout ? Math.min(CIN_BLOCK, cin - c0) : 0;
          if (realChannels < CIN_BLOCK) yield [group + realChannels, group + CIN_BLOCK];
        }
      }
    }
  }
}

function firstNonzero(bytes: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return i;
  return -1;
}

function sum(values: Int8Array, start: number, count: number): number {
  let total = 0;
  for (let i = start; i < start + count; i++) total += values[i];
  return total;
}

export interface RecordLayout {
  /** File offset of the record header. */
  offset: number;
  payloadOffset: number;
  payloadBytes: number;
}

export interface FileLayout {
  records: RecordLayout[];
  trailerOffset: number;
  fileBytes: number;
}

/** Where every section lies, given the metadata length and each record's payload length. */
export function fileLayout(metadataBytes: number, payloadSizes: readonly number[]): FileLayout {
  let offset = roundUp(HEADER_BYTES + metadataBytes, ALIGNMENT);
  const records = payloadSizes.map((size) => {
    const record = { offset, payloadOffset: offset + RECORD_HEADER_BYTES, payloadBytes: size };
    offset = roundUp(record.payloadOffset + size, ALIGNMENT);
    return record;
  });
  return { records, trailerOffset: offset, fileBytes: offset + TRAILER_BYTES };
}
