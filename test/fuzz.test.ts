// Over 10,000 damaged model files through loadModel, from bytes and from streams of unknown
// length: each either loads (and then runs without a trap) or fails with ModelFormatError, within
// a time limit, and no load grows a wasm memory past the bound docs/FORMAT.md states.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mulberry32 } from '../src/builder/random.ts';
import { ModelFormatError } from '../src/errors.ts';
import { crc32 } from '../src/format/crc32.ts';
import { readModel } from '../src/format/reader.ts';
import { MAX_WASM_BYTES } from '../src/runtime/memory-plan.ts';
import { loadModel } from '../src/runtime/model.ts';
import { tinyModelFile } from './helpers/model-files.ts';

const BASE = tinyModelFile();
const { header } = readModel(BASE);
const RECORDS_START = header.records[0].offset;
const TRAILER_START = BASE.length - 16;
const METADATA = JSON.parse(new TextDecoder().decode(BASE.subarray(24, 24 + readU32(BASE, 12))));
/** A load that takes longer than this has hung (generous: a busy machine is slow, not hung). */
const HANG_MS = 30_000;
const random = mulberry32(20240605);

interface Case {
  name: string;
  bytes: Uint8Array;
  /**
   * Stream it with no length known in advance: in random chunks, or in two, split where the
   * records start (so that the header is checked on its own before any record arrives).
   */
  streamed?: boolean | 'header first';
}

const outcome = { cases: 0, loaded: 0, refused: 0, largestMemory: 0 };

/** Records the size of every wasm memory created: no load may ask for more than MAX_WASM_BYTES. */
const NativeMemory = WebAssembly.Memory;
WebAssembly.Memory = class extends NativeMemory {
  constructor(descriptor: WebAssembly.MemoryDescriptor) {
    const bytes = descriptor.initial * 65536;
    outcome.largestMemory = Math.max(outcome.largestMemory, bytes);
    if (bytes > MAX_WASM_BYTES) throw new Error(`a load asked for a wasm memory of ${bytes} bytes`);
    super(descriptor);
  }
};

