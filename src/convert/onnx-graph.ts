/**
 * A decoded ONNX graph as both importers (fp32 and quantized) read it: constants (initializers,
 * Constant nodes, and Identity nodes of a constant, as torch's initializer deduplication writes
 * them, chains included), typed attribute and tensor access, the network input, the conv and pool window
 * attributes, and errors that name the node and its operator.
 */
import { ModelImportError } from '../errors.ts';
import { poolOutSize, type Shape } from '../model/types.ts';
import type { Pads } from './ir.ts';
import type { OnnxAttribute, OnnxGraph, OnnxModel, OnnxNode, OnnxTensor } from './onnx-proto.ts';
import { DataType, EXTERNAL_DATA } from './onnx-proto.ts';

const TYPE_NAMES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  16: 'bfloat16',
};

export function typeName(dataType: number): string {
  return TYPE_NAMES[dataType] ?? `data type ${dataType}`;
}

type IntArray = Int8Array | Uint8Array | Int32Array;
interface IntArrayType {
  new (buffer: ArrayBuffer): IntArray;
  from(values: number[]): IntArray;
  BYTES_PER_ELEMENT: number;
}
const INT_ARRAYS = { [DataType.INT8]: Int8Array, [DataType.UINT8]: Uint8Array, [DataType.INT32]: Int32Array } as const;

/** The network input: NCHW in the file, described here as our NHWC shape. */
export interface GraphInput extends Shape {
  name: string;
  elemType: number;
}

/** A conv or pool window; pads [top, left, bottom, right] as our IR orders them. */
export interface Window {
  kh: number;
  kw: number;
  stride: number;
  pads: Pads;
}

export class GraphReader {
  readonly graph: OnnxGraph;
  readonly input: GraphInput;
  readonly output: string;
  private readonly constants = new Map<string, OnnxTensor>();
  private readonly readers = new Map<string, OnnxNode[]>();

  constructor(
    model: OnnxModel,
    readonly file?: string,
  ) {
    if (!model.graph || model.graph.node.length === 0)
      throw new ModelImportError('not an ONNX model: it has no graph', { file });
    this.graph = model.graph;
    for (const t of this.graph.initializer) this.constants.set(t.name, t);
    for (const node of this.graph.node) {
      for (const name of node.input) if (name) this.readers.set(name, [...(this.readers.get(name) ?? []), node]);
      if (node.op_type === 'Constant' && isDefaultDomain(node))
        this.constants.set(node.output[0], this.constantValue(node));
      else if (this.isConstantAlias(node)) this.constants.set(node.output[0], this.constants.get(node.input[0])!);
    }
    this.input = this.graphInput();
    this.output = this.graphOutput();
  }

  error(node: OnnxNode, problem: string): ModelImportError {
    const op = isDefaultDomain(node) ? node.op_type : `${node.domain}.${node.op_type}`;
    return new ModelImportError(problem, { file: this.file, node: nodeName(node), op });
  }

  /** The nodes reading a value. */
  readersOf(name: string): OnnxNode[] {
    return this.readers.get(name) ?? [];
  }

  isConstant(name: string): boolean {
    return this.constants.has(name);
  }

  /** A Constant node, or an Identity of a constant: nothing to run, its value is a constant. */
  makesConstant(node: OnnxNode): boolean {
    return isDefaultDomain(node) && (node.op_type === 'Constant' || this.isConstantAlias(node));
  }

  /**
   * torch.onnx.export (TorchScript, 1.11 and later) keeps one initializer of several with equal
   * values and aliases the others with an Identity node each (`onnx::Conv_1265` = Identity of
   * `onnx::Conv_1262`): ResNets with default BN statistics fold to many equal zero biases.
   */
  private isConstantAlias(node: OnnxNode): boolean {
    return (
      node.op_type === 'Identity' &&
      isDefaultDomain(node) &&
      node.input.length === 1 &&
      this.constants.has(node.input[0])
    );
  }

  /** The node's input `index` as a constant tensor; `what` names it in errors. */
  constant(node: OnnxNode, index: number, what: string): OnnxTensor {
    const t = this.constants.get(node.input[index] ?? '');
    if (!t) throw this.error(node, `its ${what} ("${node.input[index] ?? ''}") must be a constant (an initializer)`);
    if (t.data_location === EXTERNAL_DATA || t.external_data.length > 0) {
      throw this.error(
        node,
        `its ${what} "${t.name}" is stored outside the file (external data), which is not supported`,
      );
    }
    return t;
  }

  optionalInput(node: OnnxNode, index: number): boolean {
    return (node.input[index] ?? '') !== '';
  }

