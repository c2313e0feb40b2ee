/**
 * The network as data. One graph shape serves three stages:
 *   FloatModel  — fp32 weights (BN already folded into conv weight + bias); the builder and the
 *                 converters produce it, the fp32 reference executes it, calibration measures it.
 *   QuantModel  — the same graph in int8/uint8 with every scale, zero point and multiplier fixed;
 *                 the file writer packs it, the integer reference executes it.
 * Tensors are numbered; tensor 0 is the network input, every layer writes exactly one tensor.
 * Layout is NHWC everywhere; weights are [cout][kh][kw][cin] (fc: [cout][cin]).
 */

export interface Shape {
  h: number;
  w: number;
  c: number;
}

/** uint8 activation q represents scale * (q - zeroPoint). */
export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

export type QuantTensor = Shape & QuantParams;

/**
 * How an RGB photo becomes the network input: resize the shorter side to `resize`, centre-crop
 * `crop` x `crop`, reorder channels, then per channel v = (pixel * pixelScale - mean[c]) / std[c]
 * (channel index after reordering).
 */
export interface Preprocessing {
  resize: number;
  crop: number;
  colorOrder: 'RGB' | 'BGR';
  pixelScale: number;
  mean: [number, number, number];
  std: [number, number, number];
}

export interface ConvGeometry {
  name: string;
  input: number;
  output: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
  cin: number;
  cout: number;
  relu: boolean;
}

export interface PoolGeometry {
  name: string;
  input: number;
  output: number;
  k: number;
  stride: number;
  pad: number;
}

/**
 * Average pool over the in-bounds taps of each window: padding is never counted, and with `ceil`
 * the output size rounds up (the last window may hang over the edge), as PyTorch's
 * AvgPool2d(ceil_mode=True, count_include_pad=False) does (ResNet-D's shortcut).
 */
export interface AvgPoolGeometry extends PoolGeometry {
  ceil: boolean;
}

/** Per-channel y = scale[c]·x + shift[c] (a BatchNorm that no conv precedes), then maybe ReLU. */
export interface AffineGeometry {
  name: string;
  input: number;
  output: number;
  channels: number;
  relu: boolean;
}

export interface AddGeometry {
  name: string;
  inputs: [number, number];
  output: number;
  relu: boolean;
}

export interface GapGeometry {
  name: string;
  input: number;
  output: number;
}

export interface FcGeometry {
  name: string;
  input: number;
  output: number;
  cin: number;
  cout: number;
}

export type FloatLayer =
  | (ConvGeometry & { kind: 'conv'; weight: Float32Array; bias: Float32Array })
  | (PoolGeometry & { kind: 'maxpool' })
  | (AvgPoolGeometry & { kind: 'avgpool' })
  | (AffineGeometry & { kind: 'affine'; scale: Float32Array; shift: Float32Array })
  | (AddGeometry & { kind: 'add' })
  | (GapGeometry & { kind: 'gap' })
  | (FcGeometry & { kind: 'fc'; weight: Float32Array; bias: Float32Array });

/**
 * Integer parameters. Every `multiplier` is an f32 value (stored in a Float32Array or already
 * passed through Math.fround); docs/ARCHITECTURE.md gives the exact arithmetic that uses them.
 *   conv/fc: bias[o] is int32 in units of (input scale * weight scale[o]), zero point NOT folded;
 *            conv multiplier[o] = sx * sw[o] / sy;  fc multiplier[o] = sx * sw[o] (f32 logits).
 *   add:     multiplierA = sa / sy, multiplierB = sb / sy.
 *   gap:     multiplier = sx / (sy * h * w).
 *   affine:  multiplier[c] = sx * scale[c] / sy, offset[c] = shift[c] / sy (both f32).
 */
