// Small networks for the kernel tests: seeded random tensors and conv layers, and a runner that
// places layers in one wasm Network (any NetworkOptions, so any kernel build) and runs them.

import { packAffine, packWeights } from '../../src/format/layout.ts';
import type { LayerHeader, NetworkHeader, QuantLayer, QuantTensor } from '../../src/model/types.ts';
import { outSize } from '../../src/model/types.ts';
import { Network, type NetworkOptions } from '../../src/runtime/network.ts';
import { convGeometry } from './conv-layer.ts';

export type Rng = () => number;
export const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
export const pick = <T>(rng: Rng, xs: T[]): T => xs[Math.floor(rng() * xs.length)];
export const bytes = (rng: Rng, n: number) => Uint8Array.from({ length: n }, () => int(rng, 0, 255));
export const tensor = (h: number, w: number, c: number, rng: Rng): QuantTensor => ({
  h,
  w,
  c,
  scale: 0.01 + rng(),
  zeroPoint: int(rng, 0, 255),
});
export const channelCount = (rng: Rng) =>
  rng() < 0.2 ? pick(rng, [3, 16, 64, 128, 256, 512]) : int(rng, 1, rng() < 0.7 ? 80 : 520);

/**
 * Places a small network in wasm and runs it on `input`; returns the network for reading tensors.
 * One thread unless `options` ask for more; then every kernel call is cut into as many chunks as
 * the threads allow, however small (minChunkWork 1), so that the slicing is tested on small shapes.
 */
export async function runNetwork(
  tensors: QuantTensor[],
  layers: QuantLayer[],
  input: Uint8Array,
  options: NetworkOptions = {},
): Promise<Network> {
  const header: NetworkHeader = {
    architecture: 'test',
    labels: [],
    tensors,
    layers: layers.map(headerOf),
    preprocessing: { resize: 1, crop: 1, colorOrder: 'RGB', pixelScale: 1, mean: [0, 0, 0], std: [1, 1, 1] },
  };
  const payloads = layers.map(payloadOf(tensors));
  const net = await Network.create(
    header,
    payloads.map((p) => p.length),
    { threads: 1, minChunkWork: 1, ...options },
  );
  payloads.forEach((p, i) => net.setParameters(i, p));
  net.setInput(input);
  header.layers.forEach((l, i) => net.runLayer(l, i));
  return net;
}

export async function runOneLayer(
  tensors: QuantTensor[],
  layer: QuantLayer,
  input: Uint8Array,
  options: NetworkOptions = {},
): Promise<Uint8Array> {
  const net = await runNetwork(tensors, [layer], input, options);
  const out = net.readTensor(layer.output);
  net.close();
  return out;
}

function payloadOf(tensors: QuantTensor[]) {
  return (layer: QuantLayer): Uint8Array => {
    if (layer.kind === 'conv' || layer.kind === 'fc') return packWeights(layer, tensors[layer.input].zeroPoint);
    return layer.kind === 'affine' ? packAffine(layer) : new Uint8Array(0);
  };
}

function headerOf(layer: QuantLayer): LayerHeader {
  if (layer.kind === 'conv' || layer.kind === 'fc') {
    const { weight: _w, bias: _b, multiplier: _m, ...geometry } = layer;
    return geometry;
  }
  if (layer.kind === 'affine') {
    const { multiplier: _m, offset: _o, ...geometry } = layer;
    return geometry;
  }
  return layer;
}

export function randomConv(rng: Rng) {
  const [k, stride, pad] = pick(rng, [
    [7, 2, 3],
    [3, 1, 1],
    [3, 2, 1],
    [1, 1, 0],
    [1, 2, 0],
    [3, 1, 0],
    [5, 2, 2],
    [2, 2, 0],
  ]);
  const cin = channelCount(rng),
    cout = rng() < 0.3 ? int(rng, 1, 9) : channelCount(rng);
  const h = int(rng, Math.max(1, k - 2 * pad), 13),
    w = int(rng, Math.max(1, k - 2 * pad), 13);
  const x = tensor(h, w, cin, rng);
  const y = tensor(outSize(h, k, stride, pad), outSize(w, k, stride, pad), cout, rng);
  const weight = Int8Array.from({ length: cout * k * k * cin }, () => int(rng, -127, 127));
  // Scale the multiplier to the accumulator's spread so outputs cover 0..255 and both clamps.
  const spread = 74 * 73 * Math.sqrt(k * k * cin);
  const multiplier = Float32Array.from({ length: cout }, () => (40 + 200 * rng()) / spread);
  const bias = Int32Array.from({ length: cout }, () => int(rng, -spread, spread));
  const layer: QuantLayer = {
    ...convGeometry('conv', cin, cout, { k, stride, pad }),
    relu: rng() < 0.5,
    weight,
    bias,
    multiplier,
  };
  return { x, y, layer };
}

export function randomFc(rng: Rng) {
  const cin = channelCount(rng),
    cout = int(rng, 1, 1000);
  const x = tensor(1, 1, cin, rng);
  const weight = Int8Array.from({ length: cout * cin }, () => int(rng, -127, 127));
  const bias = Int32Array.from({ length: cout }, () => int(rng, -1e6, 1e6));
  const multiplier = Float32Array.from({ length: cout }, () => Math.fround(1e-4 * rng()));
  const layer: QuantLayer & { kind: 'fc' } = {
    kind: 'fc',
    name: 'fc',
    input: 0,
    output: 1,
    cin,
    cout,
    weight,
    bias,
    multiplier,
  };
  const tensors: QuantTensor[] = [x, { h: 1, w: 1, c: cout, scale: 1, zeroPoint: 0 }];
  return { x, layer, tensors };
}
