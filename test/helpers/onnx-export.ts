/**
 * ONNX files from builder networks, written as torch.onnx.export writes torchvision ResNets (NCHW,
 * its node, value and initializer names) and quantized as onnxruntime's quantize_static writes
 * them (U8S8: QDQ or QOperator, per-channel symmetric int8 weights, int32 biases, min/max
 * activation ranges), so that the importer meets the files it will meet in use and
 * onnxruntime-node can run them as the oracle.
 */
import ort from 'onnxruntime-node';
import * as assert from 'uvu/assert';
import type { BatchNorm, UnfoldedNet } from '../../src/builder/batchnorm.ts';
import { BN_EPSILON } from '../../src/builder/batchnorm.ts';
import { importOnnx } from '../../src/convert/onnx.ts';
import { DataType, type OnnxModelInit } from '../../src/convert/onnx-proto.ts';
import { ModelImportError } from '../../src/errors.ts';
import type { FloatLayer, FloatModel, QuantParams, Shape } from '../../src/model/types.ts';
import { layerInputs } from '../../src/model/types.ts';
import { rne } from '../../src/quantize/quantize.ts';

export interface ExportOptions {
  /** The default-domain opset, 11–18 (quantized files need 13 or more: per-channel DequantizeLinear). */
  opset?: number;
  /** torchvision writes GlobalAveragePool; `x.mean([2, 3])` writes ReduceMean. */
  pool?: 'GlobalAveragePool' | 'ReduceMean';
  /** torch.flatten writes Flatten; `x.reshape(-1, C)` writes Reshape. */
  flatten?: 'Flatten' | 'Reshape';
  /** nn.Linear writes Gemm; some exporters write MatMul + Add. */
  head?: 'Gemm' | 'MatMul';
  /** A fixed batch size, or a symbolic one (torch's dynamic_axes). */
  batch?: number | string;
  /** QDQ: keep the ReLU between a layer and its QuantizeLinear (quantize_static usually removes it). */
  keepRelu?: boolean;
}

/** The range each FloatModel tensor takes over the calibration photos. */
export class ActivationRanges {
  readonly min: Float64Array;
  readonly max: Float64Array;

  constructor(tensorCount: number) {
    this.min = new Float64Array(tensorCount);
    this.max = new Float64Array(tensorCount);
  }

  observeBatch(tensor: number, batch: Float32Array[]): void {
    for (const data of batch) {
      for (let i = 0; i < data.length; i++) {
        this.min[tensor] = Math.min(this.min[tensor], data[i]);
        this.max[tensor] = Math.max(this.max[tensor], data[i]);
      }
    }
  }
}

/** The fp32 network with BatchNormalization nodes: the raw convs of `net`, the classifier of `float` (focused by setBatchNormStats). */
export function exportUnfolded(net: UnfoldedNet, float: FloatModel, options: ExportOptions = {}): OnnxModelInit {
  const layers = net.model.layers.map((layer, i) => (layer.kind === 'fc' ? float.layers[i] : layer));
  return new FloatExport({ ...net.model, layers }, options, net.batchNorms).run();
}

/**
 * The fp32 network with BN folded into the convs, as torch.onnx.export writes it in eval mode. A BN
 * that follows no conv (an affine layer: ResNet V2's pre-activation) stays a BatchNormalization
 * node, written from `norms`, which must hold the BN of every affine layer (keyed by layer index).
 */
export function exportFolded(
  float: FloatModel,
  options: ExportOptions = {},
  norms = new Map<number, BatchNorm>(),
): OnnxModelInit {
  return new FloatExport(float, options, norms).run();
}

/** The BNs of a network's affine layers: the ones torch.onnx.export cannot fold into a conv. */
export function affineNorms(net: UnfoldedNet): Map<number, BatchNorm> {
  return new Map([...net.batchNorms].filter(([index]) => net.model.layers[index].kind === 'affine'));
}

/** The quantized network and the scale of its output, the unit in which its logits are rounded. */
export interface QuantizedExport {
  model: OnnxModelInit;
  params: QuantParams[];
  outputScale: number;
}

