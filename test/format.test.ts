// The model file format (docs/FORMAT.md): CRC-32, the kernel payload layout, write → read
// roundtrips, streaming in arbitrary chunks, and every way a file can be broken.

import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ModelFormatError } from '../src/errors.ts';
import { crc32, crc32Combine } from '../src/format/crc32.ts';
import {
  findNonzeroPadding,
  type ParamQuantLayer,
  packWeights,
  payloadBytes,
  unpackWeights,
} from '../src/format/layout.ts';
import { decodeModel, type ModelEvent, ModelStreamParser, readModel } from '../src/format/reader.ts';
import { shortestF32, writeModel } from '../src/format/writer.ts';
import { outSize, type QuantLayer, type QuantModel, type QuantTensor, type Shape } from '../src/model/types.ts';
import { validateGraph } from '../src/model/validate.ts';
import {
  mulberry32,
  pick,
  type Rng,
  randInt,
  randomFloat32Array,
  randomInt8Array,
  randomInt32Array,
  randomUint8Array,
} from './helpers/random.ts';

// ---------------------------------------------------------------------------------------------
// Random models

function convLayer(
  rng: Rng,
  name: string,
  input: number,
  output: number,
  g: { kh: number; kw: number; stride: number; pad: number; cin: number; cout: number; relu: boolean },
): QuantLayer {
  const n = g.cout * g.kh * g.kw * g.cin;
  return { kind: 'conv', name, input, output, ...g, ...parameters(rng, g.cout, n) };
}

function parameters(rng: Rng, cout: number, weights: number) {
  return {
    weight: randomInt8Array(rng, weights),
    bias: randomInt32Array(rng, cout, -(2 ** 20), 2 ** 20),
    multiplier: randomFloat32Array(rng, cout, 1e-4, 0.1),
  };
}

/**
 * A small ResNet: a stem conv (non-square kernel), maxpool, one identity block, one downsampling
 * block with a 1×1 shortcut, global average pool, fc. Channel counts are random and mostly not
 * multiples of 4 or 8.
 */
function randomModel(seed: number): QuantModel {
  const rng = mulberry32(seed);
  const crop = randInt(rng, 9, 14);
  const c1 = randInt(rng, 1, 13);
  const c2 = randInt(rng, 1, 11);
  const classes = randInt(rng, 2, 9);
  const tensors: QuantTensor[] = [];
  const tensor = (shape: Shape, quant = { scale: 0.001 + rng() * 0.1, zeroPoint: randInt(rng, 0, 255) }) =>
    tensors.push({ ...shape, ...quant }) - 1;
  const x = tensor({ h: crop, w: crop, c: 3 });
  const conv = (
    name: string,
    input: number,
    k: [number, number],
    stride: number,
    pad: number,
    cout: number,
    relu: boolean,
  ) => {
    const t = tensors[input];
    const output = tensor({ h: outSize(t.h, k[0], stride, pad), w: outSize(t.w, k[1], stride, pad), c: cout });
    layers.push(convLayer(rng, name, input, output, { kh: k[0], kw: k[1], stride, pad, cin: t.c, cout, relu }));
    return output;
  };
  const add = (name: string, a: number, b: number) => {
    const output = tensor(tensors[a]);
    layers.push({
      kind: 'add',
      name,
      inputs: [a, b],
      output,
      relu: true,
      multiplierA: Math.fround(rng() * 2),
      multiplierB: Math.fround(0.73),
    });
    return output;
  };
  const layers: QuantLayer[] = [];
  const stem = conv('conv1', x, [3, 5], 2, 1, c1, true);
  const s = tensors[stem];
  const pooled = tensor(
    { h: outSize(s.h, 3, 2, 1), w: outSize(s.w, 3, 2, 1), c: c1 },
    { scale: s.scale, zeroPoint: s.zeroPoint },
  );
  layers.push({ kind: 'maxpool', name: 'maxpool', input: stem, output: pooled, k: 3, stride: 2, pad: 1 });
  const a1 = conv('layer1.0.conv1', pooled, [3, 3], 1, 1, c1, true);
  const a2 = conv('layer1.0.conv2', a1, [3, 3], 1, 1, c1, false);
  const block1 = add('layer1.0.add', pooled, a2);
  const b1 = conv('layer2.0.conv1', block1, [3, 3], 2, 1, c2, true);
  const b2 = conv('layer2.0.conv2', b1, [3, 3], 1, 1, c2, false);
  const shortcut = conv('layer2.0.downsample', block1, [1, 1], 2, 0, c2, false);
  const block2 = add('layer2.0.add', b2, shortcut);
  const gap = tensor({ h: 1, w: 1, c: c2 });
  layers.push({ kind: 'gap', name: 'avgpool', input: block2, output: gap, multiplier: Math.fround(rng()) });
  const logits = tensor({ h: 1, w: 1, c: classes }, { scale: 1, zeroPoint: 0 });
  layers.push({
    kind: 'fc',
    name: 'fc',
    input: gap,
    output: logits,
    cin: c2,
    cout: classes,
    ...parameters(rng, classes, classes * c2),
  });
  return {
    architecture: 'tiny-resnet',
    preprocessing: {
      resize: crop + 3,
      crop,
      colorOrder: pick(rng, ['RGB', 'BGR'] as const),
      pixelScale: 1 / 255,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    },
    labels: Array.from({ length: classes }, (_, i) => `class ${i} “ü”`),
    tensors,
    layers,
  };
}

