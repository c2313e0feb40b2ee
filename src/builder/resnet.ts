/**
 * The ResNet family as graphs with seeded random weights, initialised as torchvision does:
 *   v1  torchvision's ResNet (v1.5, "ResNet-B": a Bottleneck's stride sits on its 3x3 conv);
 *   c   the deep stem of "Bag of Tricks" (three 3x3 convs, 3→32 stride 2, 32→32, 32→64, each with
 *       BN + ReLU, before the max pool), as timm's `stem_type='deep'` writes it;
 *   d   the deep stem and the avg_down shortcut: AvgPool2d(2, 2, ceil_mode=True,
 *       count_include_pad=False) then a 1x1 stride-1 conv + BN (timm's resnet18d, resnet50d);
 *   v2  the pre-activation ResNet of "Identity Mappings in Deep Residual Networks" as timm's
 *       resnetv2_50 has it: a plain 7x7 stem conv (no norm) + max pool, blocks that start with
 *       BN + ReLU on their input and end with a bare add, a final BN + ReLU before pooling.
 */

import type { FloatLayer, FloatModel, Preprocessing, Shape } from '../model/types.ts';
import { outSize, poolOutSize } from '../model/types.ts';
import type { BatchNorm, UnfoldedNet } from './batchnorm.ts';
import { foldBatchNorms } from './batchnorm.ts';
import type { Random } from './random.ts';
import { randomArray, seededRandom } from './random.ts';

export type ResnetDepth = 18 | 34 | 50 | 101 | 152;

export type ResnetVariant = 'v1' | 'c' | 'd' | 'v2';

export interface ResnetOptions {
  depth: ResnetDepth;
  seed: number;
  /** Default v1. */
  variant?: ResnetVariant;
  numClasses?: number;
  inputSize?: number;
  /** The stem's channels, 64 in torchvision; each stage doubles them. Narrow networks make small test files. */
  width?: number;
  /** Blocks left out (`layer2.1`, `stages.1.blocks.1`), as a network made without them: lesion tests. */
  omitBlocks?: string[];
}

interface Architecture {
  block: 'basic' | 'bottleneck';
  stageBlocks: [number, number, number, number];
}

const ARCHITECTURES: Record<ResnetDepth, Architecture> = {
  18: { block: 'basic', stageBlocks: [2, 2, 2, 2] },
  34: { block: 'basic', stageBlocks: [3, 4, 6, 3] },
  50: { block: 'bottleneck', stageBlocks: [3, 4, 6, 3] },
  101: { block: 'bottleneck', stageBlocks: [3, 4, 23, 3] },
  152: { block: 'bottleneck', stageBlocks: [3, 8, 36, 3] },
};

const BOTTLENECK_EXPANSION = 4;

/** torchvision's ImageNet preprocessing, scaled when the network is built for a smaller input. */
export function imagenetPreprocessing(inputSize: number): Preprocessing {
  return {
    resize: Math.round((inputSize * 256) / 224),
    crop: inputSize,
    colorOrder: 'RGB',
    pixelScale: 1 / 255,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
  };
}

/** A random ResNet with torchvision's default BN running stats (mean 0, variance 1) folded in. */
export function resnetFloat(options: ResnetOptions): FloatModel {
  return foldBatchNorms(resnetUnfolded(options));
}

/** The architecture name of a variant, as timm names its models. */
export function resnetName(depth: ResnetDepth, variant: ResnetVariant = 'v1'): string {
  return variant === 'v1' ? `resnet${depth}` : variant === 'v2' ? `resnetv2_${depth}` : `resnet${depth}${variant}`;
}

/** A random ResNet with its BatchNorms kept separate, ready for bnstats to measure them. */
export function resnetUnfolded({
  depth,
  seed,
  variant = 'v1',
  numClasses = 1000,
  inputSize = 224,
  width = 64,
  omitBlocks = [],
}: ResnetOptions): UnfoldedNet {
  const { block, stageBlocks } = ARCHITECTURES[depth];
  const g = new GraphBuilder(seededRandom(seed), { h: inputSize, w: inputSize, c: 3 });
  const preact = variant === 'v2';
  let x =
    variant === 'c' || variant === 'd'
      ? deepStem(g, width)
      : preact
        ? g.conv('stem.conv', 0, width, 7, 2)
        : g.convBn('conv1', 0, width, 7, 2, true);
  x = g.maxpool(preact ? 'stem.pool' : 'maxpool', x, 3, 2, 1);
  stageBlocks.forEach((blocks, stage) => {
    for (let b = 0; b < blocks; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const planes = width << stage;
      if (omitBlocks.includes(preact ? `stages.${stage}.blocks.${b}` : `layer${stage + 1}.${b}`)) continue;
      if (preact) {
        x = preactBlock(g, `stages.${stage}.blocks.${b}`, x, block, planes, stride);
      } else {
        const y = (block === 'basic' ? basicBlock : bottleneck)(g, `layer${stage + 1}.${b}`, x, planes, stride);
        x = g.residual(`layer${stage + 1}.${b}`, x, y, stride, variant === 'd' ? 'avgpool' : 'conv');
      }
    }
  });
  if (preact) x = g.affine('norm', x, true);
  x = g.gap(preact ? 'head.global_pool' : 'avgpool', x);
  g.fc(preact ? 'head.fc' : 'fc', x, numClasses);
  const model: FloatModel = {
    architecture: resnetName(depth, variant),
    preprocessing: imagenetPreprocessing(inputSize),
    labels: Array.from({ length: numClasses }, (_, i) => `class ${i}`),
    tensors: g.tensors,
    layers: g.layers,
  };
  return { model, batchNorms: g.batchNorms };
}

