import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomArray, seededRandom } from '../src/builder/random.ts';
import type { FloatLayer, FloatModel, Shape } from '../src/model/types.ts';
import { outSize } from '../src/model/types.ts';
import { runFloat } from '../src/reference/fp32.ts';
import { convGeometry } from './helpers/conv-layer.ts';

/** A model whose layers are all given; tensor shapes are listed explicitly. */
function model(tensors: Shape[], layers: FloatLayer[]): FloatModel {
  const preprocessing = {
    resize: 1,
    crop: 1,
    colorOrder: 'RGB' as const,
    pixelScale: 1,
    mean: [0, 0, 0] as [number, number, number],
    std: [1, 1, 1] as [number, number, number],
  };
  return { architecture: 'test', preprocessing, labels: [], tensors, layers };
}

const f32 = (values: number[]) => Float32Array.from(values);

function conv(
  geometry: Partial<Extract<FloatLayer, { kind: 'conv' }>> & {
    weight: Float32Array;
    bias: Float32Array;
    cin: number;
    cout: number;
    kh: number;
  },
): FloatLayer {
  return {
    kind: 'conv',
    name: 'conv',
    input: 0,
    output: 1,
    kw: geometry.kh,
    stride: 1,
    pad: 0,
    relu: false,
    ...geometry,
  };
}