const MODEL = randomModel(1);
const FILE = writeModel(MODEL, 'format.test');
const HEADER = readModel(FILE).header;

// ---------------------------------------------------------------------------------------------
// Byte surgery on files

const u32 = (file: Uint8Array, offset: number) => new DataView(file.buffer, file.byteOffset).getUint32(offset, true);
const setU32 = (file: Uint8Array, offset: number, value: number) =>
  new DataView(file.buffer, file.byteOffset).setUint32(offset, value, true);
const setU16 = (file: Uint8Array, offset: number, value: number) =>
  new DataView(file.buffer, file.byteOffset).setUint16(offset, value, true);
const roundUp16 = (n: number) => Math.ceil(n / 16) * 16;

/** Recomputes the header CRC and the trailer (length and whole-file CRC) after an edit. */
function reseal(file: Uint8Array): Uint8Array {
  const metadataBytes = u32(file, 12);
  setU32(file, 20, zlib.crc32(file.subarray(24, 24 + metadataBytes), zlib.crc32(file.subarray(0, 20))));
  const trailer = file.length - 16;
  setU32(file, trailer + 4, file.length);
  setU32(file, trailer + 8, zlib.crc32(file.subarray(0, trailer)));
  return file;
}

/** The file with its metadata replaced (a JSON value, or raw text); records are position-free. */
function withMetadata(file: Uint8Array, metadata: unknown): Uint8Array {
  const text = new TextEncoder().encode(typeof metadata === 'string' ? metadata : JSON.stringify(metadata));
  const recordsStart = roundUp16(24 + u32(file, 12));
  const start = roundUp16(24 + text.length);
  const result = new Uint8Array(start + file.length - recordsStart);
  result.set(file.subarray(0, 24));
  setU32(result, 12, text.length);
  result.set(text, 24);
  result.set(file.subarray(recordsStart), start);
  return reseal(result);
}

function metadataOf(file: Uint8Array): any {
  return JSON.parse(new TextDecoder().decode(file.subarray(24, 24 + u32(file, 12))));
}

/** The file with its metadata JSON edited by `edit`. */
function editMetadata(edit: (metadata: any) => void): Uint8Array {
  const metadata = metadataOf(FILE);
  edit(metadata);
  return withMetadata(FILE, metadata);
}

function throwsFormatError(run: () => unknown, expected: { offset?: number; layer?: string; message?: RegExp }) {
  try {
    run();
  } catch (error) {
    if (!(error instanceof ModelFormatError)) throw error;
    if (expected.offset !== undefined) assert.is(error.offset, expected.offset, error.message);
    if ('layer' in expected) assert.is(error.layer, expected.layer, error.message);
    if (expected.message) assert.match(error.message, expected.message);
    return error;
  }
  assert.unreachable(`no ModelFormatError thrown (expected ${expected.message ?? 'one'})`);
}

/** Events of the parser fed `file` in chunks of the sizes `nextSize` gives. */
function parseInChunks(file: Uint8Array, nextSize: () => number): ModelEvent[] {
  const parser = new ModelStreamParser();
  const events: ModelEvent[] = [];
  for (let pos = 0; pos < file.length; ) {
    const end = Math.min(file.length, pos + Math.max(1, nextSize()));
    events.push(...parser.push(file.slice(pos, end)));
    pos = end;
  }
  return [...events, ...parser.end()];
}

// ---------------------------------------------------------------------------------------------
// CRC-32