/** ResNet-C/D: conv1.0 3→32 s2, conv1.3 32→32, conv1.6 32→64 (timm's Sequential indices, width 64), each + BN + ReLU. */
function deepStem(g: GraphBuilder, width: number): number {
  const x = g.convBn('conv1.0', 0, width / 2, 3, 2, true);
  return g.convBn('conv1.6', g.convBn('conv1.3', x, width / 2, 3, 1, true), width, 3, 1, true);
}

/** A block's residual branch under `prefix`; its last conv has a BN (`lastNorm`, v1) or not (v2). */
type ResidualBranch = (
  g: GraphBuilder,
  prefix: string,
  x: number,
  planes: number,
  stride: number,
  lastNorm?: boolean,
) => number;

/** The branch's last conv: stride 1, no ReLU (the add comes first), with its BN or bare. */
function lastConv(g: GraphBuilder, name: string, x: number, cout: number, k: number, lastNorm: boolean): number {
  return lastNorm ? g.convBn(name, x, cout, k, 1, false) : g.conv(name, x, cout, k, 1);
}

const basicBlock: ResidualBranch = (g, prefix, x, planes, stride, lastNorm = true) => {
  const y = g.convBn(`${prefix}.conv1`, x, planes, 3, stride, true);
  return lastConv(g, `${prefix}.conv2`, y, planes, 3, lastNorm);
};

/** A bottleneck's branch, stride on the 3x3 (ResNet-B). */
const bottleneck: ResidualBranch = (g, prefix, x, planes, stride, lastNorm = true) => {
  let y = g.convBn(`${prefix}.conv1`, x, planes, 1, 1, true);
  y = g.convBn(`${prefix}.conv2`, y, planes, 3, stride, true);
  return lastConv(g, `${prefix}.conv3`, y, planes * BOTTLENECK_EXPANSION, 1, lastNorm);
};

/**
 * A pre-activation block: x_preact = ReLU(BN(x)) feeds the branch and, when the shape changes, the
 * shortcut's 1x1 conv (no BN); otherwise the shortcut is x itself. The sum gets no ReLU.
 */
function preactBlock(
  g: GraphBuilder,
  prefix: string,
  x: number,
  block: Architecture['block'],
  planes: number,
  stride: number,
): number {
  const preact = g.affine(`${prefix}.norm1`, x, true);
  const y = (block === 'basic' ? basicBlock : bottleneck)(g, prefix, preact, planes, stride, false);
  const shortcut = needsDownsample(g.tensors[x], g.tensors[y], stride)
    ? g.conv(`${prefix}.downsample.conv`, preact, g.tensors[y].c, 1, stride)
    : x;
  return g.add(`${prefix}.add`, shortcut, y, false);
}

function needsDownsample(x: Shape, y: Shape, stride: number): boolean {
  return stride !== 1 || x.c !== y.c;
}

/** Appends layers in execution order; each method returns the tensor its layer writes. */
class GraphBuilder {
  readonly tensors: Shape[];
  readonly layers: FloatLayer[] = [];
  readonly batchNorms = new Map<number, BatchNorm>();

  constructor(
    private readonly random: Random,
    input: Shape,
  ) {
    this.tensors = [input];
  }

  /** A conv followed by a BN (measured later by bnstats), then maybe ReLU. */
  convBn(name: string, input: number, cout: number, k: number, stride: number, relu: boolean): number {
    // The weights are drawn before the BN's gamma and beta, so a seed makes the network it always made.
    const output = this.conv(name, input, cout, k, stride, relu);
    this.batchNorms.set(this.layers.length - 1, this.batchNorm(cout));
    return output;
  }

