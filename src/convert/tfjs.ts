/**
 * TF.js layers models (model.json + binary weight shards, as tensorflowjs_converter writes Keras
 * models) → import graph. Keras layers map one for one onto IR ops; kernels are transposed from
 * Keras' [kh][kw][cin][cout] (Dense: [cin][cout]) to our [cout][kh][kw][cin].
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ModelImportError } from '../errors.ts';
import { type PreprocessingPreset, preprocessingPreset } from './imagenet.ts';
import type { IrGraph, IrOp, Pads } from './ir.ts';

interface KerasLayer {
  class_name: string;
  name?: string;
  config: Record<string, unknown> & { name: string };
  inbound_nodes: unknown[];
}

interface WeightEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; scale?: number; min?: number };
}

interface ModelJson {
  format?: string;
  modelTopology?: {
    model_config?: { class_name: string; config: { layers: KerasLayer[]; output_layers?: unknown[] } };
  } & {
    class_name?: string;
    config?: { layers: KerasLayer[] };
  };
  weightsManifest?: { paths: string[]; weights: WeightEntry[] }[];
}

type Shape = { h: number; w: number; c: number };

export interface TfjsImportOptions {
  /** model.json does not record the preprocessing its weights expect. */
  preprocessing: PreprocessingPreset;
}

/** Reads model.json and its shards; the shards must lie beside model.json, as the manifest says. */
export async function importTfjsLayers(modelJsonPath: string, options: TfjsImportOptions): Promise<IrGraph> {
  const file = basename(modelJsonPath);
  const json = parseModelJson(await readFile(modelJsonPath, 'utf8'), file);
  const weights = await readWeights(json, dirname(modelJsonPath), file);
  return new KerasGraph(json, weights, file, options).build();
}

function parseModelJson(text: string, file: string): ModelJson {
  try {
    return JSON.parse(text) as ModelJson;
  } catch (error) {
    throw new ModelImportError(`not valid JSON: ${(error as Error).message}`, { file });
  }
}

/** All weights by name, as float32 (dequantizing uint8/uint16-quantized ones). */
async function readWeights(json: ModelJson, dir: string, file: string): Promise<Map<string, Float32Array>> {
  const groups = json.weightsManifest;
  if (!Array.isArray(groups)) throw new ModelImportError('no weightsManifest: not a TF.js layers model', { file });
  const weights = new Map<string, Float32Array>();
  for (const group of groups) {
    const buffer = await readShards(group.paths, dir);
    let offset = 0;
    for (const entry of group.weights) {
      const { values, bytes } = decodeWeight(entry, buffer, offset, group.paths, file);
      weights.set(entry.name.replace(/:0$/, ''), values);
      offset += bytes;
    }
    if (offset !== buffer.length) {
      throw new ModelImportError(
        `shards ${group.paths.join(', ')} hold ${buffer.length} bytes, the manifest describes ${offset}`,
        { file },
      );
    }
  }
  return weights;
}

async function readShards(paths: string[], dir: string): Promise<Uint8Array> {
  const parts = await Promise.all(
    paths.map(async (path) => {
      try {
        return await readFile(join(dir, path));
      } catch (error) {
        throw new ModelImportError(`cannot read weight shard: ${(error as Error).message}`, { file: path });
      }
    }),
  );
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 };

function decodeWeight(entry: WeightEntry, buffer: Uint8Array, offset: number, paths: string[], file: string) {
  const count = entry.shape.reduce((n, d) => n * d, 1);
  const storedType = entry.quantization?.dtype ?? entry.dtype;
  const size = BYTES_PER_ELEMENT[storedType];
  if (!size || storedType === 'float16' || storedType === 'int32') {
    throw new ModelImportError(`weight "${entry.name}" has unsupported type ${storedType}`, { file });
  }
  const bytes = count * size;
  if (offset + bytes > buffer.length) {
    throw new ModelImportError(
      `weight "${entry.name}" needs bytes ${offset}..${offset + bytes}, but the shards end at ${buffer.length} (a shard is missing or short)`,
      {
        file: paths.join(', '),
      },
    );
  }
  const raw = buffer.slice(offset, offset + bytes);
  if (storedType === 'float32') return { values: new Float32Array(raw.buffer), bytes };
  const { scale = 1, min = 0 } = entry.quantization ?? {};
  const ints = storedType === 'uint8' ? raw : new Uint16Array(raw.buffer);
  return { values: Float32Array.from(ints, (q) => q * scale + min), bytes };
}