  /** A float32 constant, checked to hold `count` values when given. */
  floats(node: OnnxNode, index: number, what: string, count?: number): Float32Array {
    const t = this.constant(node, index, what);
    if (t.data_type !== DataType.FLOAT)
      throw this.error(node, `its ${what} "${t.name}" is ${typeName(t.data_type)}; only float32 is supported`);
    const values = t.raw_data.length > 0 ? this.fromRaw(node, t, what, Float32Array) : Float32Array.from(t.float_data);
    return this.checkCount(node, t, values, what, count);
  }

  /** An int8, uint8 or int32 constant of the given type. */
  ints<T extends keyof typeof INT_ARRAYS>(
    node: OnnxNode,
    index: number,
    what: string,
    type: T,
    count?: number,
  ): InstanceType<(typeof INT_ARRAYS)[T]> {
    const t = this.constant(node, index, what);
    if (t.data_type !== type)
      throw this.error(node, `its ${what} "${t.name}" is ${typeName(t.data_type)}; expected ${typeName(type)}`);
    const ArrayType: IntArrayType = INT_ARRAYS[type];
    const values = t.raw_data.length > 0 ? this.fromRaw(node, t, what, ArrayType) : ArrayType.from(t.int32_data);
    return this.checkCount(node, t, values, what, count) as InstanceType<(typeof INT_ARRAYS)[T]>;
  }

  /** An int64 constant (shapes, axes). */
  int64s(node: OnnxNode, index: number, what: string): number[] {
    const t = this.constant(node, index, what);
    if (t.data_type !== DataType.INT64)
      throw this.error(node, `its ${what} "${t.name}" is ${typeName(t.data_type)}; expected int64`);
    return t.raw_data.length > 0 ? Array.from(this.fromRaw(node, t, what, BigInt64Array), Number) : t.int64_data;
  }

  /** ONNX raw data is little-endian, as wasm and every platform Node runs on are; the copy aligns it. */
  private fromRaw<A>(
    node: OnnxNode,
    t: OnnxTensor,
    what: string,
    ArrayType: { new (buffer: ArrayBuffer): A; BYTES_PER_ELEMENT: number },
  ): A {
    if (t.raw_data.length % ArrayType.BYTES_PER_ELEMENT !== 0) {
      throw this.error(
        node,
        `its ${what} "${t.name}" has ${t.raw_data.length} bytes of data, not a whole number of ${typeName(t.data_type)} values`,
      );
    }
    return new ArrayType(new Uint8Array(t.raw_data).buffer);
  }

  dims(node: OnnxNode, index: number, what: string): number[] {
    return this.constant(node, index, what).dims;
  }

  private checkCount<A extends ArrayLike<number>>(
    node: OnnxNode,
    t: OnnxTensor,
    values: A,
    what: string,
    count?: number,
  ): A {
    const expected = count ?? t.dims.reduce((n, d) => n * d, 1);
    if (values.length !== expected)
      throw this.error(node, `its ${what} "${t.name}" holds ${values.length} values, expected ${expected}`);
    return values;
  }

  private constantValue(node: OnnxNode): OnnxTensor {
    const value = node.attribute.find((a) => a.name === 'value');
    if (!value?.t) throw this.error(node, 'only a Constant with a tensor "value" attribute is supported');
    return { ...value.t, name: node.output[0] };
  }

  private graphInput(): GraphInput {
    const inputs = this.graph.input.filter((v) => !this.constants.has(v.name));
    if (inputs.length !== 1)
      throw new ModelImportError(
        `the graph has ${inputs.length} inputs besides its weights; exactly one image input is supported`,
        { file: this.file },
      );
    const { name, type } = inputs[0];
    const dims = type?.tensor_type?.shape?.dim ?? [];
    const where = `input "${name}"`;
    if (dims.length !== 4)
      throw new ModelImportError(`${where} has ${dims.length} dimensions; expected 4 (N, C, H, W)`, {
        file: this.file,
      });
    const [batch, ...chw] = dims;
    if (batch.dim_value !== undefined && batch.dim_value !== 1) {
      throw new ModelImportError(
        `${where} has batch size ${batch.dim_value}; only 1 or a symbolic batch is supported`,
        { file: this.file },
      );
    }
    const [c, h, w] = chw.map((d, i) => {
      if (d.dim_value === undefined || d.dim_value < 1) {
        const label = d.dim_param ? `"${d.dim_param}"` : 'unknown';
        throw new ModelImportError(
          `dynamic shape: dimension ${'CHW'[i]} of ${where} is ${label}; C, H and W must be fixed numbers`,
          { file: this.file },
        );
      }
      return d.dim_value;
    });
    if (c !== 3)
      throw new ModelImportError(`${where} has ${c} channels; an RGB image input has 3`, { file: this.file });
    if (h !== w)
      throw new ModelImportError(`${where} is ${h}x${w}; only square inputs are supported (a centre crop)`, {
        file: this.file,
      });
    return { name, h, w, c, elemType: type?.tensor_type?.elem_type ?? 0 };
  }

