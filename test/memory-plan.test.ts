// The memory planner (src/runtime/memory-plan.ts) on every model shape of the tests: the tiny and
// ImageNet-sized ResNets and family members the builder makes, and the default model. The loader
// allocates exactly the plan it checked (fuzz.test: a plan over MAX_WASM_BYTES is refused); the
// plan's regions are disjoint and inside the memory; and the kernels (assembly/) stay inside the
// scratch sizes the planner gives them, run on every conv shape with guard bytes after each region.

import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mulberry32 } from '../src/builder/random.ts';
import { type ResnetDepth, type ResnetVariant, resnetFloat } from '../src/builder/resnet.ts';
import { CIN_BLOCK, payloadBytes, roundUp } from '../src/format/layout.ts';
import { readModel } from '../src/format/reader.ts';
import { writeModel } from '../src/format/writer.ts';
import type { FloatModel, NetworkHeader, QuantLayer, QuantModel } from '../src/model/types.ts';
import { SLACK } from '../src/runtime/arena.ts';
import {
  type ConvLayer,
  type ConvPath,
  convPath,
  gemmBlocking,
  patchRowBytes,
  patchRowsGemm,
  tapsDepth,
  type WinogradTile,
  winogradTiles,
} from '../src/runtime/conv-path.ts';
import { argumentList, type KernelArgs, type SlicedKernel } from '../src/runtime/kernels.ts';
import { MAX_WASM_BYTES, threadScratchBytes, winogradTileBytes } from '../src/runtime/memory-plan.ts';
import { loadModel } from '../src/runtime/model.ts';
import { Network, type NetworkOptions } from '../src/runtime/network.ts';
import { createMemory, instantiateKernels, type KernelExports, kernelModule } from '../src/runtime/wasm.ts';

const DEFAULT_MODEL = new URL('../weights/default.rnw', import.meta.url);

/** A builder network with int8 parameters of the right sizes (their values do not matter here). */
function quantized(float: FloatModel): QuantModel {
  const layers = float.layers.map((layer): QuantLayer => {
    switch (layer.kind) {
      case 'conv':
      case 'fc': {
        const { weight, bias: _b, ...geometry } = layer;
        const cout = layer.cout;
        return {
          ...geometry,
          weight: new Int8Array(weight.length).fill(1),
          bias: new Int32Array(cout),
          multiplier: new Float32Array(cout).fill(1e-3),
        } as QuantLayer;
      }
      case 'affine': {
        const { scale, shift: _s, ...geometry } = layer;
        return {
          ...geometry,
          multiplier: new Float32Array(scale.length).fill(1),
          offset: new Float32Array(scale.length),
        };
      }
      case 'add':
        return { ...layer, multiplierA: 0.5, multiplierB: 0.5 };
      case 'gap':
        return { ...layer, multiplier: 0.01 };
      default:
        return layer;
    }
  });
  const logits = float.layers.at(-1)!.output;
  const tensors = float.tensors.map((t, i) =>
    i === logits ? { ...t, scale: 1, zeroPoint: 0 } : { ...t, scale: 0.05, zeroPoint: 3 },
  );
  return { ...float, tensors, layers };
}

interface TestModel {
  name: string;
  file: Uint8Array;
}

function builderModel(depth: ResnetDepth, variant: ResnetVariant, inputSize: number): TestModel {
  const float = resnetFloat({ depth, variant, seed: 1, inputSize, numClasses: inputSize === 32 ? 10 : 20 });
  return { name: `ResNet-${depth} ${variant} at ${inputSize}`, file: writeModel(quantized(float)) };
}

/** Every model shape the tests use. */
function testModels(): TestModel[] {
  const tiny = (['v1', 'c', 'd', 'v2'] as const).map((variant) => builderModel(18, variant, 32));
  const imagenet = ([18, 34, 50] as const).map((depth) => builderModel(depth, 'v1', 224));
  const family = [
    builderModel(18, 'c', 224),
    builderModel(18, 'd', 224),
    builderModel(50, 'd', 224),
    builderModel(50, 'v2', 224),
  ];
  return [
    ...tiny,
    ...imagenet,
    ...family,
    { name: 'the default model', file: new Uint8Array(readFileSync(DEFAULT_MODEL)) },
  ];
}

const MODELS = testModels();

async function planned(header: NetworkHeader, options: NetworkOptions) {
  return (await Network.plan(header, header.layers.map(payloadBytes), options)).layout;
}

test('the loader allocates exactly the memory the planner measured from the header, on every model', async () => {
  for (const { name, file } of MODELS) {
    const { header } = readModel(file);
    const optionSets: NetworkOptions[] = [
      {},
      { winograd: false },
      ...(header.tensors[0].h <= 32 ? [{ threads: 2 }] : []),
    ];
    for (const options of optionSets) {
      const model = await loadModel(file, options);
      assert.is(
        model.footprint().wasmBytes,
        (await planned(header, options)).wasmBytes,
        `${name} ${JSON.stringify(options)}`,
      );
      model.dispose();
    }
  }
});