export function exportQdq(float: FloatModel, ranges: ActivationRanges, options: ExportOptions = {}): QuantizedExport {
  return new QuantizedWriter(float, ranges, options, 'qdq').run();
}

export function exportQOperator(
  float: FloatModel,
  ranges: ActivationRanges,
  options: ExportOptions = {},
): QuantizedExport {
  return new QuantizedWriter(float, ranges, options, 'qoperator').run();
}

// Protobuf pieces

type Node = NonNullable<NonNullable<OnnxModelInit['graph']>['node']>[number];
type Tensor = NonNullable<NonNullable<OnnxModelInit['graph']>['initializer']>[number];
type Attribute = NonNullable<Node['attribute']>[number];

const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, INTS: 7 } as const;

export const attributes = {
  int: (name: string, i: number): Attribute => ({ name, type: AttributeType.INT, i }),
  ints: (name: string, ints: number[]): Attribute => ({ name, type: AttributeType.INTS, ints }),
  float: (name: string, f: number): Attribute => ({ name, type: AttributeType.FLOAT, f }),
  string: (name: string, s: string): Attribute => ({
    name,
    type: AttributeType.STRING,
    s: new TextEncoder().encode(s),
  }),
  tensor: (name: string, t: Tensor): Attribute => ({ name, type: AttributeType.TENSOR, t }),
};

function rawTensor(name: string, dims: number[], dataType: number, data: ArrayBufferView): Tensor {
  return { name, dims, data_type: dataType, raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Appends nodes and initializers; every method returns the name of the value it makes. */
class GraphWriter {
  readonly nodes: Node[] = [];
  readonly initializers: Tensor[] = [];

  node(
    opType: string,
    name: string,
    inputs: string[],
    attribute: Attribute[] = [],
    output = `${name}_output_0`,
    domain = '',
  ): string {
    this.nodes.push({ op_type: opType, name, input: inputs, output: [output], attribute, domain });
    return output;
  }

  raw(name: string, dims: number[], dataType: number, data: ArrayBufferView): string {
    this.initializers.push(rawTensor(name, dims, dataType, data));
    return name;
  }

  /** Scales and zero points as onnx.helper.make_tensor writes them: typed fields, not raw bytes. */
  scales(name: string, values: ArrayLike<number>, perChannel: boolean): string {
    this.initializers.push({
      name,
      dims: perChannel ? [values.length] : [],
      data_type: DataType.FLOAT,
      float_data: Array.from(values),
    });
    return name;
  }

  zeroPoints(name: string, dataType: number, values: number[], perChannel: boolean): string {
    this.initializers.push({ name, dims: perChannel ? [values.length] : [], data_type: dataType, int32_data: values });
    return name;
  }

  model(
    opset: number,
    input: { h: number; c: number },
    batch: number | string,
    classes: number,
    extraDomains: string[] = [],
  ): OnnxModelInit {
    const dim = (d: number | string) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d });
    const valueInfo = (name: string, dims: (number | string)[]) => ({
      name,
      type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map(dim) } } },
    });
    return {
      ir_version: opset < 12 ? 6 : opset < 15 ? 7 : 8,
      producer_name: 'pytorch',
      producer_version: '2.5.0',
      opset_import: [{ domain: '', version: opset }, ...extraDomains.map((domain) => ({ domain, version: 1 }))],
      graph: {
        name: 'main_graph',
        node: this.nodes,
        initializer: this.initializers,
        input: [valueInfo('input', [batch, input.c, input.h, input.h])],
        output: [valueInfo('output', [batch, classes])],
      },
    };
  }
}

// Naming and layouts as torch writes them

/**
 * torch names a node by its module path, a Sequential's child joined to its parent
 * ("/layer2/layer2.0/downsample/downsample.0/Conv"), and numbers the repeated uses of one module
 * ("relu", "relu_1": a torchvision block calls its ReLU two or three times).
 */
