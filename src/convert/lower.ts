/**
 * Import graph → FloatModel: fold BatchNorm into the conv before it, fuse a ReLU into the conv, add
 * or BatchNorm before it, fold explicit zero padding into the conv or max pool after it, drop ops
 * that compute nothing. A BatchNorm that no conv precedes alone (ResNet V2's pre-activation, after
 * an add or a max pool) becomes an affine layer. Whatever does not fit the int8 graph is refused
 * here, naming the source node.
 */
import { ModelImportError } from '../errors.ts';
import type { FloatLayer, FloatModel, Shape } from '../model/types.ts';
import { outSize, poolOutSize } from '../model/types.ts';
import type { IrGraph, IrOp, Pads } from './ir.ts';

type Conv = Extract<IrOp, { op: 'conv' }>;
type BatchNorm = Extract<IrOp, { op: 'batchnorm' }>;

/** A tensor as lowering sees it: a FloatModel tensor, maybe behind explicit zero padding. */
interface Value {
  tensor: number;
  pads: Pads;
  /** Every value is ≥ 0 (a ReLU output): zero padding then equals max pool's skipped padding. */
  nonNegative: boolean;
}

export function lowerGraph(graph: IrGraph, file?: string): FloatModel {
  return new Lowering(graph, file).run();
}

class Lowering {
  private readonly tensors: Shape[] = [];
  private readonly layers: FloatLayer[] = [];
  private readonly values = new Map<string, Value>();
  private readonly consumers = new Map<string, IrOp[]>();
  private readonly fused = new Set<IrOp>();

  constructor(
    private readonly graph: IrGraph,
    private readonly file?: string,
  ) {
    for (const op of graph.ops)
      for (const input of op.inputs) this.consumers.set(input, [...(this.consumers.get(input) ?? []), op]);
  }

  run(): FloatModel {
    const { input } = this.graph;
    this.values.set(input.name, {
      tensor: this.addTensor({ h: input.h, w: input.w, c: input.c }),
      pads: [0, 0, 0, 0],
      nonNegative: false,
    });
    for (const op of this.graph.ops) if (!this.fused.has(op)) this.lower(op);
    const out = this.value(this.graph.output, null);
    const last = this.layers[this.layers.length - 1];
    if (last?.kind !== 'fc' || last.output !== out.tensor) {
      throw new ModelImportError(
        `the graph output "${this.graph.output}" is not the result of a final fully connected layer`,
        { file: this.file },
      );
    }
    const { architecture, preprocessing, labels } = this.graph;
    return { architecture, preprocessing, labels, tensors: this.tensors, layers: this.layers };
  }

  private lower(op: IrOp): void {
    switch (op.op) {
      case 'identity':
        this.values.set(op.output, this.value(op.inputs[0], op));
        return;
      case 'pad': {
        const v = this.value(op.inputs[0], op);
        this.values.set(op.output, { ...v, pads: v.pads.map((p, i) => p + op.pads[i]) as Pads });
        return;
      }
      case 'conv':
        return this.lowerConv(op);
      case 'add':
        return this.lowerAdd(op);
      case 'maxpool':
        return this.lowerMaxPool(op);
      case 'avgpool':
        return this.lowerAvgPool(op);
      case 'gap': {
        const x = this.unpadded(op.inputs[0], op);
        this.emit(op.output, { h: 1, w: 1, c: this.tensors[x].c }, false, {
          kind: 'gap',
          name: op.name,
          input: x,
          output: -1,
        });
        return;
      }
      case 'fc':
        return this.lowerFc(op);
      case 'batchnorm':
        return this.lowerAffine(op);
      case 'relu':
        throw this.error(
          op,
          'ReLU is supported only directly after a convolution, an addition or a BatchNormalization',
        );
    }
  }

