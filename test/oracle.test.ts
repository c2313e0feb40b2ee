/**
 * The oracle checked against cases computed by hand from docs/ARCHITECTURE.md ("The exact int8
 * arithmetic"). Expected values are literals worked out in the comments, never recomputed with
 * the oracle's own helpers, so a mistake in the oracle cannot confirm itself.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { QuantLayer, QuantModel } from '../src/model/types.ts';
import { convGeometry } from './helpers/conv-layer.ts';
import {
  addRef,
  type ConvParams,
  convRef,
  fcRef,
  gapRef,
  maxpoolRef,
  requantize,
  rne,
  runQuantReference,
} from './oracle/int8-reference.ts';

const f32 = Math.fround;

function conv1x1(
  cin: number,
  cout: number,
  weight: number[],
  bias: number[],
  multiplier: number[],
  relu = false,
): QuantLayer & { kind: 'conv' } {
  return {
    ...convGeometry('conv', cin, cout),
    relu,
    weight: Int8Array.from(weight),
    bias: Int32Array.from(bias),
    multiplier: Float32Array.from(multiplier),
  };
}

/** A 1x1x1 conv whose accumulator is exactly `bias` (the input sits at its zero point). */
function requantViaConv(bias: number, multiplier: number, zo: number, relu = false): number {
  const layer = conv1x1(1, 1, [1], [bias], [multiplier], relu);
  return convRef(Uint8Array.of(50), { h: 1, w: 1, c: 1 }, 50, layer, zo)[0];
}

test('rne: ties go to the even neighbour, unlike Math.round', () => {
  assert.equal(rne(2.5), 2);
  assert.equal(rne(3.5), 4);
  assert.equal(rne(-2.5), -2);
  assert.equal(rne(-3.5), -4);
  assert.equal(rne(0.5), 0);
  assert.equal(rne(1.5), 2);
  assert.equal(rne(2.4999999), 2);
  assert.equal(rne(2.5000001), 3);
  assert.equal(rne(-2.5000001), -3);
  assert.equal(rne(7), 7);
  assert.equal(Math.round(2.5), 3, 'premise: Math.round would be wrong here');
});

test('conv 1x1 on a 1x1 input, by hand', () => {
  // x − zx = [10−5, 20−5, 30−5] = [5, 15, 25]
  // acc0 = 100 + 5·1 + 15·(−2) + 25·3 = 100 + 5 − 30 + 75 = 150;  y0 = 150·0.25 = 37.5 → 38
  // acc1 = −50 + 5·(−1) + 15·0 + 25·2 = −50 − 5 + 50 = −5;        y1 = −5·0.5 = −2.5 → −2
  const layer = conv1x1(3, 2, [1, -2, 3, -1, 0, 2], [100, -50], [0.25, 0.5]);
  const y = convRef(Uint8Array.of(10, 20, 30), { h: 1, w: 1, c: 3 }, 5, layer, 7);
  assert.equal([...y], [38 + 7, -2 + 7]);
});

test('conv weight layout is [cout][kh][kw][cin]', () => {
  // 1x2 kernel over a 1x2x2 input: taps (kx=0, i=0), (0,1), (1,0), (1,1) in that order.
  // acc = 100 + 3·1 + 4·10 + 5·100 + 6·(−100) = 100 + 3 + 40 + 500 − 600 = 43
  const layer: ConvParams = {
    kh: 1,
    kw: 2,
    stride: 1,
    pad: 0,
    cin: 2,
    cout: 1,
    relu: false,
    weight: Int8Array.of(1, 10, 100, -100),
    bias: Int32Array.of(100),
    multiplier: Float32Array.of(1),
  };
  const y = convRef(Uint8Array.of(3, 4, 5, 6), { h: 1, w: 2, c: 2 }, 0, layer, 0);
  assert.equal([...y], [43]);
});

