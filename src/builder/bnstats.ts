/**
 * BatchNorm running statistics from data, as a train-mode forward pass computes them. A random
 * network with default statistics (mean 0, variance 1) saturates or collapses after a few blocks
 * and answers every input with the same class; normalising each conv's output over real
 * activations keeps every layer in range, so the output depends on the input as a trained
 * network's does.
 */

import type { FloatLayer, FloatModel, Shape } from '../model/types.ts';
import { layerInputs } from '../model/types.ts';
import { type Convolve, checkInput, runLayer } from '../reference/fp32.ts';
import { simdConvolve } from '../reference/fp32-simd.ts';
import type { BatchNorm, UnfoldedNet } from './batchnorm.ts';
import { bnAffine, foldLayer } from './batchnorm.ts';
import { type FocusOptions, focusClassifier } from './classifier.ts';

/** Receives every tensor of every input once, as soon as it is final (BN folded). */
export type BatchObserver = (tensor: number, batch: Float32Array[]) => void;

/**
 * One pass over the batch, layer by layer: each conv's (or affine's) raw output gives its BN's mean and
 * (biased) variance over batch x h x w; those are written into `net.batchNorms`, and the
 * normalised activations feed the next layers; the classifier is focused on the photos'
 * features (classifier.ts). Returns the network with BN folded.
 * Only tensors that a later layer still reads are kept. The convs run in wasm (fp32-simd.ts), which
 * gives the reference's floats bit for bit, 5-6 times sooner: building a test network is most of
 * what several test files spend.
 */
export function setBatchNormStats(
  net: UnfoldedNet,
  inputs: Float32Array[],
  observe?: BatchObserver,
  focus?: FocusOptions,
): FloatModel {
  const { tensors } = net.model;
  if (inputs.length === 0) throw new Error('BatchNorm statistics need at least one calibration input');
  for (const input of inputs) checkInput(net.model, input);
  const lastReader = lastReaders(net.model);
  const convolve = simdConvolve();
  const values = new Map<number, Float32Array[]>([[0, inputs]]);
  observe?.(0, inputs);
  const layers = net.model.layers.map((layer, index) => {
    const bn = net.batchNorms.get(index);
    const inputBatches = layerInputs(layer).map((t) => values.get(t)!);
    let folded: FloatLayer = layer;
    let outputs: Float32Array[];
    if (bn && (layer.kind === 'conv' || layer.kind === 'affine')) {
      outputs = runBatch(tensors, { ...layer, relu: false }, inputBatches, convolve);
      measureBatchNorm(bn, outputs);
      normalize(outputs, bn, layer.relu);
      folded = foldLayer(layer, bn);
    } else if (layer.kind === 'fc') {
      folded = focusClassifier(layer, inputBatches[0], focus);
      outputs = runBatch(tensors, folded, inputBatches, convolve);
    } else {
      outputs = runBatch(tensors, layer, inputBatches, convolve);
    }
    values.set(layer.output, outputs);
    observe?.(layer.output, outputs);
    for (const t of layerInputs(layer)) if (lastReader.get(t) === index) values.delete(t);
    return folded;
  });
  return { ...net.model, layers };
}

/** `inputBatches[k][item]` is the layer's k-th input for one batch item. */
function runBatch(
  tensors: Shape[],
  layer: FloatLayer,
  inputBatches: Float32Array[][],
  convolve: Convolve,
): Float32Array[] {
  return inputBatches[0].map((_, item) =>
    runLayer(
      tensors,
      layer,
      inputBatches.map((batch) => batch[item]),
      convolve,
    ),
  );
}

/** Per channel mean and biased variance of NHWC data over every item and pixel. */
function measureBatchNorm(bn: BatchNorm, batch: Float32Array[]): void {
  const channels = bn.mean.length;
  const count = (batch.length * batch[0].length) / channels;
  const mean = channelSums(batch, channels, (v) => v).map((sum) => sum / count);
  // Summing squared deviations from the mean avoids the cancellation of E[x²] − E[x]².
  const variance = channelSums(batch, channels, (v, c) => (v - mean[c]) ** 2).map((sum) => sum / count);
  bn.mean.set(mean);
  bn.variance.set(variance);
}

function channelSums(
  batch: Float32Array[],
  channels: number,
  term: (value: number, channel: number) => number,
): Float64Array {
  const sums = new Float64Array(channels);
  for (const data of batch) {
    for (let i = 0; i < data.length; i++) sums[i % channels] += term(data[i], i % channels);
  }
  return sums;
}

/** Applies BN (and ReLU) in place to raw conv outputs. */
function normalize(batch: Float32Array[], bn: BatchNorm, relu: boolean): void {
  const channels = bn.mean.length;
  const affine = Array.from({ length: channels }, (_, c) => bnAffine(bn, c));
  for (const data of batch) {
    for (let i = 0; i < data.length; i++) {
      const { factor, shift } = affine[i % channels];
      const y = data[i] * factor + shift;
      data[i] = relu && y < 0 ? 0 : y;
    }
  }
}

/** For each tensor, the index of the last layer that reads it. */
function lastReaders(model: FloatModel): Map<number, number> {
  const last = new Map<number, number>();
  model.layers.forEach((layer, index) => {
    for (const t of layerInputs(layer)) last.set(t, index);
  });
  return last;
}