async function check({ name, bytes, streamed }: Case): Promise<void> {
  outcome.cases++;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: no answer within ${HANG_MS} ms`)), HANG_MS);
  });
  try {
    const model = await Promise.race([loadModel(streamed ? streamOf(bytes, streamed) : bytes), hang]);
    outcome.loaded++;
    const t0 = model.header.tensors[0];
    if (model.footprint().wasmBytes < 16 << 20) model.run(new Uint8Array(t0.h * t0.w * t0.c).fill(128));
    model.dispose();
  } catch (error) {
    if (!(error instanceof ModelFormatError)) {
      throw new assert.Assertion({
        message: `${name}: ${error instanceof Error ? error.stack : String(error)}`,
        operator: 'instance',
        expects: 'ModelFormatError',
        actual: error,
      });
    }
    outcome.refused++;
  } finally {
    clearTimeout(timer);
  }
}

async function* streamOf(bytes: Uint8Array, how: true | 'header first'): AsyncGenerator<Uint8Array> {
  if (how === 'header first') {
    const recordsStart = Math.ceil((24 + readU32(bytes, 12)) / 16) * 16;
    yield bytes.subarray(0, recordsStart);
    yield bytes.subarray(recordsStart);
    return;
  }
  for (let pos = 0; pos < bytes.length; ) {
    const size = 1 + Math.floor(random() * random() * 2000);
    yield bytes.subarray(pos, pos + size);
    pos += size;
  }
}

// ---- building damaged files ----

function readU32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(offset, true);
}

function withU32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(offset, value >>> 0, true);
  return copy;
}

function randomInt(n: number): number {
  return Math.floor(random() * n);
}

function pick<T>(items: readonly T[]): T {
  return items[randomInt(items.length)];
}

/**
 * A file with valid header and trailer CRCs around the given metadata and record section, so that
 * the damage inside reaches the checks past the CRCs.
 */
function sealed({
  metadata = METADATA as unknown,
  recordCount = header.layers.length,
  records = BASE.subarray(RECORDS_START, TRAILER_START),
} = {}): Uint8Array {
  const json = new TextEncoder().encode(typeof metadata === 'string' ? metadata : JSON.stringify(metadata));
  const recordsStart = Math.ceil((24 + json.length) / 16) * 16;
  const file = new Uint8Array(recordsStart + records.length + 16);
  const view = new DataView(file.buffer);
  file.set(BASE.subarray(0, 12));
  view.setUint32(12, json.length, true);
  view.setUint32(16, recordCount >>> 0, true);
  file.set(json, 24);
  view.setUint32(20, crc32(json, crc32(file.subarray(0, 20))), true);
  file.set(records, recordsStart);
  return withTrailer(file);
}

/** Rewrites the trailer's length and whole-file CRC for the bytes before it. */
function withTrailer(file: Uint8Array): Uint8Array {
  const end = file.length - 16;
  file.set([0x52, 0x4e, 0x57, 0x45], end);
  const view = new DataView(file.buffer, file.byteOffset);
  view.setUint32(end + 4, file.length, true);
  view.setUint32(end + 8, crc32(file.subarray(0, end)), true);
  return file;
}

/** Recomputes every record CRC and the trailer, as a careful forger would. */
function withRecordCrcs(file: Uint8Array): Uint8Array {
  for (const record of header.records) {
    const payload = file.subarray(record.payloadOffset, record.payloadOffset + record.payloadBytes);
    new DataView(file.buffer, file.byteOffset).setUint32(record.offset + 12, crc32(payload), true);
  }
  return withTrailer(file);
}

const HOSTILE_VALUES: unknown[] = [
  0,
  -1,
  1,
  2,
  3,
  1.5,
  7,
  8,
  15,
  16,
  255,
  256,
  4095,
  4096,
  4097,
  8192,
  8193,
  65535,
  1e9,
  2 ** 31,
  2 ** 32 + 1,
  2 ** 53,
  -(2 ** 31),
  1e308,
  null,
  true,
  '8',
  [],
  {},
  [8],
];

/** Every [path, value] of the metadata's leaves under tensors, layers and preprocessing. */
function leaves(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== 'object' || value === null) return [path];
  return Object.entries(value).flatMap(([key, child]) =>
    leaves(child, [...path, Array.isArray(value) ? Number(key) : key]),
  );
}

const FIELDS = leaves({ tensors: METADATA.tensors, layers: METADATA.layers, preprocessing: METADATA.preprocessing });

function setPath(target: Record<string | number, unknown>, path: (string | number)[], value: unknown): void {
  const parent = path
    .slice(0, -1)
    .reduce<Record<string | number, unknown>>((node, key) => node[key] as Record<string | number, unknown>, target);
  parent[path[path.length - 1]] = value;
}

function metadataCopy(): {
  tensors: Record<string, unknown>[];
  layers: Record<string, unknown>[];
  labels: string[];
  preprocessing: Record<string, unknown>;
} {
  return structuredClone(METADATA);
}

/** The graph scaled to `size`×`size` input, every shape recomputed: a consistent, huge model. */
function scaledMetadata(size: number, channels: number) {
  const m = metadataCopy();
  m.preprocessing.resize = size;
  m.preprocessing.crop = size;
  m.tensors[0] = { ...m.tensors[0], h: size, w: size };
  for (const layer of m.layers) {
    const x = m.tensors[layer.input as number] ?? m.tensors[(layer.inputs as number[])[0]];
    const k = (layer.kh ?? layer.k ?? 1) as number;
    const stride = (layer.stride ?? 1) as number;
    const pad = (layer.pad ?? 0) as number;
    const spatial = (n: number) =>
      layer.kind === 'gap' || layer.kind === 'fc'
        ? 1
        : layer.kind === 'add'
          ? n
          : Math.floor((n + 2 * pad - k) / stride) + 1;
    if (layer.kind === 'conv' && layer.name !== 'conv1') layer.cin = channels;
    if (layer.kind === 'conv' && layer.name !== 'down') layer.cout = channels;
    if (layer.kind === 'fc') layer.cin = (layer.cin as number) === 16 ? 16 : channels;
    const c = layer.kind === 'conv' || layer.kind === 'fc' ? (layer.cout as number) : (x.c as number);
    m.tensors[layer.output as number] = {
      ...m.tensors[layer.output as number],
      h: spatial(x.h as number),
      w: spatial(x.w as number),
      c,
    };
  }
  return m;
}

// ---- the cases ----

/** 1 to `maxFlips` distinct bits flipped. */
function* bitFlips(count: number, maxFlips: number): Generator<Case> {
  for (let i = 0; i < count; i++) {
    const bytes = BASE.slice();
    const bits = new Set(Array.from({ length: 1 + randomInt(maxFlips) }, () => randomInt(8 * bytes.length)));
    for (const bit of bits) bytes[bit >> 3] ^= 1 << (bit & 7);
    yield { name: `bit flips #${i}`, bytes, streamed: i % 8 === 0 };
  }
}