class TorchNames {
  private readonly uses = new Map<string, number>();

  scope(path: string[]): string {
    return path.map((p, i) => `/${/^\d+$/.test(p) ? `${path[i - 1]}.${p}` : p}`).join('');
  }

  relu(parent: string[]): string {
    const scope = this.scope(parent);
    const n = this.uses.get(scope) ?? 0;
    this.uses.set(scope, n + 1);
    return `${scope}/relu${n === 0 ? '' : `_${n}`}/Relu`;
  }
}

/** The BN module after a conv: bn1 after conv1; downsample.1 after downsample.0. */
function batchNormPath(convPath: string[]): string[] {
  const last = convPath[convPath.length - 1];
  return [...convPath.slice(0, -1), /^\d+$/.test(last) ? String(Number(last) + 1) : last.replace('conv', 'bn')];
}

/** Our conv weights [cout][kh][kw][cin] in ONNX's [cout][cin][kh][kw]. */
function toOihw<T extends Float32Array | Int8Array>(weights: T, cout: number, kh: number, kw: number, cin: number): T {
  const out = new (weights.constructor as new (n: number) => T)(weights.length);
  for (let o = 0; o < cout; o++) {
    for (let k = 0; k < kh * kw; k++) {
      for (let i = 0; i < cin; i++) out[(o * cin + i) * kh * kw + k] = weights[(o * kh * kw + k) * cin + i];
    }
  }
  return out;
}