  private graphOutput(): string {
    if (this.graph.output.length !== 1) {
      throw new ModelImportError(
        `the graph has ${this.graph.output.length} outputs; exactly one (the logits) is supported`,
        { file: this.file },
      );
    }
    return this.graph.output[0].name;
  }
}

export function isDefaultDomain(node: OnnxNode): boolean {
  return node.domain === '' || node.domain === 'ai.onnx';
}

/** Unnamed nodes are named by their first output, which is unique in a graph. */
export function nodeName(node: OnnxNode): string {
  return node.name || `output ${node.output[0]}`;
}

function attribute(node: OnnxNode, name: string): OnnxAttribute | undefined {
  return node.attribute.find((a) => a.name === name);
}

export function intAttribute(node: OnnxNode, name: string, fallback: number): number {
  return attribute(node, name)?.i ?? fallback;
}

function intsAttribute(node: OnnxNode, name: string, fallback: number[]): number[] {
  return attribute(node, name)?.ints ?? fallback;
}

export function floatAttribute(node: OnnxNode, name: string, fallback: number): number {
  return attribute(node, name)?.f ?? fallback;
}

function stringAttribute(node: OnnxNode, name: string, fallback: string): string {
  const a = attribute(node, name);
  return a ? new TextDecoder().decode(a.s) : fallback;
}

/**
 * The window of a Conv (kernel from its weights) or MaxPool (kernel_shape), as our kernels run it:
 * one stride for both axes, no dilation; auto_pad SAME resolved against the input size.
 */
function windowOf(g: GraphReader, node: OnnxNode, input: Shape, kernel: [number, number]): Window {
  const [kh, kw] = kernel;
  const declared = intsAttribute(node, 'kernel_shape', kernel);
  if (declared[0] !== kh || declared[1] !== kw)
    throw g.error(node, `kernel_shape [${declared}] does not match the ${kh}x${kw} weights`);
  const dilations = intsAttribute(node, 'dilations', [1, 1]);
  if (dilations.some((d) => d !== 1))
    throw g.error(node, `dilated windows (dilations [${dilations}]) are not supported`);
  const strides = intsAttribute(node, 'strides', [1, 1]);
  if (strides.length !== 2 || strides[0] !== strides[1])
    throw g.error(node, `strides [${strides}] differ between H and W; only equal strides are supported`);
  const stride = strides[0];
  return { kh, kw, stride, pads: paddingOf(g, node, input, kh, kw, stride) };
}

function paddingOf(g: GraphReader, node: OnnxNode, input: Shape, kh: number, kw: number, stride: number): Pads {
  const autoPad = stringAttribute(node, 'auto_pad', 'NOTSET');
  switch (autoPad) {
    case 'NOTSET': {
      const [top, left, bottom, right] = intsAttribute(node, 'pads', [0, 0, 0, 0]);
      return [top, left, bottom, right];
    }
    case 'VALID':
      return [0, 0, 0, 0];
    case 'SAME_UPPER':
    case 'SAME_LOWER': {
      const total = [samePadding(input.h, kh, stride), samePadding(input.w, kw, stride)];
      if (total.some((t) => t % 2 !== 0)) {
        throw g.error(
          node,
          `auto_pad ${autoPad} pads ${total[0]}x${total[1]} in total here, unevenly between the sides; only symmetric padding is supported`,
        );
      }
      return [total[0] / 2, total[1] / 2, total[0] / 2, total[1] / 2];
    }
    default:
      throw g.error(node, `unknown auto_pad "${autoPad}"`);
  }
}

/** The total padding that makes the output ceil(size / stride) long. */
function samePadding(size: number, k: number, stride: number): number {
  return Math.max((Math.ceil(size / stride) - 1) * stride + k - size, 0);
}

/** The output shape of a window over `input` with `channels` output channels. */
export function windowOutput(input: Shape, { kh, kw, stride, pads }: Window, channels: number): Shape {
  return {
    h: Math.floor((input.h + pads[0] + pads[2] - kh) / stride) + 1,
    w: Math.floor((input.w + pads[1] + pads[3] - kw) / stride) + 1,
    c: channels,
  };
}

/** MaxPool's window, after refusing what our max pool cannot do. */
export function maxPoolWindow(g: GraphReader, node: OnnxNode, input: Shape): Window {
  if (intAttribute(node, 'ceil_mode', 0) !== 0) throw g.error(node, 'ceil_mode = 1 is not supported');
  if (g.readersOf(node.output[1] ?? '').length > 0) throw g.error(node, 'its indices output is not supported');
  const kernel = intsAttribute(node, 'kernel_shape', []);
  if (kernel.length !== 2 || kernel[0] !== kernel[1])
    throw g.error(node, `kernel_shape [${kernel}] is not a square 2-D window`);
  return windowOf(g, node, input, [kernel[0], kernel[1]]);
}