test('crc32 matches the known check values', () => {
  const ascii = (s: string) => new TextEncoder().encode(s);
  assert.is(crc32(ascii('123456789')), 0xcbf43926);
  assert.is(crc32(new Uint8Array(0)), 0);
  assert.is(crc32(ascii('a')), 0xe8b7be43);
  assert.is(crc32(ascii('The quick brown fox jumps over the lazy dog')), 0x414fa339);
});

test('crc32 equals zlib, whole and continued across any split; crc32Combine joins two CRCs', () => {
  const rng = mulberry32(7);
  for (let round = 0; round < 200; round++) {
    const bytes = randomUint8Array(rng, randInt(rng, 0, 300));
    const split = randInt(rng, 0, bytes.length);
    const [a, b] = [bytes.subarray(0, split), bytes.subarray(split)];
    assert.is(crc32(bytes), zlib.crc32(bytes));
    assert.is(crc32(b, crc32(a)), zlib.crc32(bytes));
    assert.is(crc32Combine(crc32(a), crc32(b), b.length), zlib.crc32(bytes));
  }
  const big = randomUint8Array(rng, 1 << 20);
  assert.is(crc32(big), zlib.crc32(big));
  assert.is(crc32Combine(crc32(big), crc32(big), big.length), zlib.crc32(Buffer.concat([big, big])));
});

// ---------------------------------------------------------------------------------------------
// Payload layout

function randomParamLayer(rng: Rng, cin: number, cout: number, fc: boolean): ParamQuantLayer {
  if (fc) return { kind: 'fc', name: 'fc', input: 0, output: 1, cin, cout, ...parameters(rng, cout, cout * cin) };
  const [kh, kw] = [randInt(rng, 1, 5), randInt(rng, 1, 5)];
  const g = { kh, kw, stride: 1, pad: 0, cin, cout, relu: false };
  return convLayer(rng, 'conv', 0, 1, g) as ParamQuantLayer;
}

/** The payload exactly as FORMAT.md lists it, built in file order. */
function specPayload(layer: ParamQuantLayer, zx: number): Uint8Array {
  // Patch layout: a conv on fewer than 8 input channels is packed as a 1x1 conv over kh·kw·cin.
  const patch = layer.kind === 'conv' && layer.cin < 8 && layer.kh * layer.kw > 1;
  const [kh, kw] = layer.kind === 'conv' && !patch ? [layer.kh, layer.kw] : [1, 1];
  const cin = patch && layer.kind === 'conv' ? layer.kh * layer.kw * layer.cin : layer.cin;
  const { cout } = layer;
  const ocp = Math.ceil(cout / 4) * 4;
  const cp = Math.ceil(cin / 8) * 8;
  const w = (o: number, ky: number, kx: number, i: number) => layer.weight[((o * kh + ky) * kw + kx) * cin + i];
  const bytes: number[] = [];
  const int32 = (v: number) => bytes.push(...new Uint8Array(Int32Array.of(v).buffer));
  const float32 = (v: number) => bytes.push(...new Uint8Array(Float32Array.of(v).buffer));
  for (let o = 0; o < ocp; o++) {
    let sum = 0;
    for (let t = 0; o < cout && t < kh * kw * cin; t++) sum += layer.weight[o * kh * kw * cin + t];
    int32(o < cout ? layer.bias[o] - zx * sum : 0);
  }
  for (let o = 0; o < ocp; o++) float32(o < cout ? layer.multiplier[o] : 0);
  for (let ob = 0; ob < ocp / 4; ob++)
    for (let ky = 0; ky < kh; ky++)
      for (let kx = 0; kx < kw; kx++)
        for (let cb = 0; cb < cp / 8; cb++)
          for (let j = 0; j < 4; j++)
            for (let i = 0; i < 8; i++) {
              const [o, c] = [4 * ob + j, 8 * cb + i];
              bytes.push(o < cout && c < cin ? w(o, ky, kx, c) & 0xff : 0);
            }
  return Uint8Array.from(bytes);
}

const channelCounts = [1, 3, 4, 5, 7, 8, 9, 13, 16, 17, 24, 31];

test('packWeights lays out bias, multiplier and weights exactly as FORMAT.md lists them', () => {
  const rng = mulberry32(11);
  for (let round = 0; round < 60; round++) {
    const layer = randomParamLayer(rng, pick(rng, channelCounts), pick(rng, channelCounts), round % 4 === 0);
    const zx = randInt(rng, 0, 255);
    const payload = packWeights(layer, zx);
    assert.is(payload.length, payloadBytes(layer));
    assert.equal(payload, specPayload(layer, zx), `${layer.kind} cin=${layer.cin} cout=${layer.cout}`);
  }
});

