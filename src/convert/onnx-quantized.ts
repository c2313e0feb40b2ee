/**
 * A pre-quantized ONNX graph (onnxruntime's quantize_static, U8S8) → our int8 layers, keeping
 * onnxruntime's scales, zero points, int8 weights and int32 biases as they are, so that our
 * outputs follow its outputs. Two encodings of the same thing arrive here:
 *   QDQ:       DequantizeLinear → Conv / Add / GlobalAveragePool / Gemm (float) → QuantizeLinear;
 *              a layer is complete once the QuantizeLinear after it fixes its output scale.
 *   QOperator: QLinearConv, QLinearAdd, QLinearGlobalAveragePool, QGemm, QLinearMatMul and MaxPool
 *              on uint8 tensors, each carrying its output scale.
 * The final fully connected layer keeps f32 logits: onnxruntime quantizes them once more to uint8
 * and back, which only rounds (and clamps) them.
 */
import type { QuantLayer, QuantParams, QuantTensor, Shape } from '../model/types.ts';
import {
  checkFlatten,
  convWindow,
  floatAttribute,
  type GraphReader,
  intAttribute,
  isDefaultDomain,
  isSpatialMean,
  maxPoolWindow,
  nodeName,
  toOhwi,
  transpose,
  windowOutput,
} from './onnx-graph.ts';
import type { OnnxNode } from './onnx-proto.ts';
import { DataType } from './onnx-proto.ts';

/** An int8 weight or int32 bias constant with its per-channel (or single) scale, zero points checked to be 0. */
interface QuantConstant {
  values: Int8Array | Int32Array;
  dims: number[];
  /** null for a QOperator bias, whose scale is implied (input scale · weight scale). */
  scales: Float32Array | null;
  /** The axis the scales run along. */
  axis: number;
}

/** A layer whose output scale is not known yet; conv and add can take a fused ReLU. */
interface LayerPlan {
  kind: QuantLayer['kind'];
  shape: Shape;
  build: (outScale: number, relu: boolean) => QuantLayer;
}

/** What an ONNX value is in terms of our tensors. */
type Value =
  /** The float image, before its QuantizeLinear. */
  | { kind: 'input' }
  /** A uint8 tensor holding our tensor's values. */
  | { kind: 'uint8'; tensor: number }
  /** A float tensor equal to our tensor dequantized. */
  | { kind: 'real'; tensor: number }
  /** A layer's float result, waiting for the QuantizeLinear that fixes its output scale. */
  | { kind: 'pending'; plan: LayerPlan; relu: boolean; node: OnnxNode }
  | { kind: 'constant'; constant: QuantConstant };

const LOGITS: QuantParams = { scale: 1, zeroPoint: 0 };
/** Our kernels take int8 weights in −127..127 (docs/FORMAT.md); onnxruntime's symmetric quantization stays inside. */
const MIN_WEIGHT = -127;

export class QuantizedImport {
  readonly tensors: QuantTensor[] = [];
  readonly layers: QuantLayer[] = [];
  private readonly values = new Map<string, Value>();
  private logits = -1;

  constructor(private readonly g: GraphReader) {
    this.values.set(g.input.name, { kind: 'input' });
  }

  run(): { tensors: QuantTensor[]; layers: QuantLayer[] } {
    for (const node of this.g.graph.node) {
      if (this.g.makesConstant(node)) continue;
      this.values.set(node.output[0], this.convert(node));
    }
    const out = this.values.get(this.g.output);
    const last = this.layers[this.layers.length - 1];
    if (
      !out ||
      (out.kind !== 'real' && out.kind !== 'uint8') ||
      !last ||
      last.kind !== 'fc' ||
      out.tensor !== last.output
    ) {
      throw this.g.error(
        this.producer(this.g.output),
        'the graph output is not the result of a final fully connected layer',
      );
    }
    return { tensors: this.tensors, layers: this.layers };
  }