export type QuantLayer =
  | (ConvGeometry & {
      kind: 'conv';
      weight: Int8Array;
      bias: Int32Array;
      multiplier: Float32Array;
    })
  | (PoolGeometry & { kind: 'maxpool' })
  | (AvgPoolGeometry & { kind: 'avgpool' })
  | (AffineGeometry & { kind: 'affine'; multiplier: Float32Array; offset: Float32Array })
  | (AddGeometry & { kind: 'add'; multiplierA: number; multiplierB: number })
  | (GapGeometry & { kind: 'gap'; multiplier: number })
  | (FcGeometry & {
      kind: 'fc';
      weight: Int8Array;
      bias: Int32Array;
      multiplier: Float32Array;
    });

export type LayerKind = FloatLayer['kind'];

export interface ModelInfo {
  /** e.g. "resnet18" */
  architecture: string;
  preprocessing: Preprocessing;
  labels: string[];
}

export interface FloatModel extends ModelInfo {
  tensors: Shape[];
  layers: FloatLayer[];
}

export interface QuantModel extends ModelInfo {
  tensors: QuantTensor[];
  layers: QuantLayer[];
}

/** The tensor the network's answer is read from: the output of the last layer. */
export function outputTensor(model: { layers: { output: number }[] }): number {
  return model.layers[model.layers.length - 1].output;
}

/** The tensors a layer reads. */
export function layerInputs(layer: FloatLayer | QuantLayer | LayerHeader): number[] {
  return layer.kind === 'add' ? [...layer.inputs] : [layer.input];
}

/** Output spatial size of a conv or pool along one axis. */
export function outSize(size: number, k: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - k) / stride) + 1;
}

/**
 * Output size of a pool in ceil mode, as PyTorch computes it: rounded up, but no window may start
 * past the input and its leading padding.
 */
export function ceilOutSize(size: number, k: number, stride: number, pad: number): number {
  const out = Math.ceil((size + 2 * pad - k) / stride) + 1;
  return (out - 1) * stride >= size + pad ? out - 1 : out;
}

/** Output size of a pool layer along one axis. */
export function poolOutSize(size: number, pool: { k: number; stride: number; pad: number; ceil?: boolean }): number {
  return (pool.ceil ? ceilOutSize : outSize)(size, pool.k, pool.stride, pool.pad);
}

/** Multiply-accumulates of one inference (conv + fc), the unit of our GMAC/s figures. */
export function macs(model: { tensors: Shape[]; layers: (FloatLayer | QuantLayer | LayerHeader)[] }): number {
  let total = 0;
  for (const layer of model.layers) {
    if (layer.kind === 'conv') {
      const out = model.tensors[layer.output];
      total += out.h * out.w * layer.cout * layer.kh * layer.kw * layer.cin;
    } else if (layer.kind === 'fc') {
      total += layer.cin * layer.cout;
    }
  }
  return total;
}

/**
 * A layer as the file's metadata describes it: geometry and scalar multipliers. The arrays of conv
 * and fc layers travel in the layer's record payload, already packed for the kernels.
 */
export type LayerHeader =
  | (ConvGeometry & { kind: 'conv' })
  | (PoolGeometry & { kind: 'maxpool' })
  | (AvgPoolGeometry & { kind: 'avgpool' })
  | (AffineGeometry & { kind: 'affine' })
  | (AddGeometry & { kind: 'add'; multiplierA: number; multiplierB: number })
  | (GapGeometry & { kind: 'gap'; multiplier: number })
  | (FcGeometry & { kind: 'fc' });

/** Everything about a network except its packed parameters. */
export interface NetworkHeader extends ModelInfo {
  tensors: QuantTensor[];
  layers: LayerHeader[];
  /** Present when the fc is a head taught on the device (src/teach/, docs/FORMAT.md). */
  head?: HeadInfo;
}

/** What the metadata says about a taught head. */
export interface HeadInfo {
  /** The base network the head was taught on: 8 hex digits of its feature layers' CRC-32 (src/teach/base-id.ts). */
  base: string;
  /** Below this top-1 probability the answer is `unknown` (taught with `unknown: true`). */
  unknown?: number;
}
