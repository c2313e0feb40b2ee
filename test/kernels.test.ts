// Every kernel, bit for bit against the scalar oracle written from docs/ARCHITECTURE.md, over
// randomized shapes (seeded): odd sizes, every stride/padding ResNets use and more, channel counts
// from 1 to 512 that are mostly not multiples of 16.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { QuantLayer, QuantTensor } from '../src/model/types.ts';
import { outSize, poolOutSize } from '../src/model/types.ts';
import { MAX_TAPS_DEPTH, tapsDepth } from '../src/runtime/conv-path.ts';
import type { NetworkOptions } from '../src/runtime/network.ts';
import { createMemory, instantiateKernels, kernelModule } from '../src/runtime/wasm.ts';
import { convGeometry } from './helpers/conv-layer.ts';
import type { Rng } from './helpers/kernel-cases.ts';
import {
  bytes,
  channelCount,
  int,
  pick,
  randomConv,
  randomFc,
  runNetwork,
  runOneLayer,
  tensor,
} from './helpers/kernel-cases.ts';
import { mulberry32 } from './helpers/random.ts';
import { addRef, affineRef, avgpoolRef, convRef, fcRef, gapRef, maxpoolRef } from './oracle/int8-reference.ts';

test('conv equals the scalar reference on 120 random shapes', async () => {
  const rng = mulberry32(2);
  for (let i = 0; i < 120; i++) {
    const { x, y, layer } = randomConv(rng);
    if (layer.kind !== 'conv') throw new Error('unreachable');
    const input = bytes(rng, x.h * x.w * x.c);
    const got = await runOneLayer([x, y], layer, input);
    const want = convRef(input, x, x.zeroPoint, layer, y.zeroPoint);
    assert.equal(
      got,
      want,
      `case ${i}: ${layer.kh}x${layer.kw}/${layer.stride} pad ${layer.pad} ${x.h}x${x.w}x${x.c} -> ${layer.cout}`,
    );
  }
});

test('1x1 convs run as a GEMM equal to the scalar reference on 60 random shapes: strides 1 and 2, ragged channels, 1-pixel and odd maps, several chunks and filter groups, 1 to 3 threads; gemm: false runs them direct', async () => {
  const rng = mulberry32(12);
  // Beside random ones, shapes at the edges of gemmPlan's blocking: a chunk of 4 pixels (cin 4100),
  // many filter groups (cin 520, cout 300), a single pixel, a single output channel.
  const edges = [
    [5, 3, 4100, 37, 2],
    [9, 7, 520, 300, 1],
    [1, 1, 24, 9, 1],
    [3, 3, 1, 1, 2],
  ];
  for (let i = 0; i < 60; i++) {
    const [h, w, cin, cout, stride] = edges[i] ?? [
      int(rng, 1, 14),
      int(rng, 1, 14),
      channelCount(rng),
      channelCount(rng),
      pick(rng, [1, 2]),
    ];
    const x = tensor(h, w, cin, rng);
    const y = { ...tensor(outSize(h, 1, stride, 0), outSize(w, 1, stride, 0), cout, rng), zeroPoint: 128 };
    const conv: QuantLayer & { kind: 'conv' } = {
      ...convGeometry('gemm', cin, cout, { k: 1, stride }),
      relu: rng() < 0.5,
      weight: Int8Array.from({ length: cout * cin }, () => int(rng, -127, 127)),
      bias: Int32Array.from({ length: cout }, () => int(rng, -5000, 5000)),
      // Accumulators spread as 74 x 73 x √cin: outputs spread over the uint8 range.
      multiplier: Float32Array.from({ length: cout }, () => (40 + 200 * rng()) / (74 * 73 * Math.sqrt(cin))),
    };
    const input = bytes(rng, h * w * cin);
    const threads = 1 + (i % 3);
    const net = await runNetwork([x, y], [conv], input, { threads });
    const where = `case ${i}: 1x1/${stride} ${h}x${w}x${cin} -> ${cout}, ${threads} thread(s)`;
    assert.is(net.convPaths()[0], 'gemm', where);
    const want = convRef(input, x, x.zeroPoint, conv, y.zeroPoint);
    assert.equal(net.readTensor(1), want, where);
    if (!conv.relu) assert.ok(new Set(want).size >= Math.min(8, want.length / 4), `${where}: outputs spread`);
    net.close();
    if (i % 4 === 0) {
      const direct = await runNetwork([x, y], [conv], input, { threads, gemm: false });
      assert.is(direct.convPaths()[0], 'direct', where);
      assert.equal(direct.readTensor(1), want, `${where}, gemm: false`);
      direct.close();
    }
  }
});