  private convert(node: OnnxNode): Value {
    const op = isDefaultDomain(node)
      ? node.op_type
      : node.domain === 'com.microsoft'
        ? `com.microsoft.${node.op_type}`
        : '';
    switch (op) {
      case 'QuantizeLinear':
        return this.quantize(node);
      case 'DequantizeLinear':
        return this.dequantize(node);
      case 'Relu':
        return this.relu(node);
      case 'Conv': {
        const bias = this.g.optionalInput(node, 2) ? this.constantValue(node, 2) : null;
        return this.pending(node, this.convPlan(node, this.real(node, 0), this.constantValue(node, 1), bias));
      }
      case 'QLinearConv': {
        const bias = this.g.optionalInput(node, 8) ? this.impliedScaleBias(node, 8) : null;
        const plan = this.convPlan(node, this.uint8(node, 0), this.quantConstant(node, 3, 0), bias);
        return this.emitUint8(plan, node, 6);
      }
      case 'Add':
        return this.pending(node, this.addPlan(node, this.real(node, 0), this.real(node, 1)));
      case 'com.microsoft.QLinearAdd':
        return this.emitUint8(this.addPlan(node, this.uint8(node, 0), this.uint8(node, 3)), node, 6);
      case 'GlobalAveragePool':
        return this.pending(node, this.gapPlan(node, this.real(node, 0)));
      case 'ReduceMean':
        if (!isSpatialMean(this.g, node))
          throw this.g.error(node, 'ReduceMean is supported only over H and W (global average pooling)');
        return this.pending(node, this.gapPlan(node, this.real(node, 0)));
      case 'com.microsoft.QLinearGlobalAveragePool':
        if (intAttribute(node, 'channels_last', 0) !== 0)
          throw this.g.error(node, 'channels_last = 1 is not supported');
        return this.emitUint8(this.gapPlan(node, this.uint8(node, 0)), node, 3);
      case 'MaxPool':
        return this.maxPool(node);
      case 'Gemm':
        return this.gemm(
          node,
          this.real(node, 0),
          this.constantValue(node, 1),
          this.g.optionalInput(node, 2) ? this.constantValue(node, 2) : null,
        );
      case 'com.microsoft.QGemm': {
        const bias = this.g.optionalInput(node, 6) ? this.impliedScaleBias(node, 6) : null;
        const transposed = intAttribute(node, 'transB', 0) === 1;
        return this.gemm(node, this.uint8(node, 0), this.quantConstant(node, 3, transposed ? 0 : 1), bias);
      }
      case 'MatMul':
        return this.fc(node, this.real(node, 0), this.constantValue(node, 1), false, null);
      case 'QLinearMatMul':
        return this.fc(node, this.uint8(node, 0), this.quantConstant(node, 3, 1), false, null);
      case 'Flatten':
      case 'Reshape':
        return this.passThrough(node, (shape) => checkFlatten(this.g, node, shape));
      case 'Identity':
      case 'Dropout':
        return this.passThrough(node, () => {});
      case 'Softmax':
        // The logits order the classes as the probabilities do; our runtime returns logits.
        if (node.output[0] !== this.g.output)
          throw this.g.error(node, 'Softmax is supported only as the last operation');
        return this.passThrough(node, () => {});
      default:
        throw this.g.error(node, 'unsupported operator');
    }
  }

  // Values

  private value(node: OnnxNode, index: number): Value {
    const value = this.values.get(node.input[index]);
    if (!value)
      throw this.g.error(node, `reads "${node.input[index]}", which no supported operation produces before it`);
    return value;
  }

  /** Our tensor behind a float input of a QDQ operator. */
  private real(node: OnnxNode, index: number): number {
    const v = this.value(node, index);
    if (v.kind === 'real') return v.tensor;
    throw this.g.error(node, `input "${node.input[index]}" must come from a DequantizeLinear${this.hint(v)}`);
  }

  /**
   * Our tensor behind a uint8 input of a QOperator node; the node's scale and zero point for it
   * (inputs `index + 1`, `index + 2`) must be the tensor's own.
   */
  private uint8(node: OnnxNode, index: number, hasParams = true): number {
    const v = this.value(node, index);
    if (v.kind !== 'uint8')
      throw this.g.error(node, `input "${node.input[index]}" must be a quantized uint8 tensor${this.hint(v)}`);
    if (hasParams) this.checkParams(node, v.tensor, this.activationParams(node, index + 1));
    return v.tensor;
  }

  private hint(v: Value): string {
    return v.kind === 'pending'
      ? ` (it is the float output of node "${nodeName(v.node)}", which no QuantizeLinear quantizes)`
      : '';
  }

  private constantValue(node: OnnxNode, index: number): QuantConstant {
    const v = this.value(node, index);
    if (v.kind !== 'constant')
      throw this.g.error(node, `input "${node.input[index]}" must be a DequantizeLinear of an int8 or int32 constant`);
    return v.constant;
  }

  private producer(name: string): OnnxNode {
    return this.g.graph.node.find((n) => n.output.includes(name)) ?? this.g.graph.node[this.g.graph.node.length - 1];
  }