test('every plan keeps its regions apart and inside the memory', async () => {
  for (const { name, file } of MODELS) {
    const { header } = readModel(file);
    for (const threads of [1, 3]) {
      const layout = await planned(header, { threads });
      const arenaStart = Math.min(...layout.tensorOffsets);
      const arenaEnd = arenaStart + layout.arenaBytes;
      const params = header.layers.map((layer, i) => [layout.paramOffsets[i], payloadBytes(layer)]);
      const derived = [...layout.derivedOffsets].map(([i, at]) => [
        at,
        8 * roundUp((header.layers[i] as ConvLayer).cout, 4),
      ]);
      for (const [at, bytes] of [...params, ...derived])
        assert.ok(at + bytes <= arenaStart, `${name}: parameters below the arena`);
      const tensorBytes = (id: number) =>
        id === header.layers.at(-1)!.output
          ? 4 * roundUp(header.tensors[id].c, 4)
          : header.tensors[id].h * header.tensors[id].w * header.tensors[id].c;
      layout.tensorOffsets.forEach((at, id) =>
        assert.ok(at + tensorBytes(id) + SLACK <= arenaEnd, `${name}: tensor ${id} in the arena`),
      );
      assert.ok(layout.inputScratch + layout.inputScratchBytes <= arenaEnd, `${name}: input scratch in the arena`);
      assert.ok(arenaEnd <= layout.padRow && layout.padRow < layout.products, `${name}: pad row after the arena`);
      assert.ok(
        layout.products + threads * layout.productStride <= layout.totalBytes && layout.totalBytes <= layout.wasmBytes,
        `${name}: thread scratch last`,
      );
      assert.ok(layout.wasmBytes <= MAX_WASM_BYTES, name);
    }
  }
});

// ---- the kernels inside the planned scratch ----

const GUARD = 64;
const GUARD_BYTE = 0xa5;

/** A memory laid out by hand, each region followed by guard bytes that no kernel may touch. */
class GuardedMemory {
  private cursor = 1024;
  private readonly guards: [number, string][] = [];
  constructor(
    readonly kernels: KernelExports,
    private readonly memory: WebAssembly.Memory,
  ) {}

  /** A region of `bytes` (plus `slack` the arena would give it), filled with `fill`, then a guard. */
  region(bytes: number, what: string, slack = 0, fill?: Uint8Array): number {
    const at = this.cursor;
    const view = new Uint8Array(this.memory.buffer);
    if (fill) view.set(fill, at);
    view.fill(GUARD_BYTE, at + bytes + slack, at + bytes + slack + GUARD);
    this.guards.push([at + bytes + slack, what]);
    this.cursor = roundUp(at + bytes + slack + GUARD, 64);
    return at;
  }

  run<K extends SlicedKernel>(kernel: K, args: KernelArgs<K>): void {
    (this.kernels[kernel] as (...values: number[]) => void)(...argumentList(kernel, args), 0, 1);
  }

  touchedGuards(): string[] {
    const view = new Uint8Array(this.memory.buffer);
    return this.guards
      .filter(([at]) => view.subarray(at, at + GUARD).some((b) => b !== GUARD_BYTE))
      .map(([, what]) => what);
  }
}

interface ConvShape {
  layer: ConvLayer;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
}

function convShapes(): ConvShape[] {
  const shapes = new Map<string, ConvShape>();
  for (const { file } of MODELS) {
    const { header } = readModel(file);
    for (const layer of header.layers) {
      if (layer.kind !== 'conv') continue;
      const x = header.tensors[layer.input],
        y = header.tensors[layer.output];
      const key = JSON.stringify([layer.kh, layer.kw, layer.stride, layer.pad, layer.cin, layer.cout, x.h, x.w]);
      shapes.set(key, { layer, inH: x.h, inW: x.w, outH: y.h, outW: y.w });
    }
  }
  return [...shapes.values()];
}

const ALL_PATHS = { winograd: true, gemm: true };