test('convs on their taps as a GEMM equal the scalar reference on 60 random shapes: 1x1 to 7x7, strides 1 to 3, inside and across the padding, ragged channels, several chunks and filter groups, 1 to 3 threads; gemm: false runs them direct', async () => {
  const rng = mulberry32(14);
  // Beside random ones, shapes at the edges of gemmPlan's blocking for the deepest taps (9 x 256
  // channels): chunks of 4 pixels, 2 groups of 6 blocks; many filter groups (cin 24, cout 300); a
  // 1x1 conv with padding; a single pixel; and one channel too many for taps (9 x 264), run direct.
  const edges = [
    [9, 7, 256, 37, 3, 2, 1],
    [8, 9, 24, 300, 3, 2, 1],
    [5, 4, 9, 11, 1, 1, 1],
    [1, 1, 8, 5, 3, 1, 1],
    [7, 7, 257, 9, 3, 2, 1],
  ];
  for (let i = 0; i < 60; i++) {
    const k = pick(rng, [2, 3, 3, 3, 5, 7]);
    const [h, w, cin, cout, kernel, stride, pad] = edges[i] ?? [
      int(rng, 1, 13),
      int(rng, 1, 13),
      Math.max(8, Math.min(channelCount(rng), Math.floor(MAX_TAPS_DEPTH / (k * k)))),
      channelCount(rng),
      k,
      pick(rng, [1, 2, 2, 3]),
      int(rng, 0, Math.floor(k / 2)),
    ];
    if (outSize(h, kernel, stride, pad) < 1 || outSize(w, kernel, stride, pad) < 1) continue;
    const x = tensor(h, w, cin, rng);
    const y = {
      ...tensor(outSize(h, kernel, stride, pad), outSize(w, kernel, stride, pad), cout, rng),
      zeroPoint: 128,
    };
    const conv: QuantLayer & { kind: 'conv' } = {
      ...convGeometry('taps', cin, cout, { k: kernel, stride, pad }),
      relu: rng() < 0.5,
      weight: Int8Array.from({ length: cout * kernel * kernel * cin }, () => int(rng, -127, 127)),
      bias: Int32Array.from({ length: cout }, () => int(rng, -5000, 5000)),
      multiplier: Float32Array.from(
        { length: cout },
        () => (40 + 200 * rng()) / (74 * 73 * Math.sqrt(kernel * kernel * cin)),
      ),
    };
    const input = bytes(rng, h * w * cin);
    const threads = 1 + (i % 3);
    // Every third case cut into as many chunks as the loop allows.
    const minChunkWork = i % 3 === 2 ? 1 : undefined;
    const net = await runNetwork([x, y], [conv], input, { threads, minChunkWork, winograd: false });
    const where = `case ${i}: ${kernel}x${kernel}/${stride} pad ${pad} ${h}x${w}x${cin} -> ${cout}, ${threads} thread(s)`;
    assert.is(net.convPaths()[0], tapsDepth(conv) <= MAX_TAPS_DEPTH ? 'taps' : 'direct', where);
    const want = convRef(input, x, x.zeroPoint, conv, y.zeroPoint);
    assert.equal(net.readTensor(1), want, where);
    if (!conv.relu) assert.ok(new Set(want).size >= Math.min(8, want.length / 4), `${where}: outputs spread`);
    net.close();
    if (i % 4 === 0) {
      const direct = await runNetwork([x, y], [conv], input, { threads, winograd: false, gemm: false });
      assert.is(direct.convPaths()[0], 'direct', where);
      assert.equal(direct.readTensor(1), want, `${where}, gemm: false`);
      direct.close();
    }
  }
});