  /** Flatten, Identity and friends: the same values, whatever stage they are at, once `check` accepts their shape. */
  private passThrough(node: OnnxNode, check: (shape: Shape) => void): Value {
    const v = this.value(node, 0);
    if (v.kind === 'pending') check(v.plan.shape);
    else if (v.kind === 'real' || v.kind === 'uint8') check(this.tensors[v.tensor]);
    else throw this.g.error(node, 'only activations can pass through here');
    return v;
  }

  // Quantization parameters and constants

  /** A per-tensor uint8 scale and zero point from the node's inputs `index` and `index + 1`. */
  private activationParams(node: OnnxNode, index: number): QuantParams {
    const scale = this.g.floats(node, index, 'scale', 1)[0];
    if (!(scale > 0 && Number.isFinite(scale))) throw this.g.error(node, `scale ${scale} must be positive and finite`);
    const zeroPoint = this.g.optionalInput(node, index + 1)
      ? this.g.ints(node, index + 1, 'zero point (uint8 activations only)', DataType.UINT8, 1)[0]
      : 0;
    return { scale, zeroPoint };
  }

  private checkParams(node: OnnxNode, tensor: number, params: QuantParams): void {
    const t = this.tensors[tensor];
    if (t.scale !== params.scale || t.zeroPoint !== params.zeroPoint) {
      throw this.g.error(
        node,
        `uses scale ${params.scale}, zero point ${params.zeroPoint} for a tensor quantized with scale ${t.scale}, zero point ${t.zeroPoint}; requantization is not supported`,
      );
    }
  }

  /** An int8 or int32 constant with its scale (input index + 1) and zero point (index + 2). */
  private quantConstant(node: OnnxNode, index: number, axis: number): QuantConstant {
    const type = this.g.constant(node, index, 'quantized weights').data_type;
    const values =
      type === DataType.INT32
        ? this.g.ints(node, index, 'bias', DataType.INT32)
        : this.g.ints(node, index, 'weights', DataType.INT8);
    const dims = this.g.dims(node, index, 'weights');
    const zeroPoints = this.g.optionalInput(node, index + 2)
      ? this.g.ints(node, index + 2, 'zero point', type === DataType.INT32 ? DataType.INT32 : DataType.INT8)
      : [];
    if (zeroPoints.some((z) => z !== 0))
      throw this.g.error(node, 'asymmetric weights (a zero point other than 0) are not supported');
    return {
      values,
      dims,
      scales: this.g.floats(node, index + 1, 'scale'),
      axis: axis < 0 ? axis + dims.length : axis,
    };
  }

  private impliedScaleBias(node: OnnxNode, index: number): QuantConstant {
    return {
      values: this.g.ints(node, index, 'bias', DataType.INT32),
      dims: this.g.dims(node, index, 'bias'),
      scales: null,
      axis: 0,
    };
  }

  /** One scale per output channel, which lie along `axis`; a single scale serves them all. */
  private channelScales(
    node: OnnxNode,
    c: QuantConstant,
    scales: Float32Array,
    axis: number,
    channels: number,
  ): Float32Array {
    if (scales.length === 1) return new Float32Array(channels).fill(scales[0]);
    if (scales.length !== channels || c.axis !== axis)
      throw this.g.error(
        node,
        `its ${scales.length} weight scales along axis ${c.axis} do not match its ${channels} output channels`,
      );
    return scales;
  }

  private weights(
    node: OnnxNode,
    w: QuantConstant,
    axis: number,
    channels: number,
  ): { weight: Int8Array; sw: Float32Array } {
    if (!(w.values instanceof Int8Array) || !w.scales) throw this.g.error(node, 'its weights must be int8');
    if (w.values.includes(MIN_WEIGHT - 1))
      throw this.g.error(node, `a weight is −128; only −127..127 is supported (symmetric int8)`);
    return { weight: w.values, sw: this.channelScales(node, w, w.scales, axis, channels) };
  }

  /** The int32 bias, whose scale must be input scale · weight scale, as the integer arithmetic assumes. */
  private bias(node: OnnxNode, b: QuantConstant | null, sx: number, sw: Float32Array): Int32Array {
    if (!b) return new Int32Array(sw.length);
    if (!(b.values instanceof Int32Array) || b.values.length !== sw.length)
      throw this.g.error(node, `its bias must be ${sw.length} int32 values`);
    const scales = b.scales && this.channelScales(node, b, b.scales, 0, sw.length);
    const off = scales?.findIndex((s, o) => Math.abs(s - sx * sw[o]) > 1e-5 * sx * sw[o]) ?? -1;
    if (off >= 0)
      throw this.g.error(
        node,
        `bias scale ${scales![off]} of channel ${off} is not input scale × weight scale (${sx * sw[off]})`,
      );
    return b.values;
  }