test('unpackWeights inverts packWeights (conv and fc, cin=3, odd cin, cout not a multiple of 4)', () => {
  const rng = mulberry32(12);
  for (let round = 0; round < 60; round++) {
    const layer = randomParamLayer(rng, pick(rng, channelCounts), pick(rng, channelCounts), round % 3 === 0);
    const zx = randInt(rng, 0, 255);
    const unpacked = unpackWeights(layer, packWeights(layer, zx), zx);
    assert.equal(unpacked, { weight: layer.weight, bias: layer.bias, multiplier: layer.multiplier });
  }
});

test('findNonzeroPadding finds any nonzero padding byte and nothing else', () => {
  const rng = mulberry32(13);
  const layer = randomParamLayer(rng, 3, 5, false);
  const payload = packWeights(layer, 7);
  assert.is(findNonzeroPadding(layer, payload), -1);
  const realWeights = specPayload(
    { ...layer, weight: layer.weight.map(() => 1), bias: layer.bias.fill(0), multiplier: layer.multiplier.fill(0) },
    0,
  );
  const ocp = Math.ceil(layer.cout / 4) * 4;
  const isReal = (i: number) =>
    i < 4 * layer.cout || (i >= 4 * ocp && i < 4 * (ocp + layer.cout)) || realWeights[i] === 1;
  const padding = payload.map((_, i) => (isReal(i) ? 0 : 1));
  let paddingBytes = 0;
  for (let i = 0; i < payload.length; i++) {
    const damaged = payload.slice();
    damaged[i] ^= 0x40;
    assert.is(findNonzeroPadding(layer, damaged), padding[i] ? i : -1, `byte ${i}`);
    paddingBytes += padding[i];
  }
  assert.ok(paddingBytes > 0);
});

// ---------------------------------------------------------------------------------------------
// Writing and reading

test('decodeModel(writeModel(m)) equals m', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const model = randomModel(seed);
    assert.equal(decodeModel(writeModel(model)), model, `seed ${seed}`);
  }
});