test('patch convs equal the scalar reference with field rows of 2 to 35 bytes (copied bytewise, in 8- and 16-byte pieces), inside and across the padding, 1 to 3 threads', async () => {
  const rng = mulberry32(13);
  // [k, cin]: rows of kw·cin bytes under 8, 8 to 15 and 16 or more; kh·kw·cin rounded up to 8 is the row.
  const fields = [
    [2, 1],
    [3, 3],
    [2, 7],
    [5, 3],
    [7, 3],
    [7, 5],
    [3, 6],
    [5, 7],
  ];
  for (const [i, [k, cin]] of fields.entries()) {
    const stride = 1 + (i % 2);
    const pad = i % 3 === 0 ? 0 : Math.floor(k / 2);
    const size = k + int(rng, 3, 12);
    const out = outSize(size, k, stride, pad);
    const cout = int(rng, 1, 20);
    const x = tensor(size, size, cin, rng);
    const y = { ...tensor(out, out, cout, rng), zeroPoint: 128 };
    const conv: QuantLayer & { kind: 'conv' } = {
      ...convGeometry('patches', cin, cout, { k, stride, pad }),
      relu: false,
      weight: Int8Array.from({ length: cout * k * k * cin }, () => int(rng, -127, 127)),
      bias: Int32Array.from({ length: cout }, () => int(rng, -5000, 5000)),
      multiplier: Float32Array.from({ length: cout }, () => (40 + 200 * rng()) / (74 * 73 * Math.sqrt(k * k * cin))),
    };
    const input = bytes(rng, size * size * cin);
    const threads = 1 + (i % 3);
    const net = await runNetwork([x, y], [conv], input, { threads });
    const where = `case ${i}: ${k}x${k}/${stride} pad ${pad} ${size}x${size}x${cin} -> ${cout}, ${threads} thread(s)`;
    assert.is(net.convPaths()[0], 'patches', where);
    assert.equal(net.readTensor(1), convRef(input, x, x.zeroPoint, conv, y.zeroPoint), where);
    net.close();
  }
});

test('requantization saturates at both ends for any accumulator: multipliers up to 3e38 (overflowing to infinity), biases ±2^30', async () => {
  const rng = mulberry32(11);
  for (const multiplier of [3e38, 1e30, 1e4, 1, 1e-30]) {
    for (const [zo, relu] of [
      [0, false],
      [128, false],
      [128, true],
      [255, false],
    ] as const) {
      const cin = 8,
        cout = 8;
      const x = { h: 3, w: 3, c: cin, scale: 1, zeroPoint: 7 };
      const conv: QuantLayer & { kind: 'conv' } = {
        ...convGeometry('saturate', cin, cout),
        relu,
        weight: Int8Array.from({ length: cout * cin }, () => int(rng, -127, 127)),
        bias: Int32Array.from({ length: cout }, (_, o) => [2 ** 30, -(2 ** 30), 0, 1, -1, 1000, -1000, 2 ** 29][o]),
        multiplier: new Float32Array(cout).fill(multiplier),
      };
      const y = { ...x, c: cout, zeroPoint: zo };
      const input = bytes(rng, 9 * cin);
      const got = await runOneLayer([x, y], conv, input);
      assert.equal(got, convRef(input, x, x.zeroPoint, conv, zo), `multiplier ${multiplier}, zo ${zo}, relu ${relu}`);
    }
  }
});

