/**
 * The residual blocks of a network graph, found by structure: every `add` whose two inputs lead
 * back, through single-input layers, to one tensor (the block's input). The layers on those two
 * paths and the add are the block; the shorter path with layers on it is a projection shortcut.
 * Works on Keras, torchvision and timm graphs alike, whatever their names.
 */
import { type FloatLayer, type LayerHeader, layerInputs, type QuantLayer } from '../model/types.ts';

export interface ResidualBlock {
  /** The common prefix of its layers' names (`layer2.1`, `conv3_block2`, `res3b`), else its add's name. */
  name: string;
  /** The tensor the block reads: its identity path starts here. */
  input: number;
  /** The tensor its add writes. */
  output: number;
  /** Indices of its layers in execution order; the add is the last. */
  layers: number[];
  /** The projection shortcut's layers (a 1x1 conv, maybe after an average pool); empty for identity. */
  shortcut: number[];
}

type Layer = FloatLayer | QuantLayer | LayerHeader;

export function residualBlocks(model: { layers: readonly Layer[] }): ResidualBlock[] {
  const producers = new Map(model.layers.map((layer, index) => [layer.output, index]));
  const blocks: ResidualBlock[] = [];
  model.layers.forEach((layer, index) => {
    if (layer.kind !== 'add') return;
    const block = blockEndingAt(model.layers, producers, index);
    if (block) blocks.push(block);
  });
  return blocks;
}

function blockEndingAt(
  layers: readonly Layer[],
  producers: Map<number, number>,
  addIndex: number,
): ResidualBlock | null {
  const add = layers[addIndex];
  if (add.kind !== 'add') return null;
  const [a, b] = add.inputs.map((t) => pathBack(layers, producers, t));
  const input = a.tensors.find((t) => b.tensors.includes(t));
  if (input === undefined) return null;
  const [pathA, pathB] = [a, b].map((path) => path.layers.slice(0, path.tensors.indexOf(input)));
  const inside = new Set([...pathA, ...pathB, addIndex]);
  if (!readOnlyInside(layers, inside, add.output)) return null;
  const shortcut = pathA.length === 0 || pathB.length === 0 ? [] : pathA.length <= pathB.length ? pathA : pathB;
  const members = [...inside].sort((x, y) => x - y);
  const name = commonPrefix(members.filter((i) => i !== addIndex).map((i) => layers[i].name)) || add.name;
  return { name, input, output: add.output, layers: members, shortcut: shortcut.sort((x, y) => x - y) };
}

/** Tensors from `t` back through single-input layers, up to an add's output or the network input. */
function pathBack(
  layers: readonly Layer[],
  producers: Map<number, number>,
  t: number,
): { tensors: number[]; layers: number[] } {
  const tensors = [t];
  const path: number[] = [];
  for (let index = producers.get(t); index !== undefined && layers[index].kind !== 'add'; index = producers.get(t)) {
    path.push(index);
    t = layerInputs(layers[index])[0];
    tensors.push(t);
  }
  return { tensors, layers: path };
}

/** Only the block's own layers read what its layers write, but for its output. */
function readOnlyInside(layers: readonly Layer[], inside: Set<number>, output: number): boolean {
  const written = new Set([...inside].map((i) => layers[i].output));
  written.delete(output);
  return layers.every((layer, index) => inside.has(index) || layerInputs(layer).every((t) => !written.has(t)));
}

/** `layer2.1.conv1`, `layer2.1.conv2` → `layer2.1`; `res2b_branch2a`, `res2b_branch2b` → `res2b`. */
function commonPrefix(names: string[]): string {
  if (names.length === 0) return '';
  let prefix = names[0];
  for (const name of names) while (!name.startsWith(prefix)) prefix = prefix.slice(0, -1);
  const whole = names.every((name) => name === prefix || /^[._/-]/.test(name.slice(prefix.length)));
  if (whole) return prefix.replace(/[._/-]+$/, '');
  return prefix.replace(/[^._/-]*$/, '').replace(/[._/-]+$/, '');
}