  // Layers

  private addTensor(shape: Shape, params: QuantParams): number {
    return (
      this.tensors.push({ h: shape.h, w: shape.w, c: shape.c, scale: params.scale, zeroPoint: params.zeroPoint }) - 1
    );
  }

  private emit(plan: LayerPlan, params: QuantParams, relu: boolean): number {
    const output = this.addTensor(plan.shape, params);
    this.layers.push({ ...plan.build(params.scale, relu), output });
    return output;
  }

  /**
   * A QOperator node: its output scale and zero point are its inputs `index` and `index + 1`. Its
   * result is clamped to 0..255 as ours is without a ReLU: quantize_static drops a ReLU whose
   * output range starts at 0 (zero point 0), where that clamp does the ReLU's work.
   */
  private emitUint8(plan: LayerPlan, node: OnnxNode, index: number): Value {
    return { kind: 'uint8', tensor: this.emit(plan, this.activationParams(node, index), false) };
  }

  private pending(node: OnnxNode, plan: LayerPlan): Value {
    return { kind: 'pending', plan, relu: false, node };
  }

  /** QuantizeLinear completes a pending layer, quantizes the image, or restates a tensor's own parameters. */
  private quantize(node: OnnxNode): Value {
    const params = this.activationParams(node, 1);
    const v = this.value(node, 0);
    switch (v.kind) {
      case 'input':
        if (this.tensors.length > 0) throw this.g.error(node, 'the input is quantized twice');
        return { kind: 'uint8', tensor: this.addTensor(this.g.input, params) };
      case 'pending':
        return { kind: 'uint8', tensor: this.emit(v.plan, params, v.relu) };
      case 'real':
        if (v.tensor !== this.logits) this.checkParams(node, v.tensor, params);
        return { kind: 'uint8', tensor: v.tensor };
      default:
        throw this.g.error(node, 'quantizes a value that is not a float activation');
    }
  }

  /** DequantizeLinear of a constant is a weight or bias; of an activation, its real values. */
  private dequantize(node: OnnxNode): Value {
    if (this.g.isConstant(node.input[0])) {
      return { kind: 'constant', constant: this.quantConstant(node, 0, intAttribute(node, 'axis', 1)) };
    }
    const v = this.value(node, 0);
    if (v.kind !== 'uint8') throw this.g.error(node, 'dequantizes a value that is not a quantized activation');
    if (v.tensor !== this.logits) this.checkParams(node, v.tensor, this.activationParams(node, 1));
    return { kind: 'real', tensor: v.tensor };
  }

  /** A ReLU between a conv or add and its QuantizeLinear fuses into the layer (it then clamps at the zero point). */
  private relu(node: OnnxNode): Value {
    const v = this.value(node, 0);
    if (v.kind !== 'pending' || (v.plan.kind !== 'conv' && v.plan.kind !== 'add')) {
      throw this.g.error(node, 'ReLU is supported only between a convolution or addition and its QuantizeLinear');
    }
    return { ...v, relu: true };
  }

  private convPlan(node: OnnxNode, x: number, w: QuantConstant, b: QuantConstant | null): LayerPlan {
    const input = this.tensors[x];
    const window = convWindow(this.g, node, input, w.dims);
    const [cout, cin] = w.dims;
    if (cin !== input.c) throw this.g.error(node, `expects ${cin} input channels, its input has ${input.c}`);
    const pad = window.pads[0];
    if (window.pads.some((p) => p !== pad))
      throw this.g.error(node, `asymmetric padding [${window.pads}] is not supported`);
    const { weight, sw } = this.weights(node, w, 0, cout);
    const bias = this.bias(node, b, input.scale, sw);
    const { kh, kw, stride } = window;
    const fields = {
      kind: 'conv',
      name: nodeName(node),
      input: x,
      output: -1,
      kh,
      kw,
      stride,
      pad,
      cin,
      cout,
      weight: toOhwi(weight, w.dims),
      bias,
    } as const;
    return {
      kind: 'conv',
      shape: windowOutput(input, window, cout),
      // In f32 arithmetic, as onnxruntime's QLinearConv computes its output scales.
      build: (sy, relu) => ({
        ...fields,
        relu,
        multiplier: Float32Array.from(sw, (s) => Math.fround(input.scale * s) / sy),
      }),
    };
  }

