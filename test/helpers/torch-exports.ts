/**
 * ONNX files as the PyTorch exporters write torchvision ResNets, from builder networks (narrow, so
 * that the files are small), made deterministically here instead of committed:
 *   torch-1.13  torch.onnx.export (TorchScript), opset 14: BN folded into the convs, whose new
 *               weights and biases are named `onnx::Conv_NNN`, then initializers with equal values
 *               deduplicated, each duplicate replaced by an `Identity_N` node of the one kept
 *               (deduplicate_initializers.cpp, in eval mode since torch 1.11);
 *   torch-2     the same exporter in torch 2.x (`dynamo=False`), at its default opset 17;
 *   dynamo      `torch.onnx.export(..., dynamo=True)`, opset 18: BatchNormalization nodes reading the
 *               module's own parameter names, nodes named `node_<Op>_<n>`, input `x`, output
 *               `linear`, constants as initializers (no Constant nodes), the head as ReduceMean over
 *               axes [-1, -2] and a Reshape to [-1, C] (a dynamic batch `s0`), and equal initializers deduplicated by sharing
 *               one tensor between their readers (onnx_ir's DeduplicateInitializersPass);
 *   dynamo-fused  the same after onnxscript's optimizer has fused each BatchNormalization into the
 *               Conv before it (a Conv with a bias, its initializers named `val_N`), as torch 2.9's
 *               `optimize=True` writes ResNets.
 * An untrained torchvision ResNet (`resnet101()`: BN weight 1, bias 0, running mean 0, variance 1)
 * folds to a zero bias in every conv, so the deduplication aliases all but one bias per width. Its
 * random classifier gives every photo the same class; the tests focus it on photos' features
 * (builder/classifier.ts) so that a wrong import or int8 path shows.
 */

import type { UnfoldedNet } from '../../src/builder/batchnorm.ts';
import { foldBatchNorms } from '../../src/builder/batchnorm.ts';
import { focusClassifier } from '../../src/builder/classifier.ts';
import type { OnnxModelInit } from '../../src/convert/onnx-proto.ts';
import { DataType } from '../../src/convert/onnx-proto.ts';
import { runFloat } from '../../src/reference/fp32.ts';
import { exportFolded, exportUnfolded } from './onnx-export.ts';

export const EXPORTERS = ['torch-1.13', 'torch-2', 'dynamo', 'dynamo-fused'] as const;
export type Exporter = (typeof EXPORTERS)[number];

type Graph = NonNullable<OnnxModelInit['graph']>;
type Tensor = NonNullable<Graph['initializer']>[number];
type Node = NonNullable<Graph['node']>[number];

/**
 * The network with torchvision's initial BatchNorms (weight 1, bias 0, running mean 0, variance 1)
 * and, given photos (preprocessed), its classifier focused on their features.
 */
export function untrained(net: UnfoldedNet, photos: Float32Array[] = []): UnfoldedNet {
  for (const bn of net.batchNorms.values()) {
    bn.gamma.fill(1);
    bn.beta.fill(0);
    bn.mean.fill(0);
    bn.variance.fill(1);
  }
  const layers = net.model.layers;
  const fc = layers[layers.length - 1];
  if (photos.length === 0 || fc.kind !== 'fc') return net;
  const folded = foldBatchNorms(net);
  const features = photos.map((x) => {
    let feature = new Float32Array(0);
    runFloat(folded, x, (t, data) => {
      if (t === fc.input) feature = data.slice();
    });
    return feature;
  });
  layers[layers.length - 1] = focusClassifier(fc, features, { components: 3 });
  return net;
}

export function exportAs(exporter: Exporter, net: UnfoldedNet): OnnxModelInit {
  switch (exporter) {
    case 'torch-1.13':
      return aliasDuplicates(producedBy(exportFolded(foldBatchNorms(net), { opset: 14 }), '1.13.1'));
    case 'torch-2':
      return aliasDuplicates(producedBy(exportFolded(foldBatchNorms(net), { opset: 17 }), '2.5.1'));
    case 'dynamo':
      return shareDuplicates(asDynamo(exportUnfolded(net, foldBatchNorms(net), DYNAMO)));
    case 'dynamo-fused':
      return shareDuplicates(asDynamo(exportFolded(foldBatchNorms(net), DYNAMO)));
  }
}