  private lowerConv(op: Conv): void {
    const x = this.value(op.inputs[0], op);
    const shape = this.tensors[x.tensor];
    if (shape.c !== op.cin) throw this.error(op, `expects ${op.cin} input channels, its input has ${shape.c}`);
    const pad = this.symmetricPad(op, x.pads.map((p, i) => p + op.pads[i]) as Pads);
    let weight = op.weight;
    let bias = op.bias ?? new Float32Array(op.cout);
    let output = op.output;
    const bn = this.soleConsumer(output, 'batchnorm') as BatchNorm | null;
    if (bn) {
      ({ weight, bias } = foldBatchNorm(op, weight, bias, bn));
      output = bn.output;
    }
    const relu = this.soleConsumer(output, 'relu');
    if (relu) output = relu.output;
    const h = outSize(shape.h, op.kh, op.stride, pad);
    const w = outSize(shape.w, op.kw, op.stride, pad);
    if (h < 1 || w < 1) throw this.error(op, `kernel ${op.kh}x${op.kw} does not fit its ${shape.h}x${shape.w} input`);
    this.emit(output, { h, w, c: op.cout }, relu !== null, {
      kind: 'conv',
      name: op.name,
      input: x.tensor,
      output: -1,
      kh: op.kh,
      kw: op.kw,
      stride: op.stride,
      pad,
      cin: op.cin,
      cout: op.cout,
      relu: relu !== null,
      weight,
      bias,
    });
  }

  private lowerAdd(op: Extract<IrOp, { op: 'add' }>): void {
    if (op.inputs.length !== 2) throw this.error(op, `adds ${op.inputs.length} tensors; only 2 are supported`);
    const [a, b] = op.inputs.map((name) => this.unpadded(name, op));
    const [sa, sb] = [this.tensors[a], this.tensors[b]];
    if (sa.h !== sb.h || sa.w !== sb.w || sa.c !== sb.c) {
      throw this.error(
        op,
        `adds tensors of different shapes ${sa.h}x${sa.w}x${sa.c} and ${sb.h}x${sb.w}x${sb.c} (broadcasting is not supported)`,
      );
    }
    const relu = this.soleConsumer(op.output, 'relu');
    this.emit(relu ? relu.output : op.output, { ...sa }, relu !== null, {
      kind: 'add',
      name: op.name,
      inputs: [a, b],
      output: -1,
      relu: relu !== null,
    });
  }

  private lowerMaxPool(op: Extract<IrOp, { op: 'maxpool' }>): void {
    const x = this.value(op.inputs[0], op);
    // Explicit zero padding equals the max pool's own (skipped) padding only over values ≥ 0.
    if (x.pads.some((p) => p > 0) && !x.nonNegative) {
      throw this.error(
        op,
        'max pool over zero-padded values that can be negative: zero padding would change the result',
      );
    }
    const pad = this.symmetricPad(op, x.pads.map((p, i) => p + op.pads[i]) as Pads);
    const shape = this.tensors[x.tensor];
    const h = outSize(shape.h, op.k, op.stride, pad);
    const w = outSize(shape.w, op.k, op.stride, pad);
    if (pad >= op.k) throw this.error(op, `padding ${pad} is not smaller than the ${op.k}x${op.k} window`);
    this.emit(op.output, { h, w, c: shape.c }, x.nonNegative, {
      kind: 'maxpool',
      name: op.name,
      input: x.tensor,
      output: -1,
      k: op.k,
      stride: op.stride,
      pad,
    });
  }

  private lowerAvgPool(op: Extract<IrOp, { op: 'avgpool' }>): void {
    // Explicit zero padding would be counted in the mean; ours never counts padding.
    const x = this.unpadded(op.inputs[0], op);
    const shape = this.tensors[x];
    const pool = { k: op.k, stride: op.stride, pad: this.symmetricPad(op, op.pads), ceil: op.ceil };
    if (pool.pad >= pool.k)
      throw this.error(op, `padding ${pool.pad} is not smaller than the ${pool.k}x${pool.k} window`);
    const h = poolOutSize(shape.h, pool);
    const w = poolOutSize(shape.w, pool);
    if (h < 1 || w < 1) throw this.error(op, `window ${op.k}x${op.k} does not fit its ${shape.h}x${shape.w} input`);
    const nonNegative = this.values.get(op.inputs[0])!.nonNegative;
    this.emit(op.output, { h, w, c: shape.c }, nonNegative, {
      kind: 'avgpool',
      name: op.name,
      input: x,
      output: -1,
      ...pool,
    });
  }

