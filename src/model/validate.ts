/**
 * Checks a model's graph against docs/FORMAT.md. The input may be anything (parsed JSON from an
 * untrusted file, or a QuantModel about to be written): every failure is a ModelFormatError that
 * names the layer, never a TypeError.
 */
import { ModelFormatError } from '../errors.ts';
import {
  type AffineQuantLayer,
  LIMITS,
  METADATA_OFFSET,
  type ParamQuantLayer,
  payloadBytes,
  payloadGeometry,
} from '../format/layout.ts';
import {
  type LayerHeader,
  layerInputs,
  type NetworkHeader,
  outSize,
  type Preprocessing,
  poolOutSize,
  type QuantTensor,
  type Shape,
} from './types.ts';

/**
 * Parses and checks a model graph; returns a clean copy holding only the known fields, with the
 * scalar multipliers rounded to f32.
 * `offset` is where the metadata lies in the file, reported by every error.
 */
export function validateGraph(model: unknown, offset = METADATA_OFFSET): NetworkHeader {
  const check = new Checker(offset);
  const graph = parseGraph(check, model);
  checkGraph(check, graph);
  return graph;
}

/**
 * Checks a conv or fc layer's parameter arrays: types, lengths, and the ranges that keep the
 * kernels' int32 arithmetic exact (docs/ARCHITECTURE.md). `offset` and `section` locate the layer's
 * record in the file.
 */
export function validateLayerParameters(layer: ParamQuantLayer, offset: number, section: string): void {
  const check = new Checker(offset, section).forLayer(layer.name);
  const { kh, kw, cin, cout } = payloadGeometry(layer);
  const weight = check.typedArray(layer.weight, 'weight', Int8Array, cout * kh * kw * cin);
  const bias = check.typedArray(layer.bias, 'bias', Int32Array, cout);
  const multiplier = check.typedArray(layer.multiplier, 'multiplier', Float32Array, cout);
  const badWeight = weight.indexOf(-LIMITS.maxAbsWeight - 1);
  if (badWeight >= 0) check.fail(`weight[${badWeight}] is -128, weights must lie in -127..127`);
  const badBias = bias.findIndex((b) => Math.abs(b) > LIMITS.maxAbsBias);
  if (badBias >= 0) check.fail(`bias[${badBias}] = ${bias[badBias]} exceeds ±2^30`);
  const badMultiplier = multiplier.findIndex((m) => !Number.isFinite(m));
  if (badMultiplier >= 0) check.fail(`multiplier[${badMultiplier}] is not finite`);
}

/** Checks an affine layer's arrays: f32, one per channel, finite (the kernel's clamp then bounds every result). */
export function validateAffineParameters(layer: AffineQuantLayer, offset: number, section: string): void {
  const check = new Checker(offset, section).forLayer(layer.name);
  for (const what of ['multiplier', 'offset'] as const) {
    const values = check.typedArray(layer[what], what, Float32Array, layer.channels);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) check.fail(`${what}[${bad}] is not finite`);
  }
}

type TypedArrayClass<T> = { new (length: number): T; readonly name: string };

class Checker {
  constructor(
    private readonly offset: number,
    private readonly section = 'metadata',
    private readonly layer?: string,
  ) {}

  forLayer(name: string): Checker {
    return new Checker(this.offset, this.section, name);
  }

  fail(problem: string): never {
    throw new ModelFormatError(problem, this.offset, { section: this.section, layer: this.layer });
  }