const DYNAMO = { opset: 18, pool: 'ReduceMean', flatten: 'Reshape', batch: 's0' } as const;

function producedBy(model: OnnxModelInit, version: string): OnnxModelInit {
  return { ...model, producer_version: version };
}

/** Groups of initializers with the same type, dimensions and bytes, the first of each group kept. */
function duplicates(graph: Graph): Map<string, string> {
  const kept = new Map<string, string>();
  const canonical = new Map<string, string>();
  for (const t of graph.initializer!) {
    const values = t.raw_data
      ? Buffer.from(t.raw_data).toString('base64')
      : JSON.stringify([t.float_data, t.int32_data, t.int64_data]);
    const key = `${t.data_type}:${t.dims!.join('x')}:${values}`;
    const first = kept.get(key);
    if (first === undefined) kept.set(key, t.name!);
    else canonical.set(t.name!, first);
  }
  return canonical;
}

/** TorchScript's deduplication: each duplicate becomes an Identity of the kept one, inserted first in the graph. */
export function aliasDuplicates(model: OnnxModelInit): OnnxModelInit {
  const graph = model.graph!;
  const canonical = duplicates(graph);
  // Each Identity is inserted right after the graph's inputs, so the last one found comes first.
  const aliases: Node[] = [...canonical].reverse().map(([duplicate, kept], i) => ({
    op_type: 'Identity',
    name: `Identity_${i}`,
    input: [kept],
    output: [duplicate],
  }));
  const initializer = graph.initializer!.filter((t) => !canonical.has(t.name!));
  return { ...model, graph: { ...graph, initializer, node: [...aliases, ...graph.node!] } };
}

/** onnx_ir's deduplication: readers of a duplicate read the kept initializer. */
function shareDuplicates(model: OnnxModelInit): OnnxModelInit {
  const graph = model.graph!;
  const canonical = duplicates(graph);
  const node = graph.node!.map((n) => ({ ...n, input: n.input!.map((name) => canonical.get(name) ?? name) }));
  const initializer = graph.initializer!.filter((t) => !canonical.has(t.name!));
  return { ...model, graph: { ...graph, initializer, node } };
}

/** The dynamo exporter's names, constants and head. */
function asDynamo(model: OnnxModelInit): OnnxModelInit {
  const graph = model.graph!;
  const names = new Map([
    ['input', 'x'],
    ['output', 'linear'],
  ]);
  const rename = (name: string) => names.get(name) ?? name;
  const initializer: Tensor[] = graph.initializer!.map((t, i) => {
    if (!t.name!.startsWith('onnx::')) return t;
    names.set(t.name!, `val_${i}`);
    return { ...t, name: `val_${i}` };
  });
  const node: Node[] = [];
  for (const n of graph.node!) {
    if (n.op_type === 'Constant') {
      const value = n.attribute![0].t!;
      const name = `val_${initializer.length}`;
      initializer.push(n.name === '/Constant' ? axesFromEnd(name) : { ...value, name });
      names.set(n.output![0], name);
      continue;
    }
    const output = n.output![0] === 'output' ? 'linear' : `${n.op_type!.toLowerCase()}_${node.length}`;
    names.set(n.output![0], output);
    node.push({ ...n, name: `node_${n.op_type}_${node.length}`, input: n.input!.map(rename), output: [output] });
  }
  const io = (v: NonNullable<Graph['input']>[number]) => ({ ...v, name: rename(v.name!) });
  return {
    ...model,
    producer_version: '2.9.1',
    graph: { ...graph, node, initializer, input: graph.input!.map(io), output: graph.output!.map(io) },
  };
}

/** `x.mean([-1, -2], keepdim=True)`, as torch.export decomposes adaptive_avg_pool2d to 1x1. */
function axesFromEnd(name: string): Tensor {
  const axes = BigInt64Array.of(-1n, -2n);
  return { name, dims: [2], data_type: DataType.INT64, raw_data: new Uint8Array(axes.buffer) };
}