class KerasGraph {
  private readonly ops: IrOp[] = [];
  private readonly shapes = new Map<string, Shape>();
  private input: IrGraph['input'] | null = null;

  constructor(
    private readonly json: ModelJson,
    private readonly weights: Map<string, Float32Array>,
    private readonly file: string,
    private readonly options: TfjsImportOptions,
  ) {}

  build(): IrGraph {
    const topology = this.json.modelTopology;
    const model = topology?.model_config ?? topology;
    if (!model?.config || !Array.isArray(model.config.layers)) {
      throw new ModelImportError('no modelTopology with layers: not a Keras functional model', { file: this.file });
    }
    for (const layer of model.config.layers) this.layer(layer);
    if (!this.input) throw new ModelImportError('no InputLayer', { file: this.file });
    const last = this.ops[this.ops.length - 1];
    return {
      architecture: `keras:${(model.config as { name?: string }).name ?? 'model'}`,
      input: this.input,
      ops: this.ops,
      output: last.output,
      preprocessing: preprocessingPreset(this.options.preprocessing, this.input.h),
      labels: [],
    };
  }

  private layer(layer: KerasLayer): void {
    const name = layer.config.name;
    const c = layer.config;
    const inputs = inboundNames(layer, this.file);
    const base = { name, source: layer.class_name, inputs, output: name };
    const x = inputs.length > 0 ? this.shape(inputs[0], layer) : null;
    switch (layer.class_name) {
      case 'InputLayer': {
        const [, h, w, ch] = (c.batch_input_shape ?? c.batch_shape) as (number | null)[];
        if (![h, w, ch].every((d) => typeof d === 'number' && d > 0)) {
          throw this.error(
            layer,
            `dynamic input shape ${JSON.stringify(c.batch_input_shape)}: give the model a fixed input size`,
          );
        }
        this.input = { name, h: h as number, w: w as number, c: ch as number };
        this.shapes.set(name, { h: h as number, w: w as number, c: ch as number });
        return;
      }
      case 'ZeroPadding2D': {
        const pads = zeroPadding(c.padding, layer, this.file);
        this.push({ ...base, op: 'pad', pads }, { h: x!.h + pads[0] + pads[2], w: x!.w + pads[1] + pads[3], c: x!.c });
        return;
      }
      case 'Conv2D':
        return this.conv(layer, base, x!);
      case 'BatchNormalization': {
        const axis = Array.isArray(c.axis) ? c.axis[0] : c.axis;
        if (axis !== 3 && axis !== -1)
          throw this.error(layer, `normalizes axis ${axis}; only the channel axis (3) is supported`);
        const ones = new Float32Array(x!.c).fill(1);
        this.push(
          {
            ...base,
            op: 'batchnorm',
            epsilon: Number(c.epsilon ?? 1e-3),
            gamma: c.scale === false ? ones : this.weight(layer, 'gamma', x!.c),
            beta: c.center === false ? new Float32Array(x!.c) : this.weight(layer, 'beta', x!.c),
            mean: this.weight(layer, 'moving_mean', x!.c),
            variance: this.weight(layer, 'moving_variance', x!.c),
          },
          x!,
        );
        return;
      }
      case 'Activation':
        return this.activation(layer, base, x!, String(c.activation));
      case 'ReLU':
        if (c.max_value != null || Number(c.negative_slope ?? 0) !== 0 || Number(c.threshold ?? 0) !== 0) {
          throw this.error(layer, 'only a plain ReLU (no max_value, slope or threshold) is supported');
        }
        this.push({ ...base, op: 'relu' }, x!);
        return;
      case 'Add':
        this.push({ ...base, op: 'add' }, x!);
        return;
      case 'MaxPooling2D': {
        const [k, kw] = pair(c.pool_size, layer, this.file);
        const [stride, sw] = pair(c.strides ?? c.pool_size, layer, this.file);
        if (k !== kw || stride !== sw) throw this.error(layer, 'only square pooling windows and strides are supported');
        const pads = samePads(c.padding, x!, k, k, stride, layer, this.file);
        this.push({ ...base, op: 'maxpool', k, stride, pads }, outShape(x!, k, k, stride, pads, x!.c));
        return;
      }
      case 'GlobalAveragePooling2D':
        if (c.keepdims === true) throw this.error(layer, 'keepdims is not supported');
        this.push({ ...base, op: 'gap' }, { h: 1, w: 1, c: x!.c });
        return;
      case 'Flatten':
        this.push({ ...base, op: 'identity' }, { h: 1, w: 1, c: x!.h * x!.w * x!.c });
        return;
      case 'Dropout':
        this.push({ ...base, op: 'identity' }, x!);
        return;
      case 'Dense':
        return this.dense(layer, base, x!);
      default:
        throw this.error(layer, 'this layer type is not supported');
    }
  }