  /** Weights: kaiming normal, fan_out mode, ReLU gain, as torchvision initialises ResNet convs. */
  conv(name: string, input: number, cout: number, k: number, stride: number, relu = false): number {
    const { h, w, c: cin } = this.tensors[input];
    const pad = Math.floor(k / 2);
    const output = this.tensor({ h: outSize(h, k, stride, pad), w: outSize(w, k, stride, pad), c: cout });
    const std = Math.sqrt(2 / (cout * k * k));
    const weight = randomArray(cout * k * k * cin, () => this.random.normal(0, std));
    const bias = new Float32Array(cout);
    this.layers.push({ kind: 'conv', name, input, output, kh: k, kw: k, stride, pad, cin, cout, relu, weight, bias });
    return output;
  }

  /** A BN that follows no conv (identity until bnstats measures it), then maybe ReLU. */
  affine(name: string, input: number, relu: boolean): number {
    const channels = this.tensors[input].c;
    const output = this.tensor({ ...this.tensors[input] });
    this.batchNorms.set(this.layers.length, this.batchNorm(channels));
    const [scale, shift] = [new Float32Array(channels).fill(1), new Float32Array(channels)];
    this.layers.push({ kind: 'affine', name, input, output, channels, relu, scale, shift });
    return output;
  }

  /**
   * gamma and beta are random rather than torchvision's 1 and 0 so that, once the running stats
   * come from data, channels differ in scale and offset the way a trained network's do.
   */
  private batchNorm(channels: number): BatchNorm {
    return {
      gamma: randomArray(channels, () => this.random.uniform(0.5, 1.5)),
      beta: randomArray(channels, () => this.random.normal(0, 0.25)),
      mean: new Float32Array(channels),
      variance: new Float32Array(channels).fill(1),
    };
  }

  /**
   * The block's output: ReLU(shortcut + y), the shortcut downsampled when the shape changes: by a
   * strided 1x1 conv + BN, or (`avgpool`, ResNet-D) a 2x2 average pool when strided, then a
   * stride-1 1x1 conv + BN (timm's Sequential keeps index 0 for the pool, an Identity at stride 1).
   */
  residual(prefix: string, x: number, y: number, stride: number, downsample: 'conv' | 'avgpool' = 'conv'): number {
    const planes = this.tensors[y].c;
    let shortcut = x;
    if (needsDownsample(this.tensors[x], this.tensors[y], stride) && downsample === 'conv') {
      shortcut = this.convBn(`${prefix}.downsample.0`, x, planes, 1, stride, false);
    } else if (needsDownsample(this.tensors[x], this.tensors[y], stride)) {
      const pooled = stride === 1 ? x : this.avgpool(`${prefix}.downsample.0`, x, stride);
      shortcut = this.convBn(`${prefix}.downsample.1`, pooled, planes, 1, 1, false);
    }
    return this.add(`${prefix}.add`, shortcut, y, true);
  }

  add(name: string, a: number, b: number, relu: boolean): number {
    const output = this.tensor({ ...this.tensors[b] });
    this.layers.push({ kind: 'add', name, inputs: [a, b], output, relu });
    return output;
  }

  /** AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False). */
  avgpool(name: string, input: number, stride: number): number {
    const layer = { kind: 'avgpool', name, input, output: -1, k: stride, stride, pad: 0, ceil: true } as const;
    const { h, w, c } = this.tensors[input];
    const output = this.tensor({ h: poolOutSize(h, layer), w: poolOutSize(w, layer), c });
    this.layers.push({ ...layer, output });
    return output;
  }

  maxpool(name: string, input: number, k: number, stride: number, pad: number): number {
    const { h, w, c } = this.tensors[input];
    const output = this.tensor({ h: outSize(h, k, stride, pad), w: outSize(w, k, stride, pad), c });
    this.layers.push({ kind: 'maxpool', name, input, output, k, stride, pad });
    return output;
  }

  gap(name: string, input: number): number {
    const output = this.tensor({ h: 1, w: 1, c: this.tensors[input].c });
    this.layers.push({ kind: 'gap', name, input, output });
    return output;
  }

  /** torchvision's nn.Linear default: weight and bias uniform in ±1/sqrt(fan_in). */
  fc(name: string, input: number, cout: number): number {
    const { h, w, c } = this.tensors[input];
    const cin = h * w * c;
    const output = this.tensor({ h: 1, w: 1, c: cout });
    const bound = 1 / Math.sqrt(cin);
    const draw = () => this.random.uniform(-bound, bound);
    this.layers.push({
      kind: 'fc',
      name,
      input,
      output,
      cin,
      cout,
      weight: randomArray(cout * cin, draw),
      bias: randomArray(cout, draw),
    });
    return output;
  }

  private tensor(shape: Shape): number {
    this.tensors.push(shape);
    return this.tensors.length - 1;
  }
}
