/**
 * An fp32 ONNX graph → the import IR, one op per ONNX node: weights transposed from NCHW-major
 * layouts to ours, BatchNormalization and Relu kept separate for lowering to fold.
 */
import { poolOutSize, type Shape } from '../model/types.ts';
import type { IrOp } from './ir.ts';
import {
  averagePoolWindow,
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

export class FloatImport {
  readonly ops: IrOp[] = [];
  /** The shape of every activation, for SAME padding and the flatten checks. */
  private readonly shapes = new Map<string, Shape>();
  /** Add nodes already folded into the MatMul before them as its bias. */
  private readonly folded = new Set<OnnxNode>();

  constructor(private readonly g: GraphReader) {
    this.shapes.set(g.input.name, g.input);
  }

  run(): IrOp[] {
    for (const node of this.g.graph.node) {
      if (this.folded.has(node) || this.g.makesConstant(node)) continue;
      const op = this.convert(node);
      this.ops.push(op.op);
      this.shapes.set(op.op.output, op.shape);
    }
    return this.ops;
  }

  private convert(node: OnnxNode): { op: IrOp; shape: Shape } {
    if (!isDefaultDomain(node)) throw this.g.error(node, 'unsupported operator');
    switch (node.op_type) {
      case 'Conv':
        return this.conv(node);
      case 'BatchNormalization':
        return this.batchNorm(node);
      case 'Relu':
        return this.simple(node, 'relu');
      case 'Add':
        return this.add(node);
      case 'MaxPool': {
        const input = this.shape(node);
        const { kh, stride, pads } = maxPoolWindow(this.g, node, input);
        const shape = windowOutput(input, { kh, kw: kh, stride, pads }, input.c);
        return { op: { ...this.base(node, 1), op: 'maxpool', k: kh, stride, pads }, shape };
      }
      case 'AveragePool': {
        const input = this.shape(node);
        const { kh, stride, pads, ceil } = averagePoolWindow(this.g, node, input);
        const pool = { k: kh, stride, pad: pads[0], ceil };
        const shape = { h: poolOutSize(input.h, pool), w: poolOutSize(input.w, pool), c: input.c };
        return { op: { ...this.base(node, 1), op: 'avgpool', k: kh, stride, pads, ceil }, shape };
      }
      case 'GlobalAveragePool':
        return this.gap(node);
      case 'ReduceMean':
        if (!isSpatialMean(this.g, node))
          throw this.g.error(node, 'ReduceMean is supported only over H and W (global average pooling)');
        return this.gap(node);
      case 'Flatten':
      case 'Reshape':
        return { op: { ...this.base(node, 1), op: 'identity' }, shape: checkFlatten(this.g, node, this.shape(node)) };
      case 'Gemm':
        return this.gemm(node);
      case 'MatMul':
        return this.matMul(node);
      case 'Identity':
      case 'Dropout':
        if (this.g.readersOf(node.output[1] ?? '').length > 0)
          throw this.g.error(node, 'its mask output is not supported');
        return this.simple(node, 'identity');
      case 'Softmax':
        // The logits order the classes as the probabilities do; our runtime returns logits.
        if (node.output[0] !== this.g.output)
          throw this.g.error(node, 'Softmax is supported only as the last operation');
        return this.simple(node, 'identity');
      default:
        throw this.g.error(node, 'unsupported operator');
    }
  }

  /** The fields every op has; `activations` is how many leading inputs are activations. */
  private base(node: OnnxNode, activations: number) {
    return {
      name: nodeName(node),
      source: node.op_type,
      inputs: node.input.slice(0, activations),
      output: node.output[0],
    };
  }

  private shape(node: OnnxNode, index = 0): Shape {
    const shape = this.shapes.get(node.input[index]);
    if (!shape)
      throw this.g.error(node, `reads "${node.input[index]}", which no supported operation produces before it`);
    return shape;
  }

  private simple(node: OnnxNode, op: 'relu' | 'identity'): { op: IrOp; shape: Shape } {
    return { op: { ...this.base(node, 1), op }, shape: this.shape(node) };
  }

  private gap(node: OnnxNode): { op: IrOp; shape: Shape } {
    return { op: { ...this.base(node, 1), op: 'gap' }, shape: { h: 1, w: 1, c: this.shape(node).c } };
  }

  private conv(node: OnnxNode): { op: IrOp; shape: Shape } {
    const input = this.shape(node);
    const dims = this.g.dims(node, 1, 'weights');
    const { kh, kw, stride, pads } = convWindow(this.g, node, input, dims);
    const [cout, cin] = dims;
    const weight = toOhwi(this.g.floats(node, 1, 'weights'), dims);
    const bias = this.g.optionalInput(node, 2) ? this.g.floats(node, 2, 'bias', cout) : null;
    const op: IrOp = { ...this.base(node, 1), op: 'conv', kh, kw, stride, pads, cin, cout, weight, bias };
    return { op, shape: windowOutput(input, { kh, kw, stride, pads }, cout) };
  }

  private batchNorm(node: OnnxNode): { op: IrOp; shape: Shape } {
    if (intAttribute(node, 'training_mode', 0) !== 0) throw this.g.error(node, 'training mode is not supported');
    if (node.output.slice(1).some((name) => this.g.readersOf(name).length > 0))
      throw this.g.error(node, 'its running-statistics outputs are not supported');
    const shape = this.shape(node);
    const [gamma, beta, mean, variance] = ['scale', 'bias', 'mean', 'variance'].map((what, i) =>
      this.g.floats(node, i + 1, what, shape.c),
    );
    const epsilon = floatAttribute(node, 'epsilon', 1e-5);
    return { op: { ...this.base(node, 1), op: 'batchnorm', gamma, beta, mean, variance, epsilon }, shape };
  }

  private add(node: OnnxNode): { op: IrOp; shape: Shape } {
    const constant = node.input.find((name) => this.g.isConstant(name));
    if (constant !== undefined)
      throw this.g.error(node, `adding a constant ("${constant}") is supported only as the bias of a MatMul`);
    return { op: { ...this.base(node, 2), op: 'add' }, shape: this.shape(node) };
  }

  /** Y = A·Bᵀ + C (transB = 1, as torch writes nn.Linear) or A·B + C. */
  private gemm(node: OnnxNode): { op: IrOp; shape: Shape } {
    if (floatAttribute(node, 'alpha', 1) !== 1)
      throw this.g.error(node, `alpha = ${floatAttribute(node, 'alpha', 1)} is not supported; only 1`);
    const hasBias = this.g.optionalInput(node, 2);
    if (hasBias && floatAttribute(node, 'beta', 1) !== 1)
      throw this.g.error(node, `beta = ${floatAttribute(node, 'beta', 1)} is not supported; only 1`);
    if (intAttribute(node, 'transA', 0) !== 0) throw this.g.error(node, 'transA = 1 is not supported');
    const fc = this.fc(node, intAttribute(node, 'transB', 0) === 1);
    if (hasBias) fc.bias = this.g.floats(node, 2, 'bias', fc.cout);
    return { op: fc, shape: { h: 1, w: 1, c: fc.cout } };
  }

  /** MatMul, with the Add of a constant after it (if that is its only reader) as the bias. */
  private matMul(node: OnnxNode): { op: IrOp; shape: Shape } {
    const fc = this.fc(node, false);
    const readers = this.g.readersOf(node.output[0]);
    const add = readers.length === 1 && readers[0].op_type === 'Add' && isDefaultDomain(readers[0]) ? readers[0] : null;
    const biasIndex = add ? add.input.findIndex((name) => this.g.isConstant(name)) : -1;
    if (add && biasIndex >= 0) {
      fc.bias = this.g.floats(add, biasIndex, 'bias', fc.cout);
      fc.output = add.output[0];
      this.folded.add(add);
    }
    return { op: fc, shape: { h: 1, w: 1, c: fc.cout } };
  }

  private fc(node: OnnxNode, transposed: boolean): Extract<IrOp, { op: 'fc' }> {
    const dims = this.g.dims(node, 1, 'weights');
    if (dims.length !== 2) throw this.g.error(node, `its weights have ${dims.length} dimensions; expected 2`);
    const [cout, cin] = transposed ? dims : [dims[1], dims[0]];
    const weights = this.g.floats(node, 1, 'weights');
    const weight = transposed ? weights : transpose(weights, cin, cout);
    return { ...this.base(node, 1), op: 'fc', cin, cout, weight, bias: null };
  }
}