test('conv 3x3 with padding: padded taps read zx and contribute nothing', () => {
  // 2x2 input, zx = 2, so X − zx = [[−1, 0], [1, 2]]. Kernel w[ky][kx] = 1..9 row-major.
  // Output (oy,ox) sees input (iy,ix) through w[iy − oy + 1][ix − ox + 1]:
  //   (0,0): −1·5 + 0·6 + 1·8 + 2·9 = 21     (0,1): −1·4 + 0·5 + 1·7 + 2·8 = 19
  //   (1,0): −1·2 + 0·3 + 1·5 + 2·6 = 15     (1,1): −1·1 + 0·2 + 1·4 + 2·5 = 13
  // Had padding been read as 0 instead of zx, each of the 5 padded taps would add −2·w.
  const layer: ConvParams = {
    kh: 3,
    kw: 3,
    stride: 1,
    pad: 1,
    cin: 1,
    cout: 1,
    relu: false,
    weight: Int8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9),
    bias: Int32Array.of(0),
    multiplier: Float32Array.of(1),
  };
  const y = convRef(Uint8Array.of(1, 2, 3, 4), { h: 2, w: 2, c: 1 }, 2, layer, 0);
  assert.equal([...y], [21, 19, 15, 13]);
});

test('conv 3x3 stride 2 pad 1: output size and window origin', () => {
  // 5x5 input, X − zx = row·5 + col (zx = 0); all-ones kernel sums the in-bounds 3x3 window.
  // out = floor((5 + 2 − 3)/2) + 1 = 3; windows centred on input rows/cols 0, 2, 4.
  //   (0,0): rows 0..1 × cols 0..1 = 0+1+5+6 = 12
  //   (1,1): rows 1..3 × cols 1..3 = 9 · 12 = 108
  //   (2,2): rows 3..4 × cols 3..4 = 18+19+23+24 = 84
  //   (0,1): rows 0..1 × cols 1..3 = 1+2+3+6+7+8 = 27
  const x = Uint8Array.from({ length: 25 }, (_, i) => i);
  const layer: ConvParams = {
    kh: 3,
    kw: 3,
    stride: 2,
    pad: 1,
    cin: 1,
    cout: 1,
    relu: false,
    weight: new Int8Array(9).fill(1),
    bias: Int32Array.of(0),
    multiplier: Float32Array.of(1),
  };
  const y = convRef(x, { h: 5, w: 5, c: 1 }, 0, layer, 0);
  assert.is(y.length, 9);
  assert.is(y[0], 12);
  assert.is(y[1], 27);
  assert.is(y[4], 108);
  assert.is(y[8], 84);
});

test('requantization rounds ties to even (2.5 → 2, 3.5 → 4, −2.5 → −2)', () => {
  const zo = 10;
  assert.is(requantViaConv(5, 0.5, zo), 2 + zo);
  assert.is(requantViaConv(7, 0.5, zo), 4 + zo);
  assert.is(requantViaConv(-5, 0.5, zo), -2 + zo);
  assert.is(requantViaConv(-7, 0.5, zo), -4 + zo);
  assert.is(requantViaConv(1, 0.5, zo), 0 + zo);
});

test('requantization clamps to 0..255, and to zo..255 with ReLU', () => {
  const zo = 100;
  assert.is(requantViaConv(200, 1, zo), 255); // 300 → 255
  assert.is(requantViaConv(-130, 1, zo), 0); // −30 → 0
  assert.is(requantViaConv(-30, 1, zo), 70); // in range without ReLU
  assert.is(requantViaConv(-30, 1, zo, true), 100); // ReLU: real value 0 is q = zo
  assert.is(requantViaConv(-1, 1, zo, true), 100);
  assert.is(requantViaConv(5, 1, zo, true), 105);
  assert.is(requantViaConv(200, 1, zo, true), 255);
  // f32 overflow: y = +∞ and −∞ still clamp
  assert.is(requantViaConv(2 ** 30, 3e38, zo), 255);
  assert.is(requantViaConv(-(2 ** 30), 3e38, zo), 0);
});

test('requantization rounds the product to f32 before rounding to an integer', () => {
  // M = f32(1/6) = 0.16666667163372040. 15·M = 2.50000007... in exact arithmetic (→ 3),
  // but the nearest f32 is 2.5 exactly, which rounds to even → 2.
  const m1 = f32(1 / 6);
  assert.ok(15 * m1 > 2.5, 'premise: the exact product is above the tie');
  assert.is(requantViaConv(15, m1, 0), 2);
  // M = f32(0.7) = 0.69999998807907104. 5·M = 3.4999999403... exactly (→ 3), f32 gives 3.5 → 4.
  const m2 = f32(0.7);
  assert.ok(5 * m2 < 3.5, 'premise: the exact product is below the tie');
  assert.is(requantViaConv(5, m2, 0), 4);
});

