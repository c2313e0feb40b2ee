/**
 * The torchvision ResNet architectures (v1.5: a Bottleneck's stride sits on its 3x3 conv) as
 * graphs with seeded random weights, initialised as torchvision does.
 */
import { outSize } from '../model/types.ts';
import type { FloatLayer, FloatModel, Preprocessing, Shape } from '../model/types.ts';
import { foldBatchNorms } from './batchnorm.ts';
import type { BatchNorm, UnfoldedNet } from './batchnorm.ts';
import { randomArray, seededRandom } from './random.ts';
import type { Random } from './random.ts';

export type ResnetDepth = 18 | 34 | 50;

export interface ResnetOptions {
  depth: ResnetDepth;
  seed: number;
  numClasses?: number;
  inputSize?: number;
}

interface Architecture {
  block: 'basic' | 'bottleneck';
  stageBlocks: [number, number, number, number];
}

const ARCHITECTURES: Record<ResnetDepth, Architecture> = {
  18: { block: 'basic', stageBlocks: [2, 2, 2, 2] },
  34: { block: 'basic', stageBlocks: [3, 4, 6, 3] },
  50: { block: 'bottleneck', stageBlocks: [3, 4, 6, 3] },
};

const STAGE_PLANES = [64, 128, 256, 512];
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

/** A random ResNet with its BatchNorms kept separate, ready for bnstats to measure them. */
export function resnetUnfolded({ depth, seed, numClasses = 1000, inputSize = 224 }: ResnetOptions): UnfoldedNet {
  const { block, stageBlocks } = ARCHITECTURES[depth];
  const g = new GraphBuilder(seededRandom(seed), { h: inputSize, w: inputSize, c: 3 });
  let x = g.convBn('conv1', 0, 64, 7, 2, true);
  x = g.maxpool('maxpool', x, 3, 2, 1);
  stageBlocks.forEach((blocks, stage) => {
    for (let b = 0; b < blocks; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const prefix = `layer${stage + 1}.${b}`;
      x = (block === 'basic' ? basicBlock : bottleneck)(g, prefix, x, STAGE_PLANES[stage], stride);
    }
  });
  x = g.gap('avgpool', x);
  g.fc('fc', x, numClasses);
  const model: FloatModel = {
    architecture: `resnet${depth}`,
    preprocessing: imagenetPreprocessing(inputSize),
    labels: Array.from({ length: numClasses }, (_, i) => `class ${i}`),
    tensors: g.tensors,
    layers: g.layers,
  };
  return { model, batchNorms: g.batchNorms };
}

function basicBlock(g: GraphBuilder, prefix: string, x: number, planes: number, stride: number): number {
  let y = g.convBn(`${prefix}.conv1`, x, planes, 3, stride, true);
  y = g.convBn(`${prefix}.conv2`, y, planes, 3, 1, false);
  return g.residual(prefix, x, y, stride);
}

function bottleneck(g: GraphBuilder, prefix: string, x: number, planes: number, stride: number): number {
  let y = g.convBn(`${prefix}.conv1`, x, planes, 1, 1, true);
  y = g.convBn(`${prefix}.conv2`, y, planes, 3, stride, true);
  y = g.convBn(`${prefix}.conv3`, y, planes * BOTTLENECK_EXPANSION, 1, 1, false);
  return g.residual(prefix, x, y, stride);
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

  /** Weights: kaiming normal, fan_out mode, ReLU gain, as torchvision initialises ResNet convs. */
  convBn(name: string, input: number, cout: number, k: number, stride: number, relu: boolean): number {
    const { h, w, c: cin } = this.tensors[input];
    const pad = Math.floor(k / 2);
    const output = this.tensor({ h: outSize(h, k, stride, pad), w: outSize(w, k, stride, pad), c: cout });
    const std = Math.sqrt(2 / (cout * k * k));
    const weight = randomArray(cout * k * k * cin, () => this.random.normal(0, std));
    const bias = new Float32Array(cout);
    this.batchNorms.set(this.layers.length, this.batchNorm(cout));
    this.layers.push({ kind: 'conv', name, input, output, kh: k, kw: k, stride, pad, cin, cout, relu, weight, bias });
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

  /** The block's output: ReLU(shortcut + y), the shortcut downsampled when the shape changes. */
  residual(prefix: string, x: number, y: number, stride: number): number {
    const planes = this.tensors[y].c;
    const shortcut =
      stride !== 1 || this.tensors[x].c !== planes
        ? this.convBn(`${prefix}.downsample.0`, x, planes, 1, stride, false)
        : x;
    const output = this.tensor({ ...this.tensors[y] });
    this.layers.push({ kind: 'add', name: `${prefix}.add`, inputs: [shortcut, y], output, relu: true });
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
      kind: 'fc', name, input, output, cin, cout,
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