/** Every section boundary, and 3 bytes either side of it, from bytes and from a stream. */
function* truncations(): Generator<Case> {
  const boundaries = [0, 8, 12, 16, 20, 24, RECORDS_START, TRAILER_START, BASE.length];
  for (const r of header.records) boundaries.push(r.offset, r.payloadOffset, r.payloadOffset + r.payloadBytes);
  for (const boundary of boundaries) {
    for (let delta = -3; delta <= 3; delta++) {
      const at = boundary + delta;
      if (at < 0 || at >= BASE.length) continue;
      for (const streamed of [false, true]) yield { name: `truncated at ${at}`, bytes: BASE.subarray(0, at), streamed };
    }
  }
}

/** Record payload lengths, the metadata length and the record count set to wrong values. */
function* wrongLengthsAndCounts(): Generator<Case> {
  for (const [i, r] of header.records.entries()) {
    const L = r.payloadBytes;
    for (const value of [L + 1, L + 16, 2 * L + 16, L - 16, 0, 2 ** 31 - 1, 2 ** 32 - 1]) {
      if (value === L || value < 0) continue;
      const bytes = withU32(BASE, r.offset, value);
      yield { name: `record ${i} length ${value}`, bytes };
      yield { name: `record ${i} length ${value}, CRCs fixed`, bytes: withTrailer(bytes), streamed: true };
    }
  }
  const M = readU32(BASE, 12);
  for (const value of [0, 1, M - 1, M + 1, M + 16, 16 << 20, (16 << 20) + 1, 2 ** 32 - 1]) {
    yield { name: `metadata length ${value}`, bytes: withU32(BASE, 12, value) };
    yield { name: `metadata length ${value}, streamed`, bytes: withU32(BASE, 12, value), streamed: true };
  }
  const R = header.layers.length;
  for (const recordCount of [0, 1, R - 1, R + 1, 4096, 4097, 2 ** 32 - 1]) {
    yield { name: `record count ${recordCount}, CRC fixed`, bytes: sealed({ recordCount }) };
  }
}

/** One metadata field (shape, geometry, tensor index, quantization) set to a hostile value. */
function* metadataValues(count: number): Generator<Case> {
  for (let i = 0; i < count; i++) {
    const m = metadataCopy();
    const path = pick(FIELDS);
    const value = pick(HOSTILE_VALUES);
    setPath(m as unknown as Record<string, unknown>, path, value);
    yield {
      name: `metadata ${path.join('.')} = ${JSON.stringify(value)}`,
      bytes: sealed({ metadata: m }),
      streamed: i % 4 === 0,
    };
  }
}

/** Layers and tensors dropped, duplicated, swapped; labels and counts that disagree; not JSON. */
function* metadataStructure(count: number): Generator<Case> {
  const edits: [string, (m: ReturnType<typeof metadataCopy>) => unknown][] = [
    ['drop a layer', (m) => m.layers.splice(randomInt(m.layers.length), 1)],
    ['duplicate a layer', (m) => m.layers.splice(randomInt(m.layers.length), 0, structuredClone(pick(m.layers)))],
    [
      'swap two layers',
      (m) => {
        const [a, b] = [randomInt(m.layers.length), randomInt(m.layers.length)];
        [m.layers[a], m.layers[b]] = [m.layers[b], m.layers[a]];
      },
    ],
    ['drop a tensor', (m) => m.tensors.splice(randomInt(m.tensors.length), 1)],
    ['add a tensor', (m) => m.tensors.push(structuredClone(pick(m.tensors)))],
    ['drop a label', (m) => m.labels.pop()],
    ['100,000 labels', (m) => (m.labels = Array.from({ length: 100_000 }, String))],
    ['change a layer kind', (m) => (pick(m.layers).kind = pick(['conv', 'maxpool', 'add', 'gap', 'fc', 'relu', 7]))],
    [
      'delete a field',
      (m) => {
        const layer = pick(m.layers);
        delete layer[pick(Object.keys(layer))];
      },
    ],
  ];
  for (let i = 0; i < count; i++) {
    const [name, edit] = pick(edits);
    const m = metadataCopy();
    edit(m);
    yield { name: `metadata: ${name} #${i}`, bytes: sealed({ metadata: m }), streamed: i % 4 === 0 };
  }
  for (const text of [
    '',
    '{',
    'null',
    '[]',
    '"resnet"',
    '{"layers": 5}',
    '\u00ff\u00fe',
    JSON.stringify(METADATA).replace('"conv"', '"conv\\u0000"'),
  ]) {
    yield {
      name: `metadata text ${JSON.stringify(text.slice(0, 20))}`,
      bytes: sealed({ metadata: text.length === 0 ? ' ' : text }),
    };
  }
}