test('requantization rounds the accumulator to f32 first', () => {
  // acc = 2^24 + 1 is not an f32; f32(acc) = 2^24. M = 5·2^−25 (exact in f32).
  // f32(acc)·M = 2.5 → 2, whereas acc·M = 2.5 + 5·2^−25 would round to 3.
  const m = 5 * 2 ** -25;
  assert.is(f32(m), m);
  assert.is(requantViaConv(2 ** 24 + 1, m, 0), 2);
  assert.is(requantize(2 ** 24 + 1, m, 0, 0), 2);
});

test('add with different input scales', () => {
  // Ma = 0.5, Mb = 0.25, za = 90, zb = 10, zo = 3
  //   [0]: (100−90)·0.5 + (20−10)·0.25  = 5 + 2.5    = 7.5  → 8   → 11
  //   [1]: (50−90)·0.5  + (200−10)·0.25 = −20 + 47.5 = 27.5 → 28  → 31
  //   [2]: (80−90)·0.5  + (12−10)·0.25  = −5 + 0.5   = −4.5 → −4  → −1 → 0 (ReLU: 3)
  //   [3]: (255−90)·0.5 + (255−10)·0.25 = 82.5+61.25 = 143.75 → 144 → 147
  const a = Uint8Array.of(100, 50, 80, 255);
  const b = Uint8Array.of(20, 200, 12, 255);
  assert.equal([...addRef(a, 90, b, 10, 0.5, 0.25, 3, false)], [11, 31, 0, 147]);
  assert.equal([...addRef(a, 90, b, 10, 0.5, 0.25, 3, true)], [11, 31, 3, 147]);
});

test('add rounds each product to f32', () => {
  // Same pair as the conv case: (5)·f32(0.7) is 3.49999994 exactly but 3.5 in f32 → 4.
  const a = Uint8Array.of(15);
  const b = Uint8Array.of(40);
  assert.equal([...addRef(a, 10, b, 40, f32(0.7), 0.25, 0, false)], [4]);
});

test('gap: integer sum over the plane, then one requantization', () => {
  // 2x2x2 input, zx = 10, M = 1/8 (e.g. sx/sy = 0.5 over 4 pixels), zo = 5
  //   ch0: 10, 20, 30, 40 → sum 0+10+20+30 = 60;  60/8 = 7.5 → 8 → 13
  //   ch1: 0, 0, 0, 1   → sum −10−10−10−9 = −39; −39/8 = −4.875 → −5 → 0
  const x = Uint8Array.of(10, 0, 20, 0, 30, 0, 40, 1);
  assert.equal([...gapRef(x, { h: 2, w: 2, c: 2 }, 10, 1 / 8, 5)], [13, 0]);
});

test('fc logits are f32(f32(acc)·M)', () => {
  // X − zx = [2, −2, 0]
  //   acc0 = 10 + 2·3 − 2·1 + 0·5 = 14;   logit0 = 14·0.5 = 7
  //   acc1 = −1 − 2·4 − 2·2 + 0·7 = −13;  logit1 = f32(−13·f32(0.1)) = −1.3000000715255737
  // (f32(0.1) = 0.10000000149; the product −1.30000001937 rounds to the f32 above, which is
  // not the f32 nearest to −1.3, −1.2999999523.)
  const logits = fcRef(Uint8Array.of(12, 8, 10), 10, {
    cin: 3,
    cout: 2,
    weight: Int8Array.of(3, 1, 5, -4, 2, 7),
    bias: Int32Array.of(10, -1),
    multiplier: Float32Array.of(0.5, 0.1),
  });
  assert.is(logits[0], 7);
  assert.is(logits[1], -1.3000000715255737);
  assert.is.not(logits[1], f32(-1.3));
});