function transposed<T extends Float32Array | Int8Array>(m: T, rows: number, cols: number): T {
  const out = new (m.constructor as new (n: number) => T)(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  return out;
}

function weightDims(layer: Extract<FloatLayer, { kind: 'conv' | 'fc' }>): number[] {
  return layer.kind === 'conv' ? [layer.cout, layer.cin, layer.kh, layer.kw] : [layer.cout, layer.cin];
}

function onnxWeights<T extends Float32Array | Int8Array>(
  layer: Extract<FloatLayer, { kind: 'conv' | 'fc' }>,
  weights: T,
): T {
  return layer.kind === 'conv' ? toOihw(weights, layer.cout, layer.kh, layer.kw, layer.cin) : weights;
}

function convAttributes(layer: Extract<FloatLayer, { kind: 'conv' }>): Attribute[] {
  const { pad, stride, kh, kw } = layer;
  return [
    attributes.ints('dilations', [1, 1]),
    attributes.int('group', 1),
    attributes.ints('kernel_shape', [kh, kw]),
    attributes.ints('pads', [pad, pad, pad, pad]),
    attributes.ints('strides', [stride, stride]),
  ];
}

/** nn.AvgPool2d as torch exports it: count_include_pad = 0 always (ours never counts padding). */
function avgPoolAttributes(layer: Extract<FloatLayer, { kind: 'avgpool' }>): Attribute[] {
  const { k, pad, stride, ceil } = layer;
  return [
    attributes.int('ceil_mode', ceil ? 1 : 0),
    attributes.int('count_include_pad', 0),
    attributes.ints('kernel_shape', [k, k]),
    attributes.ints('pads', [pad, pad, pad, pad]),
    attributes.ints('strides', [stride, stride]),
  ];
}

function maxPoolAttributes(layer: Extract<FloatLayer, { kind: 'maxpool' }>): Attribute[] {
  const { k, pad, stride } = layer;
  return [
    attributes.int('ceil_mode', 0),
    attributes.ints('dilations', [1, 1]),
    attributes.ints('kernel_shape', [k, k]),
    attributes.ints('pads', [pad, pad, pad, pad]),
    attributes.ints('strides', [stride, stride]),
  ];
}

const GEMM_ATTRIBUTES = [attributes.float('alpha', 1), attributes.float('beta', 1), attributes.int('transB', 1)];

/** Defaults: opset 17, torchvision's GlobalAveragePool + Flatten + Gemm, a symbolic batch. */
function withDefaults(options: ExportOptions): Required<ExportOptions> {
  return {
    opset: 17,
    pool: 'GlobalAveragePool',
    flatten: 'Flatten',
    head: 'Gemm',
    batch: 'batch_size',
    keepRelu: false,
    ...options,
  };
}

// fp32

class FloatExport {
  private readonly g = new GraphWriter();
  private readonly names = new TorchNames();
  private readonly options: Required<ExportOptions>;
  /** The ONNX value holding each FloatModel tensor. */
  private readonly values: string[] = ['input'];
  /** torch names the constants it folds (BN into conv) by the op that reads them. */
  private constants = 100;

  constructor(
    private readonly model: FloatModel,
    options: ExportOptions,
    private readonly batchNorms: Map<number, BatchNorm>,
  ) {
    this.options = withDefaults(options);
  }

  run(): OnnxModelInit {
    this.model.layers.forEach((layer, index) => (this.values[layer.output] = this.layer(layer, index)));
    const last = this.model.layers[this.model.layers.length - 1];
    const { opset, batch } = this.options;
    return this.g.model(opset, this.model.tensors[0], batch, this.model.tensors[last.output].c);
  }

  private layer(layer: FloatLayer, index: number): string {
    const path = layer.name.split('.');
    const scope = this.names.scope(path);
    const x = this.values[layerInputs(layer)[0]];
    switch (layer.kind) {
      case 'conv': {
        const bn = this.batchNorms.get(index);
        const y = bn
          ? this.batchNorm(batchNormPath(path), this.conv(scope, x, layer, [`${layer.name}.weight`]), bn)
          : this.conv(scope, x, layer, [this.folded('Conv'), this.folded('Conv')]);
        return layer.relu ? this.g.node('Relu', this.names.relu(path.slice(0, -1)), [y]) : y;
      }
      case 'affine': {
        const bn = this.batchNorms.get(index);
        if (!bn) throw new Error(`${layer.name}: exporting an affine layer needs its BatchNorm`);
        const y = this.batchNorm(path, x, bn);
        return layer.relu ? this.g.node('Relu', this.names.relu(path.slice(0, -1)), [y]) : y;
      }
      case 'maxpool':
        return this.g.node('MaxPool', `${scope}/MaxPool`, [x], maxPoolAttributes(layer));
      case 'avgpool':
        return this.g.node('AveragePool', `${scope}/AveragePool`, [x], avgPoolAttributes(layer));
      case 'add': {
        const y = this.g.node(
          'Add',
          `${this.names.scope(path.slice(0, -1))}/Add`,
          layer.inputs.map((t) => this.values[t]),
        );
        return layer.relu ? this.g.node('Relu', this.names.relu(path.slice(0, -1)), [y]) : y;
      }
      case 'gap':
        return this.pool(scope, x);
      case 'fc':
        return this.fc(scope, this.flatten(x, layer.cin), layer);
    }
  }

  private folded(op: string): string {
    return `onnx::${op}_${this.constants++}`;
  }

  /** `names`: the weight's, and the bias's when the conv has one. */
  private conv(scope: string, x: string, layer: Extract<FloatLayer, { kind: 'conv' }>, names: string[]): string {
    const [weight, bias] = names;
    const inputs = [x, this.g.raw(weight, weightDims(layer), DataType.FLOAT, onnxWeights(layer, layer.weight))];
    if (bias) inputs.push(this.g.raw(bias, [layer.cout], DataType.FLOAT, layer.bias));
    return this.g.node('Conv', `${scope}/Conv`, inputs, convAttributes(layer));
  }

  private batchNorm(path: string[], x: string, bn: BatchNorm): string {
    const module = path.join('.');
    const c = bn.gamma.length;
    const params = (
      [
        ['weight', bn.gamma],
        ['bias', bn.beta],
        ['running_mean', bn.mean],
        ['running_var', bn.variance],
      ] as const
    ).map(([field, values]) => this.g.raw(`${module}.${field}`, [c], DataType.FLOAT, values));
    const attributeList = [attributes.float('epsilon', BN_EPSILON), attributes.float('momentum', 0.9)];
    if (this.options.opset >= 14) attributeList.push(attributes.int('training_mode', 0));
    return this.g.node(
      'BatchNormalization',
      `${this.names.scope(path)}/BatchNormalization`,
      [x, ...params],
      attributeList,
    );
  }

  /** GlobalAveragePool, or ReduceMean whose axes are an attribute before opset 18 and an input from 18. */
  private pool(scope: string, x: string): string {
    if (this.options.pool === 'GlobalAveragePool')
      return this.g.node('GlobalAveragePool', `${scope}/GlobalAveragePool`, [x]);
    const keepdims = attributes.int('keepdims', 1);
    if (this.options.opset < 18)
      return this.g.node('ReduceMean', '/ReduceMean', [x], [attributes.ints('axes', [2, 3]), keepdims]);
    const axes = this.constant('/Constant', rawTensor('axes', [2], DataType.INT64, BigInt64Array.of(2n, 3n)));
    return this.g.node('ReduceMean', '/ReduceMean', [x, axes], [keepdims]);
  }

  private flatten(x: string, channels: number): string {
    if (this.options.flatten === 'Flatten') return this.g.node('Flatten', '/Flatten', [x], [attributes.int('axis', 1)]);
    const shape = this.constant(
      '/Constant_1',
      rawTensor('shape', [2], DataType.INT64, BigInt64Array.of(-1n, BigInt(channels))),
    );
    return this.g.node('Reshape', '/Reshape', [x, shape]);
  }

  private constant(name: string, value: Tensor): string {
    return this.g.node('Constant', name, [], [attributes.tensor('value', value)]);
  }

  private fc(scope: string, x: string, layer: Extract<FloatLayer, { kind: 'fc' }>): string {
    const bias = this.g.raw(`${layer.name}.bias`, [layer.cout], DataType.FLOAT, layer.bias);
    if (this.options.head === 'Gemm') {
      const weight = this.g.raw(`${layer.name}.weight`, [layer.cout, layer.cin], DataType.FLOAT, layer.weight);
      return this.g.node('Gemm', `${scope}/Gemm`, [x, weight, bias], GEMM_ATTRIBUTES, 'output');
    }
    const weight = this.g.raw(
      this.folded('MatMul'),
      [layer.cin, layer.cout],
      DataType.FLOAT,
      transposed(layer.weight, layer.cout, layer.cin),
    );
    return this.g.node(
      'Add',
      `${scope}/Add`,
      [this.g.node('MatMul', `${scope}/MatMul`, [x, weight]), bias],
      [],
      'output',
    );
  }
}

// Quantized, as onnxruntime's quantize_static (quant_utils.py) computes it

/** uint8 activations: the range widened to include 0, scale (max − min) / 255 rounded to f32. */
export function ortActivationParams(min: number, max: number): QuantParams {
  const rmin = Math.fround(Math.min(min, 0));
  const rmax = Math.fround(Math.max(max, 0));
  const scale = Math.fround(rmax - rmin) / 255;
  if (scale < 2 ** -126) return { scale: 1, zeroPoint: 0 };
  return { scale: Math.fround(scale), zeroPoint: Math.min(255, Math.max(0, rne(-rmin / scale))) };
}

/** int8 weights, symmetric per output channel: scale f32(2·max|w| / 254), values clipped to ±127. */
function ortWeights(weight: Float32Array, channels: number): { q: Int8Array; scales: Float32Array } {
  const perChannel = weight.length / channels;
  const q = new Int8Array(weight.length);
  const scales = new Float32Array(channels);
  for (let o = 0; o < channels; o++) {
    const channel = weight.subarray(o * perChannel, (o + 1) * perChannel);
    const absMax = channel.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const scale = absMax > 0 ? Math.fround(Math.fround(2 * absMax) / 254) : 1;
    scales[o] = scale;
    channel.forEach((v, i) => (q[o * perChannel + i] = Math.max(-127, Math.min(127, rne(Math.fround(v / scale))))));
  }
  return { q, scales };
}

/** int32 biases at scale f32(sx · sw[o]). */
function ortBias(bias: Float32Array, sx: number, sw: Float32Array): { q: Int32Array; scales: Float32Array } {
  const scales = Float32Array.from(sw, (s) => sx * s);
  return { q: Int32Array.from(bias, (b, o) => rne(b / scales[o])), scales };
}

type ParamLayer = Extract<FloatLayer, { kind: 'conv' | 'fc' }>;

/**
 * Both formats from one walk: in QDQ every activation is a float value between a QuantizeLinear
 * and a DequantizeLinear around float operators; in QOperator it is a uint8 value between QLinear
 * operators. Activations are named after the fp32 export's float values ("stems").
 */
class QuantizedWriter {
  private readonly g = new GraphWriter();
  private readonly names = new TorchNames();
  private readonly options: Required<ExportOptions>;
  private readonly params: QuantParams[];
  /** The stem of each FloatModel tensor's names. */
  private readonly stems: string[] = ['input'];

  constructor(
    private readonly model: FloatModel,
    ranges: ActivationRanges,
    options: ExportOptions,
    private readonly format: 'qdq' | 'qoperator',
  ) {
    this.options = withDefaults({ opset: 13, ...options });
    this.params = model.tensors.map((_, t) => ortActivationParams(ranges.min[t], ranges.max[t]));
    // quantize_static keeps max pool on uint8 values: its output shares its input's parameters.
    for (const layer of model.layers)
      if (layer.kind === 'maxpool') this.params[layer.output] = this.params[layer.input];
  }

  run(): QuantizedExport {
    this.quantize('input', 'input', this.params[0]);
    for (const layer of this.model.layers) this.layer(layer);
    const last = this.model.layers[this.model.layers.length - 1];
    const { opset, batch } = this.options;
    const domains = this.format === 'qoperator' ? ['com.microsoft'] : [];
    const model = this.g.model(opset, this.model.tensors[0], batch, this.model.tensors[last.output].c, domains);
    return { model, params: this.params, outputScale: this.params[last.output].scale };
  }

  private layer(layer: FloatLayer): void {
    const path = layer.name.split('.');
    const scope = this.names.scope(path);
    const relu =
      (layer.kind === 'conv' || layer.kind === 'add') && layer.relu ? this.names.relu(path.slice(0, -1)) : null;
    switch (layer.kind) {
      case 'conv': {
        const [w, ws, wzp, b] = this.weightInputs(layer, `onnx::Conv_${layer.output}`);
        if (this.format === 'qdq')
          return this.floatOp(
            layer.output,
            'Conv',
            `${scope}/Conv`,
            [this.dequantized(layer.input), w, b],
            convAttributes(layer),
            relu,
          );
        return this.qlinearOp(
          layer.output,
          'QLinearConv',
          `${scope}/Conv`,
          [...this.quantizedInput(layer.input), w, ws, wzp],
          convAttributes(layer),
          [b],
        );
      }
      case 'add': {
        const name = `${this.names.scope(path.slice(0, -1))}/Add`;
        if (this.format === 'qdq')
          return this.floatOp(
            layer.output,
            'Add',
            name,
            layer.inputs.map((t) => this.dequantized(t)),
            [],
            relu,
          );
        return this.qlinearOp(
          layer.output,
          'com.microsoft.QLinearAdd',
          name,
          layer.inputs.flatMap((t) => this.quantizedInput(t)),
          [],
        );
      }
      case 'maxpool':
        if (this.format === 'qdq')
          return this.floatOp(
            layer.output,
            'MaxPool',
            `${scope}/MaxPool`,
            [this.dequantized(layer.input)],
            maxPoolAttributes(layer),
            null,
          );
        this.stems[layer.output] = `${scope}/MaxPool_output_0`;
        this.g.node(
          'MaxPool',
          `${scope}/MaxPool`,
          [this.quantized(layer.input)],
          maxPoolAttributes(layer),
          this.quantized(layer.output),
        );
        return;
      case 'gap': {
        const name = `${scope}/GlobalAveragePool`;
        if (this.format === 'qdq')
          return this.floatOp(layer.output, 'GlobalAveragePool', name, [this.dequantized(layer.input)], [], null);
        return this.qlinearOp(
          layer.output,
          'com.microsoft.QLinearGlobalAveragePool',
          name,
          this.quantizedInput(layer.input),
          [attributes.int('channels_last', 0)],
        );
      }
      case 'fc':
        return this.fc(layer, scope);
    }
  }

  /** Flatten, then the classifier, whose output onnxruntime quantizes too before dequantizing it to the graph output. */
  private fc(layer: Extract<FloatLayer, { kind: 'fc' }>, scope: string): void {
    const x = layer.input;
    const flat = '/Flatten_output_0';
    const flatten = [attributes.int('axis', 1)];
    const [w, ws, wzp, b] = this.weightInputs(layer, 'fc.weight');
    const output = this.paramInputs('output', this.params[layer.output]);
    if (this.format === 'qdq') {
      // quantize_static quantizes the flattened features again, with the same parameters.
      this.quantize(flat, this.g.node('Flatten', '/Flatten', [this.dequantized(x)], flatten, flat), this.params[x]);
      const y = this.g.node(
        'Gemm',
        `${scope}/Gemm`,
        [`${flat}_DequantizeLinear_Output`, w, b],
        GEMM_ATTRIBUTES,
        'output_QuantizeLinear_Input',
      );
      return this.quantize('output', y, this.params[layer.output]);
    }
    const flatQ = this.g.node('Flatten', '/Flatten', [this.quantized(x)], flatten, `${flat}_quantized`);
    const qgemm = [attributes.float('alpha', 1), attributes.int('transB', 1)];
    const y = this.g.node(
      'QGemm',
      `${scope}/Gemm_quant`,
      [flatQ, ...this.paramInputs(this.stems[x], this.params[x]), w, ws, wzp, b, ...output],
      qgemm,
      'output_quantized',
      'com.microsoft',
    );
    this.g.node('DequantizeLinear', 'output_DequantizeLinear', [y, ...output], [], 'output');
  }

  /** [weights, their scales, their zero points, bias]; in QDQ the weights and bias are DequantizeLinear outputs. */
  private weightInputs(layer: ParamLayer, stem: string): string[] {
    const { q, scales } = ortWeights(layer.weight, layer.cout);
    const bias = ortBias(layer.bias, this.params[layer.input].scale, scales);
    const zeros = new Array<number>(layer.cout).fill(0);
    const weight = this.g.raw(`${stem}_quantized`, weightDims(layer), DataType.INT8, onnxWeights(layer, q));
    const weightScale = this.g.scales(`${stem}_scale`, scales, true);
    const weightZero = this.g.zeroPoints(`${stem}_zero_point`, DataType.INT8, zeros, true);
    const biasName = this.g.raw(`${stem}_bias_quantized`, [layer.cout], DataType.INT32, bias.q);
    if (this.format === 'qoperator') return [weight, weightScale, weightZero, biasName];
    const biasScale = this.g.scales(`${biasName}_scale`, bias.scales, true);
    const biasZero = this.g.zeroPoints(`${biasName}_zero_point`, DataType.INT32, zeros, true);
    const dequantize = (values: string, scale: string, zero: string) =>
      this.g.node(
        'DequantizeLinear',
        `${values}_DequantizeLinear`,
        [values, scale, zero],
        [attributes.int('axis', 0)],
        `${values}_DequantizeLinear_Output`,
      );
    return [
      dequantize(weight, weightScale, weightZero),
      weightScale,
      weightZero,
      dequantize(biasName, biasScale, biasZero),
    ];
  }

  private quantized(t: number): string {
    return `${this.stems[t]}_quantized`;
  }

  private dequantized(t: number): string {
    return `${this.stems[t]}_DequantizeLinear_Output`;
  }

  /** A scale and zero point pair of initializers (made once per stem). */
  private paramInputs(stem: string, params: QuantParams): string[] {
    const [scale, zeroPoint] = [`${stem}_scale`, `${stem}_zero_point`];
    if (!this.g.initializers.some((i) => i.name === scale)) {
      this.g.scales(scale, [params.scale], false);
      this.g.zeroPoints(zeroPoint, DataType.UINT8, [params.zeroPoint], false);
    }
    return [scale, zeroPoint];
  }

  /** A QOperator input: the uint8 tensor, its scale, its zero point. */
  private quantizedInput(t: number): string[] {
    return [this.quantized(t), ...this.paramInputs(this.stems[t], this.params[t])];
  }

  /** QuantizeLinear of a float value, and in QDQ the DequantizeLinear after it. The graph output keeps the name "output". */
  private quantize(stem: string, value: string, params: QuantParams): void {
    const p = this.paramInputs(stem, params);
    const output = stem === 'output';
    const q = this.g.node(
      'QuantizeLinear',
      `${stem}_QuantizeLinear`,
      [value, ...p],
      [],
      output ? 'output_QuantizeLinear_Output' : `${stem}_quantized`,
    );
    if (this.format === 'qdq')
      this.g.node(
        'DequantizeLinear',
        `${stem}_DequantizeLinear`,
        [q, ...p],
        [],
        output ? 'output' : `${stem}_DequantizeLinear_Output`,
      );
  }

  /** QDQ: a float operator, then (after a kept ReLU) the quantization of its result as tensor `t`. */
  private floatOp(
    t: number,
    op: string,
    name: string,
    inputs: string[],
    attributeList: Attribute[],
    relu: string | null,
  ): void {
    const y = this.g.node(op, name, inputs, attributeList);
    const value = relu && this.options.keepRelu ? this.g.node('Relu', relu, [y]) : y;
    this.stems[t] = value;
    this.quantize(value, value, this.params[t]);
  }

  /**
   * QOperator: one node from quantized inputs to the quantized tensor `t`, whose scale and zero
   * point follow the inputs (then `trailing`, QLinearConv's bias). A fused ReLU needs no node: the
   * output range starts at 0.
   */
  private qlinearOp(
    t: number,
    op: string,
    name: string,
    inputs: string[],
    attributeList: Attribute[],
    trailing: string[] = [],
  ): void {
    const [domain, opType] = op.startsWith('com.microsoft.')
      ? ['com.microsoft', op.slice('com.microsoft.'.length)]
      : ['', op];
    this.stems[t] = `${name}_output_0`;
    this.g.node(
      opType,
      `${name}_quant`,
      [...inputs, ...this.paramInputs(this.stems[t], this.params[t]), ...trailing],
      attributeList,
      this.quantized(t),
      domain,
    );
  }
}

// Running the files in onnxruntime-node, and comparing logits

/** onnxruntime-node's outputs for NHWC inputs (it takes NCHW), as one batch. */
export async function runOnnxRuntime(
  bytes: Uint8Array,
  inputs: Float32Array[],
  { h, w, c }: Shape,
): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(bytes);
  const batch = new Float32Array(inputs.length * h * w * c);
  inputs.forEach((x, n) => {
    for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) batch[(n * c + ch) * h * w + p] = x[p * c + ch];
  });
  const result = await session.run({
    [session.inputNames[0]]: new ort.Tensor('float32', batch, [inputs.length, c, h, w]),
  });
  const logits = result[session.outputNames[0]].data as Float32Array;
  const classes = logits.length / inputs.length;
  await session.release();
  return inputs.map((_, n) => logits.slice(n * classes, (n + 1) * classes));
}

/** The ModelImportError importing `bytes` must throw. */
export function importError(bytes: Uint8Array, file: string): ModelImportError {
  let error: unknown = null;
  try {
    importOnnx(bytes, file);
  } catch (e) {
    error = e;
  }
  assert.instance(error, ModelImportError);
  return error as ModelImportError;
}
