/**
 * A network without some of its residual blocks. Dropping a block with an identity shortcut makes
 * its output its input: the layer that wrote the input now requantizes straight to the scale and
 * zero point the block's output had, so the layers after the block read it unchanged
 * (requantize.ts; docs/ARCHITECTURE.md, "Lesions", says why this rather than rescaling the readers
 * or inserting a requantizing layer). A downsampling block (projection shortcut) is refused, or with
 * `downsampling: 'shortcut'` replaced by its shortcut alone, which then applies the add's ReLU.
 */
import { BlockLesionError } from '../errors.ts';
import type { QuantLayer, QuantModel } from '../model/types.ts';
import { layerInputs } from '../model/types.ts';
import { type ResidualBlock, residualBlocks } from './blocks.ts';
import { requantizeTensor } from './requantize.ts';

export interface LesionOptions {
  /** What to do with a block whose shortcut is a projection: `refuse` (default) or keep only the `shortcut`. */
  downsampling?: 'refuse' | 'shortcut';
}

/** `model` itself when `names` is empty (so it writes the same bytes); else a new, smaller model. */
export function withoutBlocks(model: QuantModel, names: readonly string[], options: LesionOptions = {}): QuantModel {
  if (names.length === 0) return model;
  const blocks = residualBlocks(model);
  checkNames(blocks, names);
  let shortened = model;
  for (const block of blocks.filter((b) => names.includes(b.name))) {
    // Earlier drops renumber nothing but may change the tensor a later block reads: find it again.
    const current = residualBlocks(shortened).find((b) => b.name === block.name)!;
    shortened = dropBlock(shortened, current, options.downsampling ?? 'refuse');
  }
  return withoutUnusedTensors(shortened);
}

/** A block's per-channel line in real units, output ≈ scale·input + shift (fitted by fit.ts). */
export interface BlockFit {
  scale: Float64Array;
  shift: Float64Array;
}

/**
 * `model` with each named identity block replaced by one affine layer, relu(a·x + b) per channel
 * (fit.ts fits a and b), reading the block's input and writing its output as the block did.
 */
export function withFittedBlocks(model: QuantModel, fits: ReadonlyMap<string, BlockFit>): QuantModel {
  if (fits.size === 0) return model;
  let fitted = model;
  for (const name of checkedNames(model, fits)) {
    const block = identityBlock(fitted, name, 'line');
    const [x, y] = [fitted.tensors[block.input], fitted.tensors[block.output]];
    const { scale, shift } = fits.get(name)!;
    const affine: QuantLayer = {
      kind: 'affine',
      name: `${name}_fit`,
      input: block.input,
      output: block.output,
      channels: x.c,
      relu: true,
      multiplier: Float32Array.from(scale, (a) => (x.scale * a) / y.scale),
      offset: Float32Array.from(shift, (b) => b / y.scale),
    };
    const add = block.layers[block.layers.length - 1];
    const layers = fitted.layers.flatMap((layer, i) =>
      i === add ? [affine] : block.layers.includes(i) ? [] : [layer],
    );
    fitted = { ...fitted, layers };
  }
  return withoutUnusedTensors(fitted);
}

/** The names a stand-in is given for, checked against `model`'s blocks. */
function checkedNames(model: QuantModel, standIns: ReadonlyMap<string, unknown>): string[] {
  const names = [...standIns.keys()];
  checkNames(residualBlocks(model), names);
  return names;
}

/** The named block, which must have an identity shortcut for a `standIn` to replace it. */
function identityBlock(model: QuantModel, name: string, standIn: string): ResidualBlock {
  const block = residualBlocks(model).find((b) => b.name === name)!;
  if (block.shortcut.length > 0)
    throw new BlockLesionError(`it downsamples through a projection shortcut: no ${standIn} stands in for it`, name);
  return block;
}

function checkNames(blocks: ResidualBlock[], names: readonly string[]): void {
  const known = blocks.map((b) => b.name);
  for (const name of names) {
    if (!known.includes(name))
      throw new BlockLesionError(`no residual block has this name; the blocks are ${known.join(', ')}`, name);
    if (names.indexOf(name) !== names.lastIndexOf(name)) throw new BlockLesionError('named twice', name);
  }
  if (known.every((name) => names.includes(name))) {
    throw new BlockLesionError(
      `dropping all ${known.length} residual blocks leaves no residual network; keep at least one`,
    );
  }
}

function dropBlock(model: QuantModel, block: ResidualBlock, downsampling: 'refuse' | 'shortcut'): QuantModel {
  const out = model.tensors[block.output];
  const params = { scale: out.scale, zeroPoint: out.zeroPoint };
  if (block.shortcut.length === 0) {
    return rewire(requantizeTensor(model, block.input, params), block, block.layers, block.input);
  }
  const last = block.shortcut[block.shortcut.length - 1];
  const projection = model.layers[last];
  const shortcutNames = block.shortcut.map((i) => model.layers[i].name).join(', ');
  if (downsampling === 'refuse' || projection.kind !== 'conv') {
    throw new BlockLesionError(
      `it downsamples through a projection shortcut (${shortcutNames}), so it cannot be dropped; it can be replaced by its shortcut alone`,
      block.name,
    );
  }
  const add = model.layers[block.layers[block.layers.length - 1]];
  const layers = model.layers.map((layer, i) =>
    i === last ? { ...projection, relu: add.kind === 'add' && add.relu } : layer,
  );
  const branch = block.layers.filter((i) => !block.shortcut.includes(i));
  return rewire(requantizeTensor({ ...model, layers }, projection.output, params), block, branch, projection.output);
}

/** Removes `removed` layers; whatever read the block's output reads `replacement`. */
function rewire(model: QuantModel, block: ResidualBlock, removed: number[], replacement: number): QuantModel {
  const swap = (t: number) => (t === block.output ? replacement : t);
  const layers = model.layers
    .filter((_, i) => !removed.includes(i))
    .map(
      (layer): QuantLayer =>
        layer.kind === 'add'
          ? { ...layer, inputs: [swap(layer.inputs[0]), swap(layer.inputs[1])] }
          : { ...layer, input: swap(layer.input) },
    );
  return { ...model, layers };
}

/** Tensors renumbered in order, without the ones no layer writes any more. */
function withoutUnusedTensors(model: QuantModel): QuantModel {
  const used = new Set([0, ...model.layers.map((l) => l.output)]);
  const renumber = new Map([...used].sort((a, b) => a - b).map((t, i) => [t, i]));
  const id = (t: number) => renumber.get(t)!;
  const layers = model.layers.map((layer): QuantLayer => {
    const output = id(layer.output);
    return layer.kind === 'add'
      ? { ...layer, output, inputs: [id(layer.inputs[0]), id(layer.inputs[1])] }
      : { ...layer, output, input: id(layerInputs(layer)[0]) };
  });
  return { ...model, tensors: model.tensors.filter((_, t) => used.has(t)), layers };
}