test('Winograd, F(2x2) or F(4x4), whole or in channel chunks, gives the same bits as direct convolution on 90 random 3x3 shapes', async () => {
  const rng = mulberry32(7);
  const plans = new Map<string, number>();
  for (let i = 0; i < 90; i++) {
    const { x, y, layer } = randomConv(rng);
    const conv = { ...layer, kh: 3, kw: 3, stride: 1, pad: 1, cin: Math.max(8, x.c) } as QuantLayer & { kind: 'conv' };
    // Weight magnitudes from 127 down to 8 move wide layers between F(2x2), F(4x4) in chunks and whole.
    const magnitude = pick(rng, [127, 127, 40, 8]);
    conv.weight = Int8Array.from({ length: conv.cout * 9 * conv.cin }, () => int(rng, -magnitude, magnitude));
    // Accumulators spread as 74 (the input's deviation) x magnitude/√3 (the weights') x √(9·cin): scale bias and multiplier alike.
    const spread = 74 * (magnitude / Math.sqrt(3)) * Math.sqrt(9 * conv.cin);
    conv.bias = conv.bias.map(() => int(rng, -spread, spread));
    conv.multiplier = conv.multiplier.map(() => (40 + 200 * rng()) / spread);
    const input = bytes(rng, x.h * x.w * conv.cin);
    // A mid-range output zero point without ReLU, so that outputs spread and neither clamp hides a difference.
    conv.relu = false;
    const tensors = [
      { ...x, c: conv.cin },
      { ...y, h: x.h, w: x.w, zeroPoint: 128 },
    ];
    const threads = i % 5 === 0 ? 2 : 1;
    const direct = await runNetwork(tensors, [conv], input, { winograd: false, gemm: false });
    const winograd = await runNetwork(tensors, [conv], input, { threads });
    assert.equal(winograd.convPaths()[0], 'winograd');
    assert.equal(direct.convPaths()[0], 'direct');
    const plan = winograd.winogradPlan(0)!;
    const chunks = Math.ceil(conv.cin / plan.chunk);
    const name = `F(${plan.tile}x${plan.tile})${chunks > 1 ? ' in chunks' : ''}`;
    plans.set(name, (plans.get(name) ?? 0) + 1);
    const out = winograd.readTensor(1);
    const where = `case ${i}: ${x.h}x${x.w}x${conv.cin} -> ${conv.cout}, weights ±${magnitude}, ${name}, ${threads} thread(s)`;
    assert.equal(out, direct.readTensor(1), where);
    assert.ok(
      new Set(out).size >= Math.min(8, out.length / 4),
      `${where}: outputs spread over the uint8 range: ${[...new Set(out)].slice(0, 9)} of ${out.length}`,
    );
    winograd.close();
  }
  for (const name of ['F(2x2)', 'F(4x4)', 'F(4x4) in chunks'])
    assert.ok((plans.get(name) ?? 0) >= 5, `${name} ran ${plans.get(name) ?? 0} times: ${[...plans]}`);
});

test('F(4x4) is exact up to its bound: accumulators of ±255·9·512·28 (just under 2^25) run whole, ±255·9·512·29 in two chunks', async () => {
  const cin = 512,
    cout = 8,
    h = 9,
    w = 9;
  for (const [k, chunks] of [
    [28, 1],
    [29, 2],
  ]) {
    // Input d − zx = +255 everywhere (zx 0) or −255 (zx 255); filters all +k or all −k: every tap adds the same sign.
    for (const [value, zeroPoint] of [
      [255, 0],
      [0, 255],
    ]) {
      const conv: QuantLayer & { kind: 'conv' } = {
        ...convGeometry('edge', cin, cout, { k: 3, pad: 1 }),
        relu: false,
        weight: Int8Array.from({ length: cout * 9 * cin }, (_, i) => (Math.floor(i / (9 * cin)) % 2 ? -k : k)),
        bias: new Int32Array(cout),
        // Interior outputs (9 taps) ±100 from the zero point, edges (6 taps) ±67, corners (4 taps) ±44.
        multiplier: new Float32Array(cout).fill(100 / (255 * 9 * cin * k)),
      };
      const tensors = [
        { h, w, c: cin, scale: 1, zeroPoint },
        { h, w, c: cout, scale: 1, zeroPoint: 128 },
      ];
      const input = new Uint8Array(h * w * cin).fill(value);
      const net = await runNetwork(tensors, [conv], input);
      const want = convRef(input, tensors[0], zeroPoint, conv, 128);
      assert.equal(net.readTensor(1), want, `weights ±${k}, input ${value} - ${zeroPoint}`);
      assert.equal(net.winogradPlan(0), { tile: 4, chunk: cin / chunks });
      assert.equal(new Set(want).size, 6);
      net.close();
    }
  }
});

test('maxpool equals the scalar reference on 40 random shapes', async () => {
  const rng = mulberry32(3);
  for (let i = 0; i < 40; i++) {
    const [k, stride, pad] = pick(rng, [
      [3, 2, 1],
      [3, 1, 1],
      [2, 2, 0],
      [3, 2, 0],
      [5, 3, 2],
    ]);
    const c = channelCount(rng),
      h = int(rng, k, 20),
      w = int(rng, k, 20);
    const x = tensor(h, w, c, rng);
    const y = { ...x, h: outSize(h, k, stride, pad), w: outSize(w, k, stride, pad) };
    const input = bytes(rng, h * w * c);
    const got = await runOneLayer(
      [x, y],
      { kind: 'maxpool', name: 'pool', input: 0, output: 1, k, stride, pad },
      input,
    );
    assert.equal(got, maxpoolRef(input, x, { k, stride, pad }), `case ${i}`);
  }
});