  object(value: unknown, what: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(`${what} must be an object, got ${show(value)}`);
    }
    return value as Record<string, unknown>;
  }

  /** The elements of an array, holes read as undefined. */
  array(value: unknown, what: string, minLength: number, maxLength: number): unknown[] {
    if (!Array.isArray(value)) this.fail(`${what} must be an array, got ${show(value)}`);
    if (value.length < minLength || value.length > maxLength) {
      const range = minLength === maxLength ? `${minLength}` : `${minLength}..${maxLength}`;
      this.fail(`${what} must have ${range} elements, got ${value.length}`);
    }
    return Array.from(value);
  }

  string(value: unknown, what: string): string {
    if (typeof value !== 'string') this.fail(`${what} must be a string, got ${show(value)}`);
    return value;
  }

  boolean(value: unknown, what: string): boolean {
    if (typeof value !== 'boolean') this.fail(`${what} must be true or false, got ${show(value)}`);
    return value;
  }

  integer(value: unknown, what: string, min: number, max: number): number {
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
      this.fail(`${what} must be an integer in ${min}..${max}, got ${show(value)}`);
    }
    return value as number;
  }

  finite(value: unknown, what: string): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.fail(`${what} must be a finite number, got ${show(value)}`);
    }
    return value;
  }

  /** A multiplier: a number that rounds to a finite f32, returned rounded. */
  f32(value: unknown, what: string): number {
    const rounded = Math.fround(this.finite(value, what));
    if (!Number.isFinite(rounded)) this.fail(`${what} = ${show(value)} overflows f32`);
    return rounded;
  }

  positive(value: unknown, what: string): number {
    if (this.finite(value, what) <= 0) this.fail(`${what} must be positive, got ${show(value)}`);
    return value as number;
  }

  oneOf<T extends string>(value: unknown, what: string, choices: readonly T[]): T {
    if (!choices.includes(value as T)) {
      this.fail(`${what} must be one of ${choices.join(', ')}, got ${show(value)}`);
    }
    return value as T;
  }

  typedArray<T extends ArrayLike<number>>(value: unknown, what: string, type: TypedArrayClass<T>, length: number): T {
    if (!(value instanceof type)) {
      const article = /^[AEIOU]/.test(type.name) ? 'an' : 'a';
      this.fail(`${what} must be ${article} ${type.name}, got ${show(value)}`);
    }
    if (value.length !== length) this.fail(`${what} must have ${length} elements, got ${value.length}`);
    return value;
  }
}

/** A short description of an unexpected value for an error message. */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value === 'object' ? (value.constructor?.name ?? 'an object') : typeof value;
}

function parseGraph(check: Checker, value: unknown): NetworkHeader {
  const root = check.object(value, 'the model');
  const architecture = check.string(root.architecture, 'architecture');
  const preprocessing = parsePreprocessing(check, root.preprocessing);
  const labels = check
    .array(root.labels, 'labels', 1, LIMITS.maxChannels)
    .map((label, i) => check.string(label, `labels[${i}]`));
  const tensors = check
    .array(root.tensors, 'tensors', 2, LIMITS.maxRecords + 1)
    .map((tensor, i) => parseTensor(check, tensor, `tensors[${i}]`));
  const layers = check
    .array(root.layers, 'layers', 1, LIMITS.maxRecords)
    .map((layer, i) => parseLayer(check, layer, i));
  return { architecture, preprocessing, labels, tensors, layers };
}

function parsePreprocessing(check: Checker, value: unknown): Preprocessing {
  const p = check.object(value, 'preprocessing');
  const resize = check.integer(p.resize, 'preprocessing.resize', 1, LIMITS.maxSpatial);
  const threeNumbers = (v: unknown, what: string, read: (x: unknown, what: string) => number) => {
    const [a, b, c] = check.array(v, what, 3, 3).map((x, i) => read(x, `${what}[${i}]`));
    return [a, b, c] as [number, number, number];
  };
  return {
    resize,
    crop: check.integer(p.crop, 'preprocessing.crop', 1, resize),
    colorOrder: check.oneOf(p.colorOrder, 'preprocessing.colorOrder', ['RGB', 'BGR'] as const),
    pixelScale: check.positive(p.pixelScale, 'preprocessing.pixelScale'),
    mean: threeNumbers(p.mean, 'preprocessing.mean', (x, what) => check.finite(x, what)),
    std: threeNumbers(p.std, 'preprocessing.std', (x, what) => check.positive(x, what)),
  };
}

function parseTensor(check: Checker, value: unknown, what: string): QuantTensor {
  const t = check.object(value, what);
  return {
    h: check.integer(t.h, `${what}.h`, 1, LIMITS.maxSpatial),
    w: check.integer(t.w, `${what}.w`, 1, LIMITS.maxSpatial),
    c: check.integer(t.c, `${what}.c`, 1, LIMITS.maxChannels),
    scale: check.positive(t.scale, `${what}.scale`),
    zeroPoint: check.integer(t.zeroPoint, `${what}.zeroPoint`, 0, 255),
  };
}