/** Runs one conv shape on `path` (and tile) in exactly the planned scratch; returns the guards it touched. */
async function guardedConv(
  { layer, inH, inW, outH, outW }: ConvShape,
  path: ConvPath,
  tile: WinogradTile = 4,
  stride = threadScratchBytes(layer, path),
): Promise<string[]> {
  const random = mulberry32(layer.cin * 7919 + layer.cout);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
  const inC = layer.cin,
    outC = layer.cout,
    zx = 7;
  const needed =
    4 * (inH * inW * inC + payloadBytes(layer) + outH * outW * outC) +
    2 * winogradTileBytes(layer, { h: outH, w: outW }) +
    outH * outW * patchRowBytes(layer) +
    (1 << 20);
  const memory = createMemory(needed, false);
  const m = new GuardedMemory(await instantiateKernels(await kernelModule(false, 'baseline'), memory), memory);
  const input = m.region(inH * inW * inC, 'input', SLACK, bytes(inH * inW * inC));
  const params = m.region(payloadBytes(layer), 'parameters', 0, bytes(payloadBytes(layer)));
  const output = m.region(outH * outW * outC, 'output', SLACK);
  const requant = { output, outH, outW, zo: 3, lo: 0 };
  const scratch = { scratch: m.region(stride, `${path} thread scratch`), scratchStride: stride };
  if (path === 'winograd') {
    const [tilesH, tilesW] = winogradTiles({ h: outH, w: outW }, tile);
    const v = m.region(winogradTileBytes(layer, { h: outH, w: outW }), 'Winograd tiles V', SLACK);
    const bias = m.region(8 * roundUp(outC, 4), 'unfolded biases');
    m.kernels.winogradBias(params, inC, outC, zx, bias);
    m.run('winogradInput', { input, inH, inW, inC, zx, v, tile, tilesH, tilesW });
    const chunk = roundUp(inC, CIN_BLOCK);
    m.run('winogradConv', { v, tile, chunk, tilesH, tilesW, inC, bias, params, outC, ...requant, ...scratch });
  } else if (path === 'gemm') {
    m.run('gemm', {
      input,
      inW,
      inC,
      params,
      outC,
      stride: layer.stride,
      ...requant,
      ...gemmBlocking(inC, { h: outH, w: outW }, outC),
      ...scratch,
    });
  } else if (path === 'patches') {
    const kp = patchRowBytes(layer);
    const rows = m.region(outH * outW * kp, 'patch rows', SLACK);
    const { kh, kw, stride: s, pad } = layer;
    m.run('patches', { input, inH, inW, inC, zx, kh, kw, stride: s, pad, output: rows, outH, outW, kp });
    m.run('gemm', { ...requant, ...patchRowsGemm(rows, { h: outH, w: outW }, kp, outC), params, outC, ...scratch });
  } else {
    const cp = roundUp(inC, CIN_BLOCK);
    const padRow = m.region(cp, 'pad row', 16, new Uint8Array(cp).fill(zx));
    const { kh, kw, stride: s, pad } = layer;
    const taps = { input, inH, inW, inC, params, outC, kh, kw, stride: s, pad, ...requant, padRow, ...scratch };
    if (path === 'taps') m.run('gemmTaps', { ...taps, ...gemmBlocking(tapsDepth(layer), { h: outH, w: outW }, outC) });
    else m.run('conv', { ...taps, zx });
  }
  return m.touchedGuards();
}

// A block of U' ends with its last position's 64 bytes of padding, never written: 65 bytes short
// cuts into its data.
test('the guards catch a kernel that writes past its region (the control)', async () => {
  const shape = convShapes().find((s) => convPath(s.layer, ALL_PATHS) === 'winograd')!;
  assert.ok((await guardedConv(shape, 'direct', 4, 64)).includes('direct thread scratch'));
  assert.ok(
    (await guardedConv(shape, 'winograd', 4, threadScratchBytes(shape.layer, 'winograd') - 65)).includes(
      'winograd thread scratch',
    ),
  );
});

test('every conv shape of the test models runs inside the scratch the planner gives it, on every path', async () => {
  const shapes = convShapes();
  assert.ok(shapes.length > 40, `${shapes.length} distinct conv shapes`);
  let runs = 0;
  for (const shape of shapes) {
    const planned = convPath(shape.layer, ALL_PATHS);
    const paths: ConvPath[] = planned === 'patches' ? [planned] : [...new Set<ConvPath>(['direct', planned])];
    for (const path of paths) {
      for (const tile of path === 'winograd' ? ([2, 4] as const) : ([4] as const)) {
        const { kh, stride, pad, cin, cout } = shape.layer;
        const what = `${kh}x${kh}/${stride} pad ${pad}, ${shape.inH}x${shape.inW}x${cin} -> ${cout}, ${path}${path === 'winograd' ? ` F(${tile}x${tile})` : ''}`;
        assert.equal(await guardedConv(shape, path, tile), [], what);
        runs++;
      }
    }
  }
  assert.ok(
    runs > shapes.length,
    'Winograd shapes ran on both tiles and direct, 1x1 and taps shapes as GEMM and direct',
  );
  assert.ok(
    shapes.some((shape) => convPath(shape.layer, ALL_PATHS) === 'taps'),
    'the test models have convs on the taps path',
  );
});

test.run();