test('avgpool equals the scalar reference on 60 random shapes: odd sizes, ceil mode, padding, 1 and 2 threads', async () => {
  const rng = mulberry32(8);
  for (let i = 0; i < 60; i++) {
    const [k, stride, pad] = pick(rng, [
      [2, 2, 0],
      [2, 2, 0],
      [3, 2, 1],
      [3, 1, 1],
      [3, 3, 0],
      [5, 2, 2],
    ]);
    const ceil = rng() < 0.7;
    const c = channelCount(rng),
      h = int(rng, k, 15),
      w = int(rng, k, 15);
    const x = tensor(h, w, c, rng);
    const layer: QuantLayer = { kind: 'avgpool', name: 'pool', input: 0, output: 1, k, stride, pad, ceil };
    const y = { ...x, h: poolOutSize(h, layer), w: poolOutSize(w, layer) };
    const input = bytes(rng, h * w * c);
    const net = await runNetwork([x, y], [layer], input, { threads: i % 4 === 0 ? 2 : 1 });
    const want = avgpoolRef(input, x, layer);
    assert.equal(net.readTensor(1), want, `case ${i}: ${k}/${stride} pad ${pad} ceil ${ceil} ${h}x${w}x${c}`);
    net.close();
  }
});

test('avgpool 2x2/2 in ceil mode on 7x7 gives 4x4, the edge windows averaging their 2 or 1 values', async () => {
  const x = { h: 7, w: 7, c: 16, scale: 0.1, zeroPoint: 3 };
  const layer: QuantLayer = { kind: 'avgpool', name: 'pool', input: 0, output: 1, k: 2, stride: 2, pad: 0, ceil: true };
  const input = Uint8Array.from({ length: 7 * 7 * 16 }, (_, i) => (Math.floor(i / 16) * 2 + (i % 16)) % 256);
  const got = await runOneLayer([x, { ...x, h: 4, w: 4 }], layer, input);
  const value = (y: number, xx: number, c: number) => input[(y * 7 + xx) * 16 + c];
  assert.is(got.length, 4 * 4 * 16);
  assert.is(got[0], Math.floor((2 * (value(0, 0, 0) + value(0, 1, 0) + value(1, 0, 0) + value(1, 1, 0)) + 4) / 8));
  assert.is(got[(0 * 4 + 3) * 16 + 5], Math.floor((2 * (value(0, 6, 5) + value(1, 6, 5)) + 2) / 4));
  assert.is(got[(3 * 4 + 3) * 16 + 9], value(6, 6, 9));
});

test('affine equals the scalar reference on 60 random shapes, with and without ReLU, 1 and 2 threads', async () => {
  const rng = mulberry32(9);
  for (let i = 0; i < 60; i++) {
    const c = channelCount(rng),
      x = tensor(int(rng, 1, 12), int(rng, 1, 12), c, rng);
    const y = tensor(x.h, x.w, c, rng);
    const multiplier = Float32Array.from({ length: c }, () => (rng() < 0.2 ? -1 : 1) * (0.05 + 2 * rng()));
    const offset = Float32Array.from({ length: c }, () => 200 * (rng() - 0.5));
    const layer: QuantLayer = {
      kind: 'affine',
      name: 'norm',
      input: 0,
      output: 1,
      channels: c,
      relu: rng() < 0.5,
      multiplier,
      offset,
    };
    const input = bytes(rng, x.h * x.w * c);
    const net = await runNetwork([x, y], [layer], input, { threads: i % 4 === 0 ? 2 : 1 });
    const want = affineRef(input, c, x.zeroPoint, multiplier, offset, y.zeroPoint, layer.relu);
    assert.equal(net.readTensor(1), want, `case ${i}: ${x.h}x${x.w}x${c} relu ${layer.relu}`);
    assert.ok(new Set(want).size >= Math.min(8, want.length / 4), `case ${i}: outputs spread`);
    net.close();
  }
});