/** Consistent graphs far larger than the records: huge inputs and channel counts. */
function* hugeModels(): Generator<Case> {
  for (const size of [64, 1024, 4096]) {
    for (const channels of [8, 64, 512, 900, 2048]) {
      const bytes = sealed({ metadata: scaledMetadata(size, channels) });
      for (const streamed of [false, true, 'header first'] as const)
        yield { name: `scaled to ${size}x${size}, ${channels} channels`, bytes, streamed };
    }
  }
}

/** Payload bytes changed with every CRC recomputed: loads (weights are any bytes) or hits a padding check. */
function* forgedPayloads(count: number): Generator<Case> {
  const withPayload = header.records.filter((r) => r.payloadBytes > 0);
  for (let i = 0; i < count; i++) {
    const bytes = BASE.slice();
    const r = pick(withPayload);
    for (let n = 1 + randomInt(4); n > 0; n--) bytes[r.payloadOffset + randomInt(r.payloadBytes)] = randomInt(256);
    yield { name: `forged payload #${i}`, bytes: withRecordCrcs(bytes), streamed: i % 4 === 0 };
  }
}

/** Random spans overwritten, deleted or duplicated. */
function* splices(count: number): Generator<Case> {
  for (let i = 0; i < count; i++) {
    const at = randomInt(BASE.length);
    const span = 1 + randomInt(64);
    const kind = randomInt(3);
    const bytes =
      kind === 0
        ? BASE.slice().fill(randomInt(256), at, at + span)
        : kind === 1
          ? concat(BASE.subarray(0, at), BASE.subarray(at + span))
          : concat(BASE.subarray(0, at + span), BASE.subarray(at));
    yield { name: `splice ${kind} at ${at}+${span}`, bytes, streamed: i % 4 === 0 };
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

test('the undamaged file loads, and the sealing helper reproduces it byte for byte', async () => {
  assert.equal(sealed(), BASE);
  assert.equal(withRecordCrcs(BASE.slice()), BASE);
  await check({ name: 'intact', bytes: BASE });
  await check({ name: 'intact, streamed', bytes: BASE, streamed: true });
  assert.is(outcome.loaded, 2);
});

test('10,000+ damaged files: ModelFormatError or a working model; no trap, hang or oversized memory', async () => {
  const start = performance.now();
  const families = [
    bitFlips(5000, 3),
    truncations(),
    wrongLengthsAndCounts(),
    metadataValues(3000),
    metadataStructure(1000),
    hugeModels(),
    forgedPayloads(800),
    splices(800),
  ];
  for (const family of families) for (const c of family) await check(c);
  assert.ok(outcome.cases >= 10_000, `only ${outcome.cases} cases`);
  assert.ok(outcome.loaded > 0 && outcome.refused > 9000, JSON.stringify(outcome));
  assert.ok(
    outcome.largestMemory > 200e6 && outcome.largestMemory <= MAX_WASM_BYTES,
    `largest wasm memory ${outcome.largestMemory}`,
  );
  console.log(`fuzz: ${outcome.cases} cases in ${((performance.now() - start) / 1000).toFixed(1)} s`);
});

test('a header that needs more wasm memory than the bound is refused before anything is allocated', async () => {
  const before = outcome.largestMemory;
  outcome.largestMemory = 0;
  try {
    await loadModel(streamOf(sealed({ metadata: scaledMetadata(4096, 512) }), 'header first'));
    assert.unreachable('a 4096x4096x512 model loaded');
  } catch (error) {
    assert.instance(error, ModelFormatError);
    assert.match(String(error), /needs \d+ bytes of wasm memory, more than the 2147483648 allowed/);
  }
  assert.is(outcome.largestMemory, 0, 'no wasm memory may be created');
  outcome.largestMemory = before;
});

test('every single bit flip is caught: all bytes are covered by a CRC or a check', async () => {
  const before = outcome.loaded;
  for (const c of bitFlips(500, 1)) await check(c);
  assert.is(outcome.loaded, before);
});

test.after(() => {
  WebAssembly.Memory = NativeMemory;
});

test.run();