/**
 * AveragePool's window, after refusing what our average pool cannot do: it never counts padding
 * (nor, in ceil mode, the overhang past the input), so count_include_pad = 1 is refused wherever a
 * window would reach outside the input.
 */
export function averagePoolWindow(g: GraphReader, node: OnnxNode, input: Shape): Window & { ceil: boolean } {
  const kernel = intsAttribute(node, 'kernel_shape', []);
  if (kernel.length !== 2 || kernel[0] !== kernel[1])
    throw g.error(node, `kernel_shape [${kernel}] is not a square 2-D window`);
  const window = windowOf(g, node, input, [kernel[0], kernel[1]]);
  const [top, left, bottom, right] = window.pads;
  if (top !== bottom || left !== right || top !== left)
    throw g.error(node, `asymmetric padding [${window.pads}] is not supported`);
  const ceil = intAttribute(node, 'ceil_mode', 0) !== 0;
  const pool = { k: kernel[0], stride: window.stride, pad: top, ceil };
  const overhang = [input.h, input.w].some(
    (size) => (poolOutSize(size, pool) - 1) * pool.stride - pool.pad + pool.k > size + pool.pad,
  );
  if (intAttribute(node, 'count_include_pad', 0) !== 0 && (top > 0 || overhang)) {
    throw g.error(
      node,
      "count_include_pad = 1 over padding is not supported; only count_include_pad = 0 (padding not counted, as timm's ResNet-D writes it)",
    );
  }
  return { ...window, ceil };
}

/** Conv's window after refusing groups; `weightDims` are ONNX's [cout, cin, kh, kw]. */
export function convWindow(g: GraphReader, node: OnnxNode, input: Shape, weightDims: number[]): Window {
  const group = intAttribute(node, 'group', 1);
  if (group !== 1) throw g.error(node, `grouped convolution (group = ${group}) is not supported`);
  if (weightDims.length !== 4)
    throw g.error(node, `its weights have ${weightDims.length} dimensions; a 2-D convolution has 4`);
  return windowOf(g, node, input, [weightDims[2], weightDims[3]]);
}

/** ONNX conv weights [cout][cin][kh][kw] in our order [cout][kh][kw][cin]. */
export function toOhwi<T extends Float32Array | Int8Array>(weights: T, [cout, cin, kh, kw]: number[]): T {
  const out = new (weights.constructor as new (n: number) => T)(weights.length);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      for (let k = 0; k < kh * kw; k++) out[(o * kh * kw + k) * cin + i] = weights[(o * cin + i) * kh * kw + k];
    }
  }
  return out;
}

/** A [rows][cols] matrix transposed. */
export function transpose<T extends Float32Array | Int8Array>(m: T, rows: number, cols: number): T {
  const out = new (m.constructor as new (n: number) => T)(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c];
  return out;
}

/** ReduceMean over H and W is global average pooling; the axes are an attribute before opset 18, an input from 18. */
export function isSpatialMean(g: GraphReader, node: OnnxNode): boolean {
  const axes = g.optionalInput(node, 1) ? g.int64s(node, 1, 'axes') : intsAttribute(node, 'axes', []);
  const normalized = axes.map((a) => (a < 0 ? a + 4 : a)).sort();
  return normalized.length === 2 && normalized[0] === 2 && normalized[1] === 3;
}

/**
 * Flatten (axis 1) or Reshape to [N, C] of a 1x1 feature map: the same values in NCHW and NHWC
 * order, so nothing to compute. Anything else would need a layout change we do not run.
 */
export function checkFlatten(g: GraphReader, node: OnnxNode, input: Shape): Shape {
  if (input.h !== 1 || input.w !== 1)
    throw g.error(
      node,
      `flattening a ${input.h}x${input.w} feature map is not supported; only 1x1 (after global pooling)`,
    );
  if (node.op_type === 'Flatten' && intAttribute(node, 'axis', 1) !== 1)
    throw g.error(node, 'only Flatten with axis = 1 is supported');
  if (node.op_type === 'Reshape') {
    const shape = g.int64s(node, 1, 'shape');
    const [batch, ...rest] = shape;
    const channels = rest.reduce((n, d) => n * d, 1);
    if (![1, -1, 0].includes(batch) || !(channels === input.c || (rest.length === 1 && rest[0] === -1))) {
      throw g.error(node, `Reshape to [${shape}] is not supported; only to [N, ${input.c}]`);
    }
  }
  return { h: 1, w: 1, c: input.c };
}