test('gap equals the scalar reference on 30 random shapes', async () => {
  const rng = mulberry32(4);
  for (let i = 0; i < 30; i++) {
    const c = channelCount(rng),
      h = int(rng, 1, 9),
      w = int(rng, 1, 9);
    const x = tensor(h, w, c, rng);
    const y = tensor(1, 1, c, rng);
    const multiplier = Math.fround((0.5 + 3 * rng()) / (h * w));
    const input = bytes(rng, h * w * c);
    const got = await runOneLayer([x, y], { kind: 'gap', name: 'gap', input: 0, output: 1, multiplier }, input);
    assert.equal(got, gapRef(input, x, x.zeroPoint, multiplier, y.zeroPoint), `case ${i}`);
  }
});

test('fc equals the scalar reference on 30 random shapes', async () => {
  const rng = mulberry32(5);
  for (let i = 0; i < 30; i++) {
    const { x, layer, tensors } = randomFc(rng);
    const input = bytes(rng, layer.cin);
    const net = await runNetwork(tensors, [layer], input);
    assert.equal(net.run(input), fcRef(input, x.zeroPoint, layer), `case ${i}`);
  }
});

test('add equals the scalar reference on 30 random shapes, with and without ReLU', async () => {
  const rng = mulberry32(6);
  for (let i = 0; i < 30; i++) {
    // The second operand comes from a 1x1 conv of the first, as a residual branch would.
    const c = channelCount(rng),
      x = tensor(int(rng, 1, 12), int(rng, 1, 12), c, rng);
    const conv: QuantLayer = {
      ...convGeometry('branch', c, c),
      relu: false,
      weight: Int8Array.from({ length: c * c }, () => int(rng, -127, 127)),
      bias: new Int32Array(c),
      multiplier: Float32Array.from({ length: c }, () => (40 + 200 * rng()) / (74 * 73 * Math.sqrt(c))),
    };
    const branch = tensor(x.h, x.w, c, rng);
    const sum = tensor(x.h, x.w, x.c, rng);
    const add: QuantLayer = {
      kind: 'add',
      name: 'add',
      inputs: [0, 1],
      output: 2,
      relu: rng() < 0.5,
      multiplierA: Math.fround(x.scale / sum.scale),
      multiplierB: Math.fround(branch.scale / sum.scale),
    };
    const input = bytes(rng, x.h * x.w * x.c);
    const net = await runNetwork([x, branch, sum], [conv, add], input);
    const b = net.readTensor(1);
    const want = addRef(
      input,
      x.zeroPoint,
      b,
      branch.zeroPoint,
      add.multiplierA,
      add.multiplierB,
      sum.zeroPoint,
      add.relu,
    );
    assert.equal(net.readTensor(2), want, `case ${i}`);
  }
});

// Requantization rounds half to even (docs/ARCHITECTURE.md): random cases almost never land on a
// tie, so these build outputs of exactly …, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, … (multipliers 0.5, 1.5
// and 2.5 on odd accumulators; affine offsets of ±0.5, ±1.5; gap sums of 4 mod 8 times 1/8), where
// rounding half up, or away from zero, gives another byte. fc is left out: its logits are f32.
const TIES = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5];
const TIE_MULTIPLIERS = [0.5, 1.5, 2.5];

/** Values within `spread` of the zero point (seeded), so accumulators stay small. */
const nearZeroPoint = (rng: Rng, n: number, zeroPoint: number, spread = 1) =>
  Uint8Array.from({ length: n }, () => zeroPoint + int(rng, -spread, spread));
/** A tensor of scale 1 (the tie tests set multipliers directly). */
const unitTensor = (h: number, w: number, c: number, zeroPoint: number): QuantTensor => ({
  h,
  w,
  c,
  scale: 1,
  zeroPoint,
});

function assertTiesCovered(values: number[], where: string): void {
  const missing = TIES.filter((t) => !values.includes(t));
  assert.is(missing.length, 0, `${where}: no output lands on ${missing}`);
}