  private conv(
    layer: KerasLayer,
    base: { name: string; source: string; inputs: string[]; output: string },
    x: Shape,
  ): void {
    const c = layer.config;
    const [kh, kw] = pair(c.kernel_size, layer, this.file);
    const [stride, sw] = pair(c.strides ?? 1, layer, this.file);
    if (stride !== sw) throw this.error(layer, `different strides ${stride}x${sw} are not supported`);
    if (pair(c.dilation_rate ?? 1, layer, this.file).some((d) => d !== 1))
      throw this.error(layer, 'dilated convolution is not supported');
    if (Number(c.groups ?? 1) !== 1)
      throw this.error(layer, `grouped convolution (groups = ${c.groups}) is not supported`);
    if (c.data_format && c.data_format !== 'channels_last')
      throw this.error(layer, `data_format ${c.data_format} is not supported`);
    const cout = Number(c.filters);
    const kernel = this.weight(layer, 'kernel', kh * kw * x.c * cout);
    const weight = transposeKernel(kernel, kh, kw, x.c, cout);
    const bias = c.use_bias === false ? null : this.weight(layer, 'bias', cout);
    const pads = samePads(c.padding, x, kh, kw, stride, layer, this.file);
    const activation = String(c.activation ?? 'linear');
    const output = activation === 'linear' ? base.output : `${base.output}/preactivation`;
    this.push(
      { ...base, output, op: 'conv', kh, kw, stride, pads, cin: x.c, cout, weight, bias },
      outShape(x, kh, kw, stride, pads, cout),
    );
    if (activation !== 'linear')
      this.activation(layer, { ...base, inputs: [output] }, this.shapes.get(output)!, activation);
  }

  private dense(
    layer: KerasLayer,
    base: { name: string; source: string; inputs: string[]; output: string },
    x: Shape,
  ): void {
    const c = layer.config;
    const cin = x.h * x.w * x.c;
    const cout = Number(c.units);
    const kernel = this.weight(layer, 'kernel', cin * cout);
    const weight = transposeKernel(kernel, 1, 1, cin, cout);
    const bias = c.use_bias === false ? null : this.weight(layer, 'bias', cout);
    const activation = String(c.activation ?? 'linear');
    const output = activation === 'linear' ? base.output : `${base.output}/logits`;
    this.push({ ...base, output, op: 'fc', cin, cout, weight, bias }, { h: 1, w: 1, c: cout });
    if (activation !== 'linear')
      this.activation(layer, { ...base, inputs: [output] }, { h: 1, w: 1, c: cout }, activation);
  }

  /** relu → a ReLU op; linear, and softmax (logits are the result; top-k applies its own), → nothing. */
  private activation(
    layer: KerasLayer,
    base: { name: string; source: string; inputs: string[]; output: string },
    x: Shape,
    activation: string,
  ): void {
    if (activation === 'relu') this.push({ ...base, op: 'relu' }, x);
    else if (activation === 'linear' || activation === 'softmax') this.push({ ...base, op: 'identity' }, x);
    else throw this.error(layer, `activation "${activation}" is not supported`);
  }

  private push(op: IrOp, shape: Shape): void {
    this.ops.push(op);
    this.shapes.set(op.output, shape);
  }