test('the file has the documented layout: header, aligned records, trailer', () => {
  assert.equal([...FILE.subarray(0, 8)], [0x89, 0x52, 0x4e, 0x57, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.is(u32(FILE, 16), MODEL.layers.length);
  assert.is(HEADER.fileBytes, FILE.length);
  assert.is(HEADER.producer, 'format.test');
  assert.is(HEADER.minorVersion, 0);
  const kinds = { conv: 1, maxpool: 2, add: 3, gap: 4, fc: 5, avgpool: 6, affine: 7 };
  HEADER.records.forEach((record, i) => {
    assert.is(record.offset % 16, 0);
    assert.is(record.payloadOffset, record.offset + 16);
    assert.is(u32(FILE, record.offset), record.payloadBytes);
    assert.is(FILE[record.offset + 4], kinds[MODEL.layers[i].kind]);
    assert.is(u32(FILE, record.offset + 8), i);
  });
  const trailer = FILE.length - 16;
  assert.is(new TextDecoder().decode(FILE.subarray(trailer, trailer + 4)), 'RNWE');
  assert.is(u32(FILE, trailer + 8), zlib.crc32(FILE.subarray(0, trailer)));
});

test('multipliers are written as the shortest decimal that reads back to the same f32', () => {
  assert.is(shortestF32(Math.fround(0.73)), 0.73);
  assert.is(shortestF32(Math.fround(0.1)), 0.1);
  assert.is(shortestF32(0), 0);
  const rng = mulberry32(14);
  for (let i = 0; i < 1000; i++) {
    const f = Math.fround(rng() * 10 ** randInt(rng, -30, 30));
    const short = shortestF32(f);
    assert.is(Math.fround(short), f);
    const digits = short.toExponential().replace(/e.*$/, '').replace(/\D/g, '').length;
    if (digits > 1) assert.is.not(Math.fround(Number(short.toPrecision(digits - 1))), f);
  }
  const text = new TextDecoder().decode(FILE.subarray(24, 24 + u32(FILE, 12)));
  assert.match(text, /"multiplierB":0.73[,}]/);
});

test('readModel gives payloads as views of the file, without copying', () => {
  const { payloads } = readModel(FILE);
  const nonempty = HEADER.records.filter((record) => record.payloadBytes > 0);
  assert.ok(nonempty.length > 0);
  HEADER.records.forEach((record, i) => {
    if (record.payloadBytes === 0) return;
    assert.is(payloads[i].buffer, FILE.buffer);
    assert.is(payloads[i].byteOffset, record.payloadOffset);
  });
});

test('the stream parser gives the same events for chunks of 1 byte, 7 bytes, random sizes', () => {
  const whole = parseInChunks(FILE, () => FILE.length);
  assert.equal(
    whole.map((e) => e.type),
    ['header', ...MODEL.layers.map(() => 'record'), 'end'],
  );
  const rng = mulberry32(15);
  for (const nextSize of [() => 1, () => 7, () => randInt(rng, 1, 100), () => randInt(rng, 1, 2000)]) {
    assert.equal(parseInChunks(FILE, nextSize), whole);
  }
});

test('the stream parser reports the header before any record arrives', () => {
  const parser = new ModelStreamParser();
  const firstRecord = HEADER.records[0].offset;
  const events = parser.push(FILE.subarray(0, firstRecord));
  assert.equal(events, [{ type: 'header', header: HEADER }]);
});

// ---------------------------------------------------------------------------------------------
// Broken files

test('wrong magic', () => {
  const file = FILE.slice();
  file[3] = 0x4f;
  throwsFormatError(() => readModel(file), { offset: 0, message: /magic/ });
});

test('wrong major version', () => {
  const file = FILE.slice();
  setU16(file, 8, 2);
  throwsFormatError(() => readModel(reseal(file)), { offset: 8, message: /major version 2/ });
});

test('a higher minor version is accepted', () => {
  const file = FILE.slice();
  setU16(file, 10, 3);
  const { header } = readModel(reseal(file));
  assert.is(header.minorVersion, 3);
});

test('unknown metadata fields are ignored', () => {
  const file = editMetadata((m) => {
    m.future = { anything: [1, 2] };
    m.layers[0].futureField = 'x';
  });
  assert.equal(decodeModel(file), MODEL);
});

test('truncation at every record boundary', () => {
  const boundaries = [...HEADER.records.map((r) => r.offset), FILE.length - 16];
  for (const at of boundaries) {
    throwsFormatError(() => readModel(FILE.subarray(0, at)), { offset: at, message: /truncated/ });
  }
});

test('truncation inside the header, the metadata, records and the trailer', () => {
  const conv = HEADER.records[2];
  const points = [
    0,
    1,
    10,
    23,
    30,
    24 + u32(FILE, 12) - 1,
    conv.offset + 5,
    conv.payloadOffset + 1,
    conv.payloadOffset + conv.payloadBytes - 1,
    FILE.length - 5,
    FILE.length - 1,
  ];
  for (const at of points) {
    throwsFormatError(() => readModel(FILE.subarray(0, at)), { offset: at, message: /truncated/ });
  }
});

test('header CRC mismatch', () => {
  const file = FILE.slice();
  file[40] ^= 1;
  throwsFormatError(() => readModel(file), { offset: 20, message: /header CRC/ });
});

test('record CRC mismatch names the record and its layer', () => {
  const index = 2;
  const record = HEADER.records[index];
  const file = FILE.slice();
  file[record.payloadOffset + 50] ^= 0x10;
  throwsFormatError(() => readModel(file), {
    offset: record.payloadOffset,
    layer: MODEL.layers[index].name,
    message: /^record 2 \(layer "layer1\.0\.conv1"\) at byte \d+: CRC-32 mismatch$/,
  });
});

test('record with the wrong kind', () => {
  const record = HEADER.records[1];
  const file = FILE.slice();
  setU16(file, record.offset + 4, 1);
  throwsFormatError(() => readModel(file), { offset: record.offset + 4, layer: 'maxpool', message: /kind/ });
});

test('record with the wrong index', () => {
  const record = HEADER.records[4];
  const file = FILE.slice();
  setU32(file, record.offset + 8, 5);
  throwsFormatError(() => readModel(file), {
    offset: record.offset + 8,
    layer: MODEL.layers[4].name,
    message: /number 5/,
  });
});

test('record with the wrong length', () => {
  const record = HEADER.records[2];
  const file = FILE.slice();
  setU32(file, record.offset, record.payloadBytes + 16);
  throwsFormatError(() => readModel(file), { offset: record.offset, layer: MODEL.layers[2].name, message: /length/ });
});

test('record with a nonzero padding channel, even with a correct CRC', () => {
  const index = 0; // conv1 is 3x5 on 3 channels, patch layout: 45 weights per channel, padded to 48
  const record = HEADER.records[index];
  const file = FILE.slice();
  const layer = MODEL.layers[index] as ParamQuantLayer;
  const weightsAt = record.payloadOffset + 8 * Math.ceil(layer.cout / 4) * 4;
  const firstPadding = weightsAt + 5 * 32 + 5; // group 5 of output channel 0, byte 45 - 40
  file[firstPadding] = 1;
  setU32(
    file,
    record.offset + 12,
    zlib.crc32(file.subarray(record.payloadOffset, record.payloadOffset + record.payloadBytes)),
  );
  throwsFormatError(() => readModel(reseal(file)), {
    offset: firstPadding,
    layer: 'conv1',
    message: /padding channel/,
  });
});

test('nonzero padding after the metadata', () => {
  const text = JSON.stringify(metadataOf(FILE));
  const file = withMetadata(FILE, text + ' '.repeat(16 - ((24 + text.length) % 16) + 5));
  const paddingEnd = roundUp16(24 + u32(file, 12));
  assert.equal(readModel(file).header.layers, HEADER.layers);
  file[paddingEnd - 1] = 1;
  throwsFormatError(() => readModel(file), {
    offset: paddingEnd - 1,
    message: /^metadata at byte \d+: nonzero padding byte$/,
  });
});

test('trailer with the wrong file length, the wrong CRC, the wrong magic', () => {
  const trailer = FILE.length - 16;
  const cases: [number, number, RegExp][] = [
    [trailer + 4, 1, /file length/],
    [trailer + 8, 1, /whole-file CRC/],
    [trailer, 1, /trailer magic/],
    [trailer + 12, 1, /reserved/],
  ];
  for (const [offset, flip, message] of cases) {
    const file = FILE.slice();
    file[offset] ^= flip;
    throwsFormatError(() => readModel(file), { offset, message });
  }
});

test('record with a nonzero reserved field, and an empty payload with the wrong CRC', () => {
  const maxpool = HEADER.records[1];
  const reserved = FILE.slice();
  reserved[maxpool.offset + 6] = 1;
  throwsFormatError(() => readModel(reserved), { offset: maxpool.offset + 6, layer: 'maxpool', message: /reserved/ });
  const crc = FILE.slice();
  crc[maxpool.offset + 12] ^= 1;
  throwsFormatError(() => readModel(crc), { offset: maxpool.payloadOffset, layer: 'maxpool', message: /CRC/ });
});

test('trailing garbage after the trailer', () => {
  const file = new Uint8Array(FILE.length + 3);
  file.set(FILE);
  throwsFormatError(() => readModel(file), { offset: FILE.length, message: /follow the trailer/ });
  const parser = new ModelStreamParser();
  parser.push(FILE);
  throwsFormatError(() => parser.push(Uint8Array.of(0)), { offset: FILE.length });
});

test('a failed parser keeps failing', () => {
  const parser = new ModelStreamParser();
  const file = FILE.slice();
  file[0] = 0;
  throwsFormatError(() => parser.push(file), { offset: 0 });
  throwsFormatError(() => parser.push(FILE), { offset: 0 });
  throwsFormatError(() => parser.end(), { offset: 0 });
});

test('metadata length and record count out of bounds, or disagreeing with the metadata', () => {
  const cases: [number, number, RegExp, number][] = [
    [12, 0, /metadata length 0/, 12],
    [12, 16 * 1024 * 1024 + 1, /metadata length/, 12],
    [16, 0, /record count 0/, 16],
    [16, 4097, /record count 4097/, 16],
    [16, MODEL.layers.length - 1, /metadata has/, 16],
  ];
  for (const [field, value, message, offset] of cases) {
    const file = FILE.slice();
    setU32(file, field, value);
    throwsFormatError(() => readModel(field === 16 ? reseal(file) : file), { offset, message });
  }
});

test('metadata that is not JSON, or not UTF-8', () => {
  throwsFormatError(() => readModel(withMetadata(FILE, '{"architecture": "resnet18",')), {
    offset: 24,
    message: /JSON/,
  });
  const bad = withMetadata(FILE, '"xx"');
  bad[25] = 0xff;
  throwsFormatError(() => readModel(reseal(bad)), { offset: 24, message: /UTF-8/ });
});

test('metadata describing an inconsistent graph: the error names the layer', () => {
  const cases: [string, (m: any) => void, RegExp][] = [
    ['layer1.0.conv2', (m) => (m.tensors[m.layers[3].output].h += 1), /output tensor \d+ is/],
    ['layer1.0.conv1', (m) => (m.layers[2].input = 5), /reads tensor 5 before/],
    ['layer1.0.add', (m) => (m.layers[4].inputs = [2, 99]), /out of range/],
    ['layer1.0.conv1', (m) => (m.layers[2].output = 1), /earlier layer wrote/],
    ['conv1', (m) => (m.layers[0].output = 0), /network input/],
    ['conv1', (m) => (m.layers[0].cout = 1e9), /cout must be an integer in 1\.\.8192/],
    ['conv1', (m) => (m.layers[0].kh = 16), /kh must be/],
    ['conv1', (m) => (m.layers[0].stride = 5), /stride/],
    ['conv1', (m) => (m.layers[0].pad = 3), /pad must be an integer in 0\.\.2/],
    ['conv1', (m) => (m.layers[0].cin = 4), /cin is 4/],
    ['maxpool', (m) => (m.tensors[2].zeroPoint = (m.tensors[2].zeroPoint + 1) % 256), /scale and zero point/],
    ['layer2.0.add', (m) => (m.layers[8].inputs = [8, 5]), /different shapes/],
    ['fc', (m) => (m.layers[10].cin += 1), /values, cin is/],
    ['fc', (m) => (m.tensors[11].scale = 0.5), /scale 1/],
    ['avgpool', (m) => (m.layers[9].multiplier = '0.5'), /multiplier must be a finite number/],
    ['layer1.0.add', (m) => (m.layers[4].multiplierA = 1e39), /overflows f32/],
    ['layer1.0.add', (m) => (m.layers[4].relu = 1), /relu must be true or false/],
    ['avgpool', (m) => (m.layers[9].kind = 'lppool'), /unknown layer kind "lppool"/],
    [
      'avgpool',
      (m) => Object.assign(m.layers[9], { kind: 'avgpool', k: 2, stride: 2, pad: 0, ceil: 1 }),
      /ceil must be true or false, got 1/,
    ],
    [
      'avgpool',
      (m) => Object.assign(m.layers[9], { kind: 'avgpool', k: 2, stride: 2, pad: 0, ceil: true }),
      /output tensor 10 must keep the input's scale and zero point/,
    ],
    [
      'avgpool',
      (m) => Object.assign(m.layers[9], { kind: 'affine', channels: 3, relu: false }),
      /input tensor \d+ has \d+ channels, the layer has 3/,
    ],
  ];
  for (const [layer, edit, message] of cases)
    throwsFormatError(() => readModel(editMetadata(edit)), { offset: 24, layer, message });
});

test('metadata with bad tensors, preprocessing, labels', () => {
  const cases: [(m: any) => void, RegExp][] = [
    [(m) => (m.tensors[3].h = 5000), /tensors\[3\]\.h must be an integer in 1\.\.4096, got 5000/],
    [(m) => (m.tensors[3].c = -1), /tensors\[3\]\.c/],
    [(m) => (m.tensors[3].w = 2.5), /tensors\[3\]\.w/],
    [(m) => (m.tensors[3].scale = 0), /scale must be positive/],
    [(m) => (m.tensors[3].zeroPoint = 256), /zeroPoint/],
    [(m) => m.tensors.push(m.tensors[1]), /need 12 tensors/],
    [(m) => (m.tensors[0].h += 1), /input tensor 0/],
    [(m) => m.labels.pop(), /labels for/],
    [(m) => (m.labels[0] = 7), /labels\[0\] must be a string/],
    [(m) => (m.preprocessing.mean = [0, 0]), /mean must have 3 elements/],
    [(m) => (m.preprocessing.std[1] = 0), /std\[1\] must be positive/],
    [(m) => (m.preprocessing.colorOrder = 'GBR'), /colorOrder/],
    [(m) => (m.preprocessing.crop = m.preprocessing.resize + 1), /crop/],
    [(m) => (m.architecture = null), /architecture must be a string, got null/],
    [(m) => (m.producer = 3), /producer/],
    [(m) => (m.layers = []), /layers must have 1\.\.4096 elements/],
  ];
  for (const [edit, message] of cases) throwsFormatError(() => readModel(editMetadata(edit)), { offset: 24, message });
});

test('a model needing more than 512 MiB of parameters is refused before anything is allocated', () => {
  const metadata = metadataOf(FILE);
  const convs = Array.from({ length: 10 }, (_, i) => ({
    kind: 'conv',
    name: `big${i}`,
    input: i,
    output: i + 1,
    kh: 1,
    kw: 1,
    stride: 1,
    pad: 0,
    cin: i === 0 ? 3 : 8192,
    cout: 8192,
    relu: false,
  }));
  const tensors = [
    metadata.tensors[0],
    ...convs.map(() => ({ h: metadata.tensors[0].h, w: metadata.tensors[0].w, c: 8192, scale: 1, zeroPoint: 0 })),
  ];
  const huge = { ...metadata, tensors, layers: convs, labels: Array(8192).fill('x') };
  throwsFormatError(() => validateGraph(huge), { offset: 24, message: /parameters take \d+ bytes/ });
});

test('validateGraph turns garbage of any shape into ModelFormatError, never a TypeError', () => {
  const garbage = [
    undefined,
    null,
    0,
    -1,
    1.5,
    1e308,
    Infinity,
    NaN,
    '',
    'x',
    '7',
    true,
    [],
    [1, 2, 3],
    {},
    { h: 1 },
    [null],
  ];
  for (const value of garbage) throwsFormatError(() => validateGraph(value), { offset: 24 });
  const rng = mulberry32(16);
  const paths = (value: any, prefix: (string | number)[] = []): (string | number)[][] =>
    typeof value !== 'object' || value === null
      ? [prefix]
      : [
          prefix,
          ...Object.keys(value).flatMap((key) =>
            paths(value[key], [...prefix, Array.isArray(value) ? Number(key) : key]),
          ),
        ];
  const metadata = metadataOf(FILE);
  const allPaths = paths(metadata).filter((p) => p.length > 0);
  let accepted = 0;
  for (let round = 0; round < 1000; round++) {
    const broken = structuredClone(metadata);
    const path = pick(rng, allPaths);
    let parent = broken;
    for (const key of path.slice(0, -1)) parent = parent[key];
    const replacement = pick(rng, garbage);
    if (replacement === undefined && rng() < 0.5) delete parent[path[path.length - 1]];
    else parent[path[path.length - 1]] = replacement;
    try {
      validateGraph(broken);
      accepted++;
    } catch (error) {
      if (!(error instanceof ModelFormatError)) throw error;
    }
  }
  assert.ok(accepted < 200, `${accepted} damaged graphs accepted`);
});

// ---------------------------------------------------------------------------------------------
// The writer refuses bad models

test('writeModel refuses bad parameters and bad graphs, naming the layer', () => {
  const conv = (model: QuantModel) => model.layers[2] as ParamQuantLayer;
  const cases: [(m: QuantModel) => void, RegExp][] = [
    [(m) => (conv(m).weight[3] = -128), /weight\[3\] is -128/],
    [(m) => (conv(m).bias[0] = -(2 ** 30) - 1), /bias\[0\] = -1073741825 exceeds/],
    [(m) => (conv(m).multiplier[0] = NaN), /multiplier\[0\] is not finite/],
    [(m) => (conv(m).weight = conv(m).weight.subarray(1)), /weight must have/],
    [(m) => ((conv(m) as any).bias = Array.from(conv(m).bias)), /bias must be an Int32Array, got an array of/],
    [(m) => ((conv(m) as any).multiplier = undefined), /multiplier must be a Float32Array, got nothing/],
  ];
  for (const [edit, message] of cases) {
    const model = randomModel(1);
    edit(model);
    throwsFormatError(() => writeModel(model), {
      layer: 'layer1.0.conv1',
      message,
      offset: HEADER.records[2].payloadOffset,
    });
  }
  const model = randomModel(1);
  (model.layers[3] as any).cin += 1;
  throwsFormatError(() => writeModel(model), { layer: 'layer1.0.conv2', offset: 24 });
});

// ---------------------------------------------------------------------------------------------
// Random damage

test('500 random byte flips and truncations: every one is a ModelFormatError', () => {
  const small = writeModel(randomModel(2));
  const rng = mulberry32(17);
  for (let round = 0; round < 500; round++) {
    const file = small.slice();
    const truncate = rng() < 0.3;
    const at = randInt(rng, 0, small.length - 1);
    if (!truncate) file[at] ^= randInt(rng, 1, 255);
    const damaged = truncate ? file.subarray(0, at) : file;
    const chunk = randInt(rng, 1, 64);
    throwsFormatError(() => (rng() < 0.5 ? readModel(damaged) : parseInChunks(damaged, () => chunk)), {});
  }
});

test('truncation at every byte of a small file', () => {
  const small = writeModel(randomModel(3));
  for (let at = 0; at < small.length; at++) {
    throwsFormatError(() => readModel(small.subarray(0, at)), { offset: at, message: /truncated/ });
  }
});

test.run();