function parseLayer(metadataCheck: Checker, value: unknown, index: number): LayerHeader {
  const l = metadataCheck.object(value, `layers[${index}]`);
  const name = metadataCheck.string(l.name, `layers[${index}].name`);
  const check = metadataCheck.forLayer(name);
  const tensor = (v: unknown, what: string) => check.integer(v, what, 0, LIMITS.maxRecords);
  const input = () => tensor(l.input, 'input');
  const output = () => tensor(l.output, 'output');
  const window = (k: number) => ({
    stride: check.integer(l.stride, 'stride', 1, LIMITS.maxStride),
    pad: check.integer(l.pad, 'pad', 0, k - 1),
  });
  switch (l.kind) {
    case 'conv': {
      const kh = check.integer(l.kh, 'kh', 1, LIMITS.maxKernel);
      const kw = check.integer(l.kw, 'kw', 1, LIMITS.maxKernel);
      const { stride, pad } = window(Math.min(kh, kw));
      const cin = check.integer(l.cin, 'cin', 1, LIMITS.maxChannels);
      const cout = check.integer(l.cout, 'cout', 1, LIMITS.maxChannels);
      if (kh * kw * cin > LIMITS.maxReduction) {
        check.fail(`kh·kw·cin = ${kh * kw * cin} exceeds ${LIMITS.maxReduction}`);
      }
      const relu = check.boolean(l.relu, 'relu');
      return { kind: 'conv', name, input: input(), output: output(), kh, kw, stride, pad, cin, cout, relu };
    }
    case 'maxpool': {
      const k = check.integer(l.k, 'k', 1, LIMITS.maxKernel);
      return { kind: 'maxpool', name, input: input(), output: output(), k, ...window(k) };
    }
    case 'avgpool': {
      const k = check.integer(l.k, 'k', 1, LIMITS.maxKernel);
      return {
        kind: 'avgpool',
        name,
        input: input(),
        output: output(),
        k,
        ...window(k),
        ceil: check.boolean(l.ceil, 'ceil'),
      };
    }
    case 'affine':
      return {
        kind: 'affine',
        name,
        input: input(),
        output: output(),
        channels: check.integer(l.channels, 'channels', 1, LIMITS.maxChannels),
        relu: check.boolean(l.relu, 'relu'),
      };
    case 'add': {
      const [a, b] = check.array(l.inputs, 'inputs', 2, 2).map((t, i) => tensor(t, `inputs[${i}]`));
      return {
        kind: 'add',
        name,
        inputs: [a, b],
        output: output(),
        relu: check.boolean(l.relu, 'relu'),
        multiplierA: check.f32(l.multiplierA, 'multiplierA'),
        multiplierB: check.f32(l.multiplierB, 'multiplierB'),
      };
    }
    case 'gap':
      return { kind: 'gap', name, input: input(), output: output(), multiplier: check.f32(l.multiplier, 'multiplier') };
    case 'fc':
      return {
        kind: 'fc',
        name,
        input: input(),
        output: output(),
        cin: check.integer(l.cin, 'cin', 1, LIMITS.maxReduction),
        cout: check.integer(l.cout, 'cout', 1, LIMITS.maxChannels),
      };
    default:
      return check.fail(`unknown layer kind ${show(l.kind)}`);
  }
}