const TIE_CONVS: {
  name: string;
  k: number;
  stride: number;
  pad: number;
  cin: number;
  size: number;
  options: NetworkOptions;
  path: string;
  tile?: number;
}[] = [
  {
    name: 'direct 3x3',
    k: 3,
    stride: 1,
    pad: 1,
    cin: 16,
    size: 8,
    options: { winograd: false, gemm: false },
    path: 'direct',
  },
  { name: 'direct 3x3 stride 2', k: 3, stride: 2, pad: 1, cin: 24, size: 9, options: { gemm: false }, path: 'direct' },
  { name: 'taps 3x3 stride 2', k: 3, stride: 2, pad: 1, cin: 24, size: 9, options: {}, path: 'taps' },
  { name: '1x1', k: 1, stride: 1, pad: 0, cin: 40, size: 6, options: {}, path: 'gemm' },
  { name: '1x1 stride 2', k: 1, stride: 2, pad: 0, cin: 40, size: 11, options: {}, path: 'gemm' },
  { name: '7x7 stem (patches)', k: 7, stride: 2, pad: 3, cin: 3, size: 12, options: {}, path: 'patches' },
  { name: 'Winograd F(4x4)', k: 3, stride: 1, pad: 1, cin: 16, size: 8, options: {}, path: 'winograd', tile: 4 },
  { name: 'Winograd F(2x2)', k: 3, stride: 1, pad: 1, cin: 16, size: 5, options: {}, path: 'winograd', tile: 2 },
];

for (const c of TIE_CONVS) {
  test(`conv, ${c.name}: outputs exactly on .5 round half to even, as the reference does`, async () => {
    const rng = mulberry32(31);
    const cout = 12;
    const x = unitTensor(c.size, c.size, c.cin, 100);
    const out = outSize(c.size, c.k, c.stride, c.pad);
    const y = unitTensor(out, out, cout, 128);
    const conv: QuantLayer & { kind: 'conv' } = {
      ...convGeometry('ties', c.cin, cout, { k: c.k, stride: c.stride, pad: c.pad }),
      relu: false,
      weight: Int8Array.from({ length: cout * c.k * c.k * c.cin }, () => int(rng, -2, 2)),
      bias: Int32Array.from({ length: cout }, () => int(rng, -3, 3)),
      multiplier: Float32Array.from({ length: cout }, (_, o) => TIE_MULTIPLIERS[o % 3]),
    };
    const input = nearZeroPoint(rng, c.size * c.size * c.cin, x.zeroPoint);
    // The accumulators themselves, through the reference with multiplier 1 (|acc| stays under 128).
    const accumulators = [
      ...convRef(input, x, x.zeroPoint, { ...conv, multiplier: new Float32Array(cout).fill(1) }, 128),
    ].map((v) => v - 128);
    assertTiesCovered(
      accumulators.map((acc, i) => acc * conv.multiplier[i % cout]),
      c.name,
    );
    const net = await runNetwork([x, y], [conv], input, c.options);
    assert.is(net.convPaths()[0], c.path);
    if (c.tile) assert.is(net.winogradPlan(0)?.tile, c.tile);
    assert.equal(net.readTensor(1), convRef(input, x, x.zeroPoint, conv, y.zeroPoint));
    net.close();
  });
}

test('add: sums exactly on .5 round half to even, as the reference does', async () => {
  const rng = mulberry32(32);
  const c = 20,
    h = 6,
    w = 6;
  const x = unitTensor(h, w, c, 90);
  // The branch is x − zx + bias[c] exactly (identity 1x1 conv, multiplier 1): b − zb has the parity of x − zx + bias[c].
  const branch = unitTensor(h, w, c, 140);
  const identity: QuantLayer = {
    ...convGeometry('identity', c, c),
    relu: false,
    weight: Int8Array.from({ length: c * c }, (_, i) => (Math.floor(i / c) === i % c ? 1 : 0)),
    bias: Int32Array.from({ length: c }, (_, o) => (o % 7) - 3),
    multiplier: new Float32Array(c).fill(1),
  };
  const sum = unitTensor(h, w, c, 128);
  for (const [multiplierA, multiplierB] of [
    [0.5, 0.5],
    [0.5, 1.5],
    [2.5, 0.5],
  ]) {
    const add: QuantLayer = {
      kind: 'add',
      name: 'add',
      inputs: [0, 1],
      output: 2,
      relu: false,
      multiplierA,
      multiplierB,
    };
    const input = nearZeroPoint(rng, h * w * c, x.zeroPoint, 2);
    const net = await runNetwork([x, branch, sum], [identity, add], input);
    const b = net.readTensor(1);
    const exact = [...input].map((a, i) => (a - x.zeroPoint) * multiplierA + (b[i] - branch.zeroPoint) * multiplierB);
    assertTiesCovered(exact, `add ${multiplierA}, ${multiplierB}`);
    assert.equal(
      net.readTensor(2),
      addRef(input, x.zeroPoint, b, branch.zeroPoint, multiplierA, multiplierB, sum.zeroPoint, false),
    );
    net.close();
  }
});