test('maxpool: only in-bounds values compete, padding never wins', () => {
  // 4x4x2 input, k3 s2 p1 → 2x2. Values are tiny so any padding value > 0 (e.g. a zero point)
  // would win; a window whose in-bounds values are all 0 must give 0.
  // ch0:  1 0 2 3     windows (rows × cols in bounds):
  //       0 0 1 0       (0,0): r0..1 c0..1 → max(1,0,0,0) = 1
  //       3 1 0 2       (0,1): r0..1 c1..3 → max(0,2,3,0,1,0) = 3
  //       0 2 1 0       (1,0): r1..3 c0..1 → max(0,0,3,1,0,2) = 3
  //                     (1,1): r1..3 c1..3 → max(0,1,0,1,0,2,2,1,0) = 2
  // ch1: all 0 except (3,3) = 5 → [0, 0, 0, 5]
  const ch0 = [1, 0, 2, 3, 0, 0, 1, 0, 3, 1, 0, 2, 0, 2, 1, 0];
  const x = new Uint8Array(32);
  ch0.forEach((v, i) => (x[i * 2] = v));
  x[15 * 2 + 1] = 5;
  const y = maxpoolRef(x, { h: 4, w: 4, c: 2 }, { k: 3, stride: 2, pad: 1 });
  assert.equal([...y], [1, 0, 3, 0, 3, 0, 2, 5]);
});

function tinyModel(): QuantModel {
  return {
    architecture: 'tiny',
    preprocessing: { resize: 1, crop: 1, colorOrder: 'RGB', pixelScale: 1, mean: [0, 0, 0], std: [1, 1, 1] },
    labels: ['a', 'b'],
    tensors: [
      { h: 1, w: 1, c: 2, scale: 1, zeroPoint: 10 },
      { h: 1, w: 1, c: 2, scale: 1, zeroPoint: 5 },
      { h: 1, w: 1, c: 2, scale: 1, zeroPoint: 5 },
      { h: 1, w: 1, c: 2, scale: 1, zeroPoint: 0 },
      { h: 1, w: 1, c: 2, scale: 1, zeroPoint: 2 },
      { h: 1, w: 1, c: 2, scale: 1, zeroPoint: 0 },
    ],
    layers: [
      conv1x1(2, 2, [2, 1, 1, 3], [0, 0], [1, 1], true),
      { kind: 'maxpool', name: 'pool', input: 1, output: 2, k: 1, stride: 1, pad: 0 },
      { kind: 'add', name: 'add', inputs: [1, 2], output: 3, relu: false, multiplierA: 0.5, multiplierB: 0.25 },
      { kind: 'gap', name: 'gap', input: 3, output: 4, multiplier: 0.5 },
      {
        kind: 'fc',
        name: 'fc',
        input: 4,
        output: 5,
        cin: 2,
        cout: 2,
        weight: Int8Array.of(1, 2, 3, -1),
        bias: Int32Array.of(1, 0),
        multiplier: Float32Array.of(0.25, 1),
      },
    ],
  };
}

test('runQuantReference: a tiny network, by hand, each zero point from model.tensors', () => {
  // t0 = [14, 6], z=10        → [4, −4]
  // conv ReLU, z_out = 5       acc = [2·4 + 1·(−4), 1·4 + 3·(−4)] = [4, −8] → [9, −3→5 (ReLU)]
  // maxpool k1                 t2 = [9, 5]
  // add z 5/5 → 0              [(4)·0.5 + (4)·0.25, 0 + 0] = [3, 0]
  // gap 1x1, M 0.5, z_out 2    [1.5 → 2, 0] + 2 = [4, 2]
  // fc, zx 2                   X − zx = [2, 0]; acc = [1 + 2, 6] → logits [0.75, 6]
  const logits = runQuantReference(tinyModel(), Uint8Array.of(14, 6));
  assert.equal([...logits], [0.75, 6]);
});

test('runQuantReference rejects a network that does not end in fc', () => {
  const model = tinyModel();
  model.layers.pop();
  assert.throws(() => runQuantReference(model, Uint8Array.of(14, 6)), /not fc/);
});

test('runQuantReference rejects a tensor shape that disagrees with the layer', () => {
  const model = tinyModel();
  model.tensors[1] = { ...model.tensors[1], c: 3 };
  assert.throws(() => runQuantReference(model, Uint8Array.of(14, 6)), /shape/);
});

test.run();