  private addPlan(node: OnnxNode, a: number, b: number): LayerPlan {
    const [ta, tb] = [this.tensors[a], this.tensors[b]];
    if (ta.h !== tb.h || ta.w !== tb.w || ta.c !== tb.c)
      throw this.g.error(node, 'adds tensors of different shapes (broadcasting is not supported)');
    return {
      kind: 'add',
      shape: ta,
      build: (sy, relu) => ({
        kind: 'add',
        name: nodeName(node),
        inputs: [a, b],
        output: -1,
        relu,
        multiplierA: Math.fround(ta.scale / sy),
        multiplierB: Math.fround(tb.scale / sy),
      }),
    };
  }

  private gapPlan(node: OnnxNode, x: number): LayerPlan {
    const { h, w, c, scale } = this.tensors[x];
    return {
      kind: 'gap',
      shape: { h: 1, w: 1, c },
      build: (sy) => ({
        kind: 'gap',
        name: nodeName(node),
        input: x,
        output: -1,
        multiplier: Math.fround(scale / (sy * h * w)),
      }),
    };
  }

  /** Max pool passes uint8 values through, so its output keeps its input's parameters. */
  private maxPool(node: OnnxNode): Value {
    const v = this.value(node, 0);
    const x = v.kind === 'uint8' ? this.uint8(node, 0, false) : this.real(node, 0);
    const input = this.tensors[x];
    const window = maxPoolWindow(this.g, node, input);
    const pad = window.pads[0];
    if (window.pads.some((p) => p !== pad))
      throw this.g.error(node, `asymmetric padding [${window.pads}] is not supported`);
    const plan: LayerPlan = {
      kind: 'maxpool',
      shape: windowOutput(input, window, input.c),
      build: () => ({
        kind: 'maxpool',
        name: nodeName(node),
        input: x,
        output: -1,
        k: window.kh,
        stride: window.stride,
        pad,
      }),
    };
    return { kind: v.kind === 'uint8' ? 'uint8' : 'real', tensor: this.emit(plan, input, false) };
  }

  /** Gemm / QGemm: alpha and beta 1, A not transposed. */
  private gemm(node: OnnxNode, x: number, w: QuantConstant, b: QuantConstant | null): Value {
    if (floatAttribute(node, 'alpha', 1) !== 1 || (b && floatAttribute(node, 'beta', 1) !== 1))
      throw this.g.error(node, 'alpha and beta other than 1 are not supported');
    if (intAttribute(node, 'transA', 0) !== 0) throw this.g.error(node, 'transA = 1 is not supported');
    return this.fc(node, x, w, intAttribute(node, 'transB', 0) === 1, b);
  }

  /** The classifier; `transposed` when the weights are [cout][cin] (Gemm transB = 1), else [cin][cout]. */
  private fc(node: OnnxNode, x: number, w: QuantConstant, transposed: boolean, b: QuantConstant | null): Value {
    if (w.dims.length !== 2) throw this.g.error(node, `its weights have ${w.dims.length} dimensions; expected 2`);
    const [cout, cin] = transposed ? w.dims : [w.dims[1], w.dims[0]];
    const input = this.tensors[x];
    if (input.h !== 1 || input.w !== 1 || input.c !== cin)
      throw this.g.error(
        node,
        `expects ${cin} inputs after global pooling, its input is ${input.h}x${input.w}x${input.c}`,
      );
    const { weight, sw } = this.weights(node, w, transposed ? 0 : 1, cout);
    const fields = {
      kind: 'fc',
      name: nodeName(node),
      input: x,
      output: -1,
      cin,
      cout,
      weight: transposed ? weight : transpose(weight, cin, cout),
      bias: this.bias(node, b, input.scale, sw),
      multiplier: Float32Array.from(sw, (s) => input.scale * s),
    } as const;
    this.logits = this.emit({ kind: 'fc', shape: { h: 1, w: 1, c: cout }, build: () => fields }, LOGITS, false);
    // QGemm and QLinearMatMul quantize their output (QGemm only when given an output scale).
    const quantized = node.op_type === 'QLinearMatMul' || (node.op_type === 'QGemm' && this.g.optionalInput(node, 7));
    return { kind: quantized ? 'uint8' : 'real', tensor: this.logits };
  }
}