function closeTo(actual: Float32Array, expected: ArrayLike<number>, tolerance = 1e-5): void {
  assert.is(actual.length, expected.length, 'length');
  for (let i = 0; i < actual.length; i++) {
    const bound = tolerance * Math.max(1, Math.abs(expected[i]));
    if (!(Math.abs(actual[i] - expected[i]) <= bound)) assert.unreachable(`[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test('1x1 conv mixes channels per pixel, adds bias', () => {
  // 1x2 image, 2 channels: pixel0 = (1, 2), pixel1 = (3, -4).
  const layer = conv({ kh: 1, cin: 2, cout: 2, weight: f32([1, 10, -1, 0.5]), bias: f32([0.5, 0]) });
  const m = model(
    [
      { h: 1, w: 2, c: 2 },
      { h: 1, w: 2, c: 2 },
    ],
    [layer],
  );
  // o0 = x0 + 10 x1 + 0.5, o1 = -x0 + 0.5 x1
  assert.equal([...runFloat(m, f32([1, 2, 3, -4]))], [21.5, 0, -36.5, -5]);
});

test('3x3 conv, pad 1, stride 1: zero padding at the border', () => {
  const weight = f32([1, 1, 1, 1, 1, 1, 1, 1, 1]);
  const layer = conv({ kh: 3, pad: 1, cin: 1, cout: 1, weight, bias: f32([0]) });
  const m = model(
    [
      { h: 3, w: 3, c: 1 },
      { h: 3, w: 3, c: 1 },
    ],
    [layer],
  );
  // Input 1..9 row-major; each output is the sum of the in-bounds 3x3 neighbourhood.
  const out = runFloat(m, f32([1, 2, 3, 4, 5, 6, 7, 8, 9]));
  assert.equal([...out], [12, 21, 16, 27, 45, 33, 24, 39, 28]);
});

test('3x3 conv, pad 1, stride 2, asymmetric kernel, bias and ReLU', () => {
  // Kernel picks (top-left) - (bottom-right): out = x[y-1][x-1] - x[y+1][x+1] - 5, then ReLU.
  const weight = f32([1, 0, 0, 0, 0, 0, 0, 0, -1]);
  const layer = conv({ kh: 3, pad: 1, stride: 2, cin: 1, cout: 1, weight, bias: f32([-5]), relu: true });
  const m = model(
    [
      { h: 3, w: 3, c: 1 },
      { h: 2, w: 2, c: 1 },
    ],
    [layer],
  );
  const x = [1, 2, 3, 4, 5, 6, 7, 8, 90];
  // (0,0): 0 - x[1][1] - 5 = -10 -> 0; (0,2): 0 - 0 - 5 -> 0; (2,0): 0 - 0 - 5 -> 0; (2,2): x[1][1] - 0 - 5 = 0.
  assert.equal([...runFloat(m, f32(x))], [0, 0, 0, 0]);
  const noRelu = model(m.tensors, [{ ...layer, relu: false } as FloatLayer]);
  assert.equal([...runFloat(noRelu, f32(x))], [-10, -5, -5, 0]);
});

test('maxpool: padding never wins, even over negative values', () => {
  const layer: FloatLayer = { kind: 'maxpool', name: 'pool', input: 0, output: 1, k: 3, stride: 2, pad: 1 };
  const m = model(
    [
      { h: 3, w: 3, c: 2 },
      { h: 2, w: 2, c: 2 },
    ],
    [layer],
  );
  // channel 0: -1..-9 row-major; channel 1: 1..9.
  const x = new Float32Array(18);
  for (let i = 0; i < 9; i++) [x[2 * i], x[2 * i + 1]] = [-(i + 1), i + 1];
  // Windows cover rows/cols {0,1}, {1,2}: maxima of channel 0 are the top-left-most values.
  assert.equal([...runFloat(m, x)], [-1, 5, -2, 6, -4, 8, -5, 9]);
});

test('add with and without ReLU', () => {
  const shape = { h: 1, w: 1, c: 3 };
  const split: FloatLayer = conv({
    kh: 1,
    cin: 3,
    cout: 3,
    weight: f32([-2, 0, 0, 0, -2, 0, 0, 0, -2]),
    bias: f32([0, 0, 0]),
  });
  for (const relu of [false, true]) {
    const add: FloatLayer = { kind: 'add', name: 'add', inputs: [0, 1], output: 2, relu };
    const m = model([shape, shape, shape], [split, add]);
    // x + (-2x) = -x
    assert.equal([...runFloat(m, f32([1, -2, 0.5]))], relu ? [0, 2, 0] : [-1, 2, -0.5]);
  }
});

test('gap averages each channel over all pixels', () => {
  const layer: FloatLayer = { kind: 'gap', name: 'gap', input: 0, output: 1 };
  const m = model(
    [
      { h: 2, w: 2, c: 2 },
      { h: 1, w: 1, c: 2 },
    ],
    [layer],
  );
  assert.equal([...runFloat(m, f32([1, 10, 2, 20, 3, 30, 6, 40]))], [3, 25]);
});

test('fc: weights [cout][cin] plus bias, no ReLU', () => {
  const layer: FloatLayer = {
    kind: 'fc',
    name: 'fc',
    input: 0,
    output: 1,
    cin: 3,
    cout: 2,
    weight: f32([1, 2, 3, -1, 0, 0]),
    bias: f32([0.5, -1]),
  };
  const m = model(
    [
      { h: 1, w: 1, c: 3 },
      { h: 1, w: 1, c: 2 },
    ],
    [layer],
  );
  assert.equal([...runFloat(m, f32([1, 1, 2]))], [9.5, -2]);
});

test('observe sees every tensor once, in execution order, with final values', () => {
  const layers: FloatLayer[] = [
    { kind: 'gap', name: 'gap', input: 0, output: 1 },
    { kind: 'fc', name: 'fc', input: 1, output: 2, cin: 1, cout: 1, weight: f32([2]), bias: f32([1]) },
  ];
  const m = model(
    [
      { h: 1, w: 2, c: 1 },
      { h: 1, w: 1, c: 1 },
      { h: 1, w: 1, c: 1 },
    ],
    layers,
  );
  const seen: [number, number[]][] = [];
  const logits = runFloat(m, f32([1, 3]), (t, data) => seen.push([t, [...data]]));
  assert.equal(seen, [
    [0, [1, 3]],
    [1, [2]],
    [2, [5]],
  ]);
  assert.equal([...logits], [5]);
});

test('a wrong-sized input is refused', () => {
  const m = model(
    [
      { h: 1, w: 2, c: 1 },
      { h: 1, w: 1, c: 1 },
    ],
    [{ kind: 'gap', name: 'gap', input: 0, output: 1 }],
  );
  assert.throws(() => runFloat(m, f32([1, 2, 3])), /expected 1x2x1/);
});

// ---- against a deliberately naive implementation: every tap, every bound checked on its own ----

function naiveLayer(tensors: Shape[], layer: FloatLayer, values: Float32Array[]): Float32Array {
  const at = (t: number, y: number, x: number, c: number) => values[t][(y * tensors[t].w + x) * tensors[t].c + c];
  const out = tensors[layer.output];
  const result = new Float32Array(out.h * out.w * out.c);
  for (let y = 0; y < out.h; y++) {
    for (let x = 0; x < out.w; x++) {
      for (let o = 0; o < out.c; o++) {
        let v = 0;
        if (layer.kind === 'conv') {
          v = layer.bias[o];
          const inp = tensors[layer.input];
          for (let ky = 0; ky < layer.kh; ky++) {
            for (let kx = 0; kx < layer.kw; kx++) {
              for (let i = 0; i < layer.cin; i++) {
                const iy = y * layer.stride - layer.pad + ky;
                const ix = x * layer.stride - layer.pad + kx;
                if (iy < 0 || iy >= inp.h || ix < 0 || ix >= inp.w) continue;
                v += at(layer.input, iy, ix, i) * layer.weight[((o * layer.kh + ky) * layer.kw + kx) * layer.cin + i];
              }
            }
          }
          if (layer.relu) v = Math.max(0, v);
        } else if (layer.kind === 'maxpool') {
          v = -Infinity;
          const inp = tensors[layer.input];
          for (let ky = 0; ky < layer.k; ky++) {
            for (let kx = 0; kx < layer.k; kx++) {
              const iy = y * layer.stride - layer.pad + ky;
              const ix = x * layer.stride - layer.pad + kx;
              if (iy >= 0 && iy < inp.h && ix >= 0 && ix < inp.w) v = Math.max(v, at(layer.input, iy, ix, o));
            }
          }
        } else if (layer.kind === 'add') {
          v = at(layer.inputs[0], y, x, o) + at(layer.inputs[1], y, x, o);
          if (layer.relu) v = Math.max(0, v);
        } else if (layer.kind === 'gap') {
          const inp = tensors[layer.input];
          for (let iy = 0; iy < inp.h; iy++) for (let ix = 0; ix < inp.w; ix++) v += at(layer.input, iy, ix, o);
          v /= inp.h * inp.w;
        } else if (layer.kind === 'avgpool') {
          const inp = tensors[layer.input];
          let n = 0;
          for (let ky = 0; ky < layer.k; ky++) {
            for (let kx = 0; kx < layer.k; kx++) {
              const iy = y * layer.stride - layer.pad + ky;
              const ix = x * layer.stride - layer.pad + kx;
              if (iy >= 0 && iy < inp.h && ix >= 0 && ix < inp.w) {
                v += at(layer.input, iy, ix, o);
                n++;
              }
            }
          }
          v /= n;
        } else if (layer.kind === 'affine') {
          v = at(layer.input, y, x, o) * layer.scale[o] + layer.shift[o];
          if (layer.relu) v = Math.max(0, v);
        } else {
          v = layer.bias[o];
          for (let i = 0; i < layer.cin; i++) v += values[layer.input][i] * layer.weight[o * layer.cin + i];
        }
        result[(y * out.w + x) * out.c + o] = v;
      }
    }
  }
  return result;
}

/** conv(k, stride, pad) -> maxpool -> conv -> add(skip) -> gap -> fc, with random sizes. */
function randomGraph(seed: number): FloatModel {
  const random = seededRandom(seed);
  const int = (lo: number, hi: number) => Math.floor(random.uniform(lo, hi + 1));
  const weights = (n: number) => randomArray(n, () => random.normal(0, 0.5));
  const k = [1, 3, 5, 7][int(0, 3)];
  const stride = int(1, 3);
  const pad = int(0, Math.floor(k / 2));
  const size = int(k, 13);
  const [cin, c] = [int(1, 5), int(1, 9)];
  const h1 = outSize(size, k, stride, pad);
  const h2 = outSize(h1, 3, 2, 1);
  const s = (h: number, ch: number): Shape => ({ h, w: h, c: ch });
  const classes = int(1, 7);
  const tensors = [s(size, cin), s(h1, c), s(h2, c), s(h2, c), s(h2, c), s(1, c), s(1, classes)];
  const layers: FloatLayer[] = [
    {
      ...convGeometry('c1', cin, c, { k, stride, pad }),
      relu: random.uniform(0, 1) < 0.5,
      weight: weights(c * k * k * cin),
      bias: weights(c),
    },
    { kind: 'maxpool', name: 'p', input: 1, output: 2, k: 3, stride: 2, pad: 1 },
    {
      ...convGeometry('c2', c, c, { k: 3, pad: 1, input: 2, output: 3 }),
      relu: false,
      weight: weights(c * 9 * c),
      bias: weights(c),
    },
    { kind: 'add', name: 'a', inputs: [2, 3], output: 4, relu: true },
    { kind: 'gap', name: 'g', input: 4, output: 5 },
    {
      kind: 'fc',
      name: 'fc',
      input: 5,
      output: 6,
      cin: c,
      cout: classes,
      weight: weights(classes * c),
      bias: weights(classes),
    },
  ];
  return model(tensors, layers);
}

test('matches a naive direct implementation on 50 random small graphs', () => {
  for (let seed = 1; seed <= 50; seed++) {
    const m = randomGraph(seed);
    const { h, w, c } = m.tensors[0];
    const random = seededRandom(1000 + seed);
    const input = randomArray(h * w * c, () => random.normal(0, 1));
    const observed: Float32Array[] = [];
    runFloat(m, input, (t, data) => (observed[t] = data));
    const naive: Float32Array[] = [input];
    for (const layer of m.layers) {
      naive[layer.output] = naiveLayer(m.tensors, layer, naive);
      closeTo(observed[layer.output], naive[layer.output]);
    }
  }
});

test.run();