function checkGraph(check: Checker, graph: NetworkHeader): void {
  const { tensors, layers, preprocessing } = graph;
  if (tensors.length !== layers.length + 1) {
    check.fail(
      `${layers.length} layers need ${layers.length + 1} tensors (the input, then one per layer), got ${tensors.length}`,
    );
  }
  const input = tensors[0];
  if (input.h !== preprocessing.crop || input.w !== preprocessing.crop || input.c !== 3) {
    check.fail(
      `input tensor 0 is ${showShape(input)}, the preprocessing makes ${preprocessing.crop}×${preprocessing.crop}×3`,
    );
  }
  const written = tensors.map((_, t) => t === 0);
  for (const [index, layer] of layers.entries()) {
    const layerCheck = check.forLayer(layer.name);
    for (const t of layerInputs(layer)) {
      if (t >= tensors.length) layerCheck.fail(`reads tensor ${t}, out of range 0..${tensors.length - 1}`);
      if (!written[t]) layerCheck.fail(`reads tensor ${t} before any layer writes it`);
    }
    if (layer.output >= tensors.length) {
      layerCheck.fail(`writes tensor ${layer.output}, out of range 0..${tensors.length - 1}`);
    }
    if (written[layer.output]) {
      layerCheck.fail(
        `writes tensor ${layer.output}, which ${layer.output === 0 ? 'is the network input' : 'an earlier layer wrote'}`,
      );
    }
    written[layer.output] = true;
    checkShapes(layerCheck, layer, tensors);
    if (layer.kind === 'fc' && index !== layers.length - 1) {
      layerCheck.fail('an fc layer must be the last layer (its output is f32 logits, which no layer can read)');
    }
  }
  const classes = tensors[layers[layers.length - 1].output].c;
  if (graph.labels.length !== classes) {
    check.fail(`${graph.labels.length} labels for ${classes} output channels`);
  }
  const parameterBytes = layers.reduce((total, layer) => total + payloadBytes(layer), 0);
  if (parameterBytes > LIMITS.maxParameterBytes) {
    check.fail(`parameters take ${parameterBytes} bytes, more than the ${LIMITS.maxParameterBytes} allowed`);
  }
}

function checkShapes(check: Checker, layer: LayerHeader, tensors: QuantTensor[]): void {
  const out = tensors[layer.output];
  const expected = expectedOutputShape(check, layer, tensors);
  if (!sameShape(out, expected)) {
    check.fail(`output tensor ${layer.output} is ${showShape(out)}, the layer makes ${showShape(expected)}`);
  }
  if (layer.kind === 'maxpool' || layer.kind === 'avgpool') {
    const input = tensors[layer.input];
    if (out.scale !== input.scale || out.zeroPoint !== input.zeroPoint) {
      check.fail(`output tensor ${layer.output} must keep the input's scale and zero point`);
    }
  }
  if (layer.kind === 'fc' && (out.scale !== 1 || out.zeroPoint !== 0)) {
    check.fail(`output tensor ${layer.output} holds f32 logits and must have scale 1, zeroPoint 0`);
  }
}

/** The output shape a layer's geometry implies; fails if its inputs do not suit it. */
function expectedOutputShape(check: Checker, layer: LayerHeader, tensors: QuantTensor[]): Shape {
  switch (layer.kind) {
    case 'conv': {
      const x = tensors[layer.input];
      if (x.c !== layer.cin) check.fail(`input tensor ${layer.input} has ${x.c} channels, cin is ${layer.cin}`);
      return {
        h: outSize(x.h, layer.kh, layer.stride, layer.pad),
        w: outSize(x.w, layer.kw, layer.stride, layer.pad),
        c: layer.cout,
      };
    }
    case 'maxpool':
    case 'avgpool': {
      const x = tensors[layer.input];
      return { h: poolOutSize(x.h, layer), w: poolOutSize(x.w, layer), c: x.c };
    }
    case 'affine': {
      const x = tensors[layer.input];
      if (x.c !== layer.channels)
        check.fail(`input tensor ${layer.input} has ${x.c} channels, the layer has ${layer.channels}`);
      return x;
    }
    case 'add': {
      const [a, b] = layer.inputs.map((t) => tensors[t]);
      if (!sameShape(a, b)) check.fail(`adds tensors of different shapes, ${showShape(a)} and ${showShape(b)}`);
      return a;
    }
    case 'gap':
      return { h: 1, w: 1, c: tensors[layer.input].c };
    case 'fc': {
      const x = tensors[layer.input];
      if (x.h * x.w * x.c !== layer.cin) {
        check.fail(`input tensor ${layer.input} (${showShape(x)}) has ${x.h * x.w * x.c} values, cin is ${layer.cin}`);
      }
      return { h: 1, w: 1, c: layer.cout };
    }
  }
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.h === b.h && a.w === b.w && a.c === b.c;
}

function showShape(s: Shape): string {
  return `${s.h}×${s.w}×${s.c}`;
}