  private shape(name: string, layer: KerasLayer): Shape {
    const shape = this.shapes.get(name);
    if (!shape) throw this.error(layer, `reads "${name}", which is not defined before it`);
    return shape;
  }

  private weight(layer: KerasLayer, kind: string, count: number): Float32Array {
    const name = layer.config.name;
    const found = [...this.weights].find(([key]) => key === `${name}/${kind}` || key.endsWith(`/${name}/${kind}`));
    if (!found) throw this.error(layer, `weight "${name}/${kind}" is missing from the manifest`);
    if (found[1].length !== count)
      throw this.error(layer, `weight "${found[0]}" has ${found[1].length} values, expected ${count}`);
    return found[1];
  }

  private error(layer: KerasLayer, problem: string): ModelImportError {
    return new ModelImportError(problem, { file: this.file, node: layer.config.name, op: layer.class_name });
  }
}

/** Keras' classic inbound_nodes: [[[layerName, nodeIndex, tensorIndex, kwargs], ...]]. */
function inboundNames(layer: KerasLayer, file: string): string[] {
  if (layer.inbound_nodes.length === 0) return [];
  const node = layer.inbound_nodes[0];
  if (
    layer.inbound_nodes.length > 1 ||
    !Array.isArray(node) ||
    !node.every((entry) => Array.isArray(entry) && typeof entry[0] === 'string')
  ) {
    throw new ModelImportError('shared layers and this inbound_nodes format are not supported', {
      file,
      node: layer.config.name,
      op: layer.class_name,
    });
  }
  return node.map((entry) => (entry as string[])[0]);
}

function pair(value: unknown, layer: KerasLayer, file: string): [number, number] {
  const v = Array.isArray(value) ? value : [value, value];
  if (v.length !== 2 || !v.every((n) => Number.isInteger(n) && n > 0)) {
    throw new ModelImportError(`expected a positive integer or a pair, got ${JSON.stringify(value)}`, {
      file,
      node: layer.config.name,
      op: layer.class_name,
    });
  }
  return [v[0], v[1]];
}

/** ZeroPadding2D's padding: p, [ph, pw], or [[top, bottom], [left, right]] → [top, left, bottom, right]. */
function zeroPadding(value: unknown, layer: KerasLayer, file: string): Pads {
  if (Array.isArray(value) && Array.isArray(value[0])) {
    const [[top, bottom], [left, right]] = value as number[][];
    return [top, left, bottom, right];
  }
  const [ph, pw] = pair(value, layer, file);
  return [ph, pw, ph, pw];
}

/** Keras' "same" pads so that out = ceil(in / stride), the extra pixel at the bottom/right. */
function samePads(
  padding: unknown,
  x: Shape,
  kh: number,
  kw: number,
  stride: number,
  layer: KerasLayer,
  file: string,
): Pads {
  if (padding === 'valid') return [0, 0, 0, 0];
  if (padding !== 'same')
    throw new ModelImportError(`padding "${padding}" is not supported`, {
      file,
      node: layer.config.name,
      op: layer.class_name,
    });
  const total = (size: number, k: number) => Math.max((Math.ceil(size / stride) - 1) * stride + k - size, 0);
  const th = total(x.h, kh);
  const tw = total(x.w, kw);
  return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
}

function outShape(x: Shape, kh: number, kw: number, stride: number, pads: Pads, c: number): Shape {
  return {
    h: Math.floor((x.h + pads[0] + pads[2] - kh) / stride) + 1,
    w: Math.floor((x.w + pads[1] + pads[3] - kw) / stride) + 1,
    c,
  };
}

/** [kh][kw][cin][cout] → [cout][kh][kw][cin]. */
function transposeKernel(kernel: Float32Array, kh: number, kw: number, cin: number, cout: number): Float32Array {
  const out = new Float32Array(kernel.length);
  const taps = kh * kw;
  for (let t = 0; t < taps; t++) {
    for (let i = 0; i < cin; i++) {
      const from = (t * cin + i) * cout;
      for (let o = 0; o < cout; o++) out[(o * taps + t) * cin + i] = kernel[from + o];
    }
  }
  return out;
}