test('affine: offsets of ±0.5 and ±1.5 land every output on .5, rounded half to even as the reference does', async () => {
  const rng = mulberry32(33);
  const c = 24,
    h = 5,
    w = 5;
  const x = unitTensor(h, w, c, 77);
  const y = unitTensor(h, w, c, 128);
  const multiplier = Float32Array.from({ length: c }, (_, i) => [1, -1, 2][i % 3]);
  const offset = Float32Array.from({ length: c }, (_, i) => [0.5, -0.5, 1.5, -1.5][i % 4]);
  const layer: QuantLayer = {
    kind: 'affine',
    name: 'norm',
    input: 0,
    output: 1,
    channels: c,
    relu: false,
    multiplier,
    offset,
  };
  const input = nearZeroPoint(rng, h * w * c, x.zeroPoint, 3);
  assertTiesCovered(
    [...input].map((q, i) => (q - x.zeroPoint) * multiplier[i % c] + offset[i % c]),
    'affine',
  );
  const net = await runNetwork([x, y], [layer], input);
  assert.equal(net.readTensor(1), affineRef(input, c, x.zeroPoint, multiplier, offset, y.zeroPoint, false));
  net.close();
});

test('gap: sums of 4 mod 8 times 1/8 land on .5 and round half to even, as the reference does', async () => {
  // Over a 2x2 map, channel ch holds zx + sums[ch] / 4 at each pixel: its sum is sums[ch].
  const sums = [-20, -12, -4, 4, 12, 20, 28, -28, 0, 8, -8, 36, 44, -36, 16, 24];
  const c = sums.length,
    zx = 120;
  const x = unitTensor(2, 2, c, zx);
  const y = unitTensor(1, 1, c, 128);
  const input = Uint8Array.from({ length: 4 * c }, (_, i) => zx + sums[i % c] / 4);
  const multiplier = 0.125;
  assertTiesCovered(
    sums.map((s) => s * multiplier),
    'gap',
  );
  const got = await runOneLayer([x, y], { kind: 'gap', name: 'gap', input: 0, output: 1, multiplier }, input);
  assert.equal(got, gapRef(input, x, zx, multiplier, y.zeroPoint));
});

// Threads race wherever a slice writes a byte of another slice's output. Deterministically: each
// part, run alone on an output full of a sentinel, must change bytes no other part changes.
test('max and average pool: each of 3 parts writes only its own pixels, at channel counts that are not multiples of 16', async () => {
  const heap = createMemory(1 << 20, false);
  const kernels = await instantiateKernels(await kernelModule(false), heap);
  const rng = mulberry32(23);
  for (const kernel of ['maxpool', 'avgpool'] as const) {
    for (const c of [1, 5, 17, 24, 40]) {
      const h = int(rng, 6, 11),
        w = int(rng, 6, 11);
      const [outH, outW] = [Math.ceil(h / 2), Math.ceil(w / 2)];
      const input = kernels.heapBase(),
        output = input + 65536,
        span = outH * outW * c + 16;
      const view = new Uint8Array(heap.buffer);
      view.set(bytes(rng, h * w * c + 16), input);
      // A byte counts as written by a part if it differs from either of two sentinels after it runs.
      const writtenBy = (part: number) => {
        const changed = new Array<boolean>(span).fill(false);
        for (const sentinel of [0x00, 0xff]) {
          view.fill(sentinel, output, output + span);
          kernels[kernel](input, h, w, c, output, outH, outW, 2, 2, 0, part, 3, 0);
          view.subarray(output, output + span).forEach((v, i) => (changed[i] ||= v !== sentinel));
        }
        return changed;
      };
      const written = [0, 1, 2].map(writtenBy);
      for (let i = 0; i < span; i++) {
        const parts = written.filter((byPart) => byPart[i]).length;
        assert.ok(parts <= 1, `${kernel} c=${c} ${h}x${w}: byte ${i} written by ${parts} parts`);
        if (i < span - 16) assert.is(parts, 1, `${kernel} c=${c} ${h}x${w}: output byte ${i} written by no part`);
      }
    }
  }
});

test.run();
