/**
 * The import graph: what every front end (ONNX, TF.js layers) reduces a model to before lowering.
 * It keeps the source's own operations one for one (BN separate from conv, ReLU separate, explicit
 * padding), named as in the source, so lowering (lower.ts) can fold and fuse them and name the
 * source node in every error. Tensors are named by strings; layout NHWC, weights
 * [cout][kh][kw][cin] (fc [cout][cin]): front ends transpose their layouts on the way in.
 */
import type { Preprocessing } from '../model/types.ts';

/** [top, left, bottom, right] */
export type Pads = [number, number, number, number];

interface OpBase {
  /** The source node's name, for errors. */
  name: string;
  /** The source's operator type (e.g. "Conv", "Conv2D"), for errors. */
  source: string;
  inputs: string[];
  output: string;
}

export type IrOp =
  | (OpBase & {
      op: 'conv';
      kh: number;
      kw: number;
      stride: number;
      pads: Pads;
      cin: number;
      cout: number;
      weight: Float32Array;
      bias: Float32Array | null;
    })
  | (OpBase & {
      op: 'batchnorm';
      gamma: Float32Array;
      beta: Float32Array;
      mean: Float32Array;
      variance: Float32Array;
      epsilon: number;
    })
  | (OpBase & { op: 'relu' })
  | (OpBase & { op: 'add' })
  | (OpBase & { op: 'pad'; pads: Pads })
  | (OpBase & { op: 'maxpool'; k: number; stride: number; pads: Pads })
  /** Padding and the ceil-mode overhang are never counted in the mean (count_include_pad = 0). */
  | (OpBase & { op: 'avgpool'; k: number; stride: number; pads: Pads; ceil: boolean })
  | (OpBase & { op: 'gap' })
  /** Flatten, Reshape to [1, C], Dropout, a final Softmax: nothing to compute. */
  | (OpBase & { op: 'identity' })
  | (OpBase & { op: 'fc'; cin: number; cout: number; weight: Float32Array; bias: Float32Array | null });

export interface IrGraph {
  architecture: string;
  input: { name: string; h: number; w: number; c: number };
  /** In an order where every op comes after the ops producing its inputs. */
  ops: IrOp[];
  output: string;
  preprocessing: Preprocessing;
  labels: string[];
}
