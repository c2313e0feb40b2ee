/**
 * ONNX → our models. An fp32 graph (as torch.onnx.export writes torchvision ResNets) becomes an
 * import graph for lowerGraph, then calibration and quantization; a graph onnxruntime has already
 * quantized (QDQ or QOperator) becomes a QuantModel directly, with onnxruntime's own parameters.
 * The graph is recognised by its operators and connections, never by tensor names. Whatever we
 * cannot run is refused with a ModelImportError naming the node, before anything is written.
 */
import { ModelImportError } from '../errors.ts';
import type { ModelInfo, QuantModel } from '../model/types.ts';
import { layerInputs } from '../model/types.ts';
import { defaultLabels, preprocessingPreset } from './imagenet.ts';
import type { IrGraph, IrOp } from './ir.ts';
import { FloatImport } from './onnx-float.ts';
import { GraphReader, typeName } from './onnx-graph.ts';
import type { OnnxModel } from './onnx-proto.ts';
import { DataType, decodeOnnxModel } from './onnx-proto.ts';
import { QuantizedImport } from './onnx-quantized.ts';

export type OnnxImport = { kind: 'float'; graph: IrGraph } | { kind: 'quantized'; model: QuantModel };

const QUANTIZED_OPS = /^(QuantizeLinear|DequantizeLinear|QLinear\w+|QGemm)$/;
const RESNET_DEPTHS = [18, 34, 50, 101, 152];

export function importOnnx(bytes: Uint8Array, file?: string): OnnxImport {
  const g = new GraphReader(decode(bytes, file), file);
  if (g.input.elemType !== DataType.FLOAT) {
    throw new ModelImportError(
      `input "${g.input.name}" is ${typeName(g.input.elemType)}; only a float32 image input is supported`,
      { file },
    );
  }
  if (g.graph.node.some((node) => QUANTIZED_OPS.test(node.op_type))) {
    const { tensors, layers } = new QuantizedImport(g).run();
    const steps = layers.map((l) => ({
      inputs: layerInputs(l),
      output: l.output,
      weighted: l.kind === 'conv' || l.kind === 'fc',
    }));
    const classes = tensors[tensors.length - 1].c;
    const architecture = isResidual(steps) ? resnetName(weightedDepth(steps)) : null;
    return { kind: 'quantized', model: { ...modelInfo(g, architecture, classes), tensors, layers } };
  }
  const ops = new FloatImport(g).run();
  const steps = ops.map((op) => ({
    inputs: op.inputs,
    output: op.output,
    weighted: op.op === 'conv' || op.op === 'fc',
  }));
  const classes = ops.reduce((n, op) => (op.op === 'fc' ? op.cout : n), 0);
  const { name, h, w, c } = g.input;
  const architecture = isResidual(steps) ? familyName(ops, weightedDepth(steps)) : null;
  const graph = { ...modelInfo(g, architecture, classes), input: { name, h, w, c }, ops, output: g.output };
  return { kind: 'float', graph };
}

function decode(bytes: Uint8Array, file?: string): OnnxModel {
  try {
    return decodeOnnxModel(bytes);
  } catch (e) {
    throw new ModelImportError(`not a valid ONNX model (the protobuf does not parse: ${(e as Error).message})`, {
      file,
    });
  }
}

interface Step<K> {
  inputs: K[];
  output: K;
  weighted: boolean;
}

/** torchvision's ImageNet preprocessing for the input size, ImageNet labels for 1000 classes, the architecture when recognised. */
function modelInfo(g: GraphReader, architecture: string | null, classes: number): ModelInfo {
  return {
    architecture: architecture ?? `onnx:${g.graph.name || 'graph'}`,
    preprocessing: preprocessingPreset('torch', g.input.h),
    labels: defaultLabels(classes),
  };
}

function isResidual<K>(steps: Step<K>[]): boolean {
  return steps.some((s) => s.inputs.length === 2);
}

function resnetName(depth: number): string | null {
  return RESNET_DEPTHS.includes(depth) ? `resnet${depth}` : null;
}

/**
 * The ResNet family member, by structure (timm's names): a deep stem (three 3x3 convs first) adds
 * 2 convs to the longest path and makes ResNet-C; an average pool (in a shortcut) makes ResNet-D; a
 * BatchNorm after something other than a conv is V2's pre-activation.
 */
function familyName(ops: IrOp[], depth: number): string | null {
  const convs = ops.filter((op) => op.op === 'conv');
  const deepStem = convs.length > 3 && convs.slice(0, 3).every((op) => op.kh === 3 && op.kw === 3);
  const base = resnetName(deepStem ? depth - 2 : depth);
  if (!base) return null;
  const producers = new Map(ops.map((op) => [op.output, op.op]));
  if (ops.some((op) => op.op === 'batchnorm' && producers.get(op.inputs[0]) !== 'conv'))
    return base.replace('resnet', 'resnetv2_');
  if (ops.some((op) => op.op === 'avgpool')) return `${base}d`;
  return deepStem ? `${base}c` : base;
}

/** A ResNet's depth counts the convs and fc on its longest path (the shortcuts skip some). */
function weightedDepth<K>(steps: Step<K>[]): number {
  const depth = new Map<K, number>();
  let deepest = 0;
  for (const { inputs, output, weighted } of steps) {
    const d = Math.max(0, ...inputs.map((i) => depth.get(i) ?? 0)) + (weighted ? 1 : 0);
    depth.set(output, d);
    deepest = Math.max(deepest, d);
  }
  return deepest;
}