  /** A BatchNormalization that was not folded into a conv: y = x·γ/√(σ²+ε) + (β − μ·γ/√(σ²+ε)). */
  private lowerAffine(op: BatchNorm): void {
    const x = this.unpadded(op.inputs[0], op);
    const channels = this.tensors[x].c;
    if (op.gamma.length !== channels)
      throw this.error(op, `has ${op.gamma.length} channels, its input has ${channels}`);
    const scale = Float32Array.from(op.gamma, (g, c) => g / Math.sqrt(op.variance[c] + op.epsilon));
    const shift = Float32Array.from(op.beta, (b, c) => b - op.mean[c] * scale[c]);
    const relu = this.soleConsumer(op.output, 'relu');
    this.emit(relu ? relu.output : op.output, { ...this.tensors[x] }, relu !== null, {
      kind: 'affine',
      name: op.name,
      input: x,
      output: -1,
      channels,
      relu: relu !== null,
      scale,
      shift,
    });
  }

  private lowerFc(op: Extract<IrOp, { op: 'fc' }>): void {
    const x = this.unpadded(op.inputs[0], op);
    const shape = this.tensors[x];
    if (shape.h * shape.w * shape.c !== op.cin) {
      throw this.error(op, `expects ${op.cin} inputs, its input is ${shape.h}x${shape.w}x${shape.c}`);
    }
    if (shape.h !== 1 || shape.w !== 1)
      throw this.error(op, 'a fully connected layer must follow global average pooling');
    this.emit(op.output, { h: 1, w: 1, c: op.cout }, false, {
      kind: 'fc',
      name: op.name,
      input: x,
      output: -1,
      cin: op.cin,
      cout: op.cout,
      weight: op.weight,
      bias: op.bias ?? new Float32Array(op.cout),
    });
  }

  /** Appends a layer writing a new tensor, and names that tensor `output`. */
  private emit(output: string, shape: Shape, nonNegative: boolean, layer: FloatLayer): void {
    layer.output = this.addTensor(shape);
    this.layers.push(layer);
    this.values.set(output, { tensor: layer.output, pads: [0, 0, 0, 0], nonNegative });
  }

  private addTensor(shape: Shape): number {
    return this.tensors.push(shape) - 1;
  }

  private value(name: string, reader: IrOp | null): Value {
    const v = this.values.get(name);
    if (!v) {
      const where = reader ? { file: this.file, node: reader.name, op: reader.source } : { file: this.file };
      throw new ModelImportError(`reads "${name}", which no supported op produces before it`, where);
    }
    return v;
  }

  private unpadded(name: string, reader: IrOp): number {
    const v = this.value(name, reader);
    if (v.pads.some((p) => p !== 0))
      throw this.error(reader, 'explicit padding is supported only before a convolution or a max pool');
    return v.tensor;
  }

  /** The op reading `tensor`, when it is the only reader and of the given kind. */
  private soleConsumer(tensor: string, kind: 'batchnorm' | 'relu'): IrOp | null {
    const readers = this.consumers.get(tensor) ?? [];
    if (readers.length !== 1 || readers[0].op !== kind || tensor === this.graph.output) return null;
    this.fused.add(readers[0]);
    return readers[0];
  }

  private symmetricPad(op: IrOp, pads: Pads): number {
    if (pads.some((p) => p !== pads[0])) {
      throw this.error(
        op,
        `asymmetric padding [top ${pads[0]}, left ${pads[1]}, bottom ${pads[2]}, right ${pads[3]}] is not supported`,
      );
    }
    return pads[0];
  }

  private error(op: IrOp, problem: string): ModelImportError {
    return new ModelImportError(problem, { file: this.file, node: op.name, op: op.source });
  }
}

/** w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β, per output channel. */
function foldBatchNorm(conv: Conv, weight: Float32Array, bias: Float32Array, bn: BatchNorm) {
  const perChannel = conv.kh * conv.kw * conv.cin;
  const folded = { weight: new Float32Array(weight.length), bias: new Float32Array(conv.cout) };
  for (let o = 0; o < conv.cout; o++) {
    const factor = bn.gamma[o] / Math.sqrt(bn.variance[o] + bn.epsilon);
    for (let i = o * perChannel; i < (o + 1) * perChannel; i++) folded.weight[i] = weight[i] * factor;
    folded.bias[o] = (bias[o] - bn.mean[o]) * factor + bn.beta[o];
  }
  return folded;
}
