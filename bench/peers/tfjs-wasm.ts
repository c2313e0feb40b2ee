// TF.js with its wasm backend (XNNPACK, SIMD; one thread: its threaded build does not run in Node).
// TF.js reads no ONNX, so our converter turns the fp32 file into a FloatModel (NHWC, BN folded)
// and each layer becomes the tf op a converted TF.js graph model would run (fused conv + bias + ReLU).
import { readFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { lowerGraph } from '../../src/convert/lower.ts';
import { importOnnx } from '../../src/convert/onnx.ts';
import { type FloatLayer, outputTensor } from '../../src/model/types.ts';
import type { PeerOptions, Session } from './measure.ts';

export async function load({ model, threads, input }: PeerOptions): Promise<Session> {
  if (threads !== 1) throw new Error('tfjs-backend-wasm runs one thread in Node');
  tf.env().set('PROD', true);
  await tf.setBackend('wasm');
  const imported = importOnnx(await readFile(model), model);
  if (imported.kind !== 'float') throw new Error(`${model} is not an fp32 model`);
  const float = lowerGraph(imported.graph, model);
  const params = float.layers.map((l) => {
    if (l.kind !== 'conv' && l.kind !== 'fc') return null;
    // Ours are [cout][kh][kw][cin] and [cout][cin]; tf's conv filters are [kh][kw][cin][cout], a
    // Dense kernel [cin][cout] (and tfjs-backend-wasm 4.22's fused matMul misplaces the bias with
    // transposeB).
    const ours =
      l.kind === 'conv' ? tf.tensor4d(l.weight, [l.cout, l.kh, l.kw, l.cin]) : tf.tensor2d(l.weight, [l.cout, l.cin]);
    const filter = tf.transpose(ours, l.kind === 'conv' ? [1, 2, 3, 0] : [1, 0]);
    ours.dispose();
    return { filter, bias: tf.tensor1d(l.bias) };
  });
  const { h, w, c } = input.shape;
  const x = tf.tensor4d(input.nhwc, [1, h, w, c]);

  const layer = (l: FloatLayer, i: number, values: tf.Tensor[]): tf.Tensor => {
    const p = params[i]!;
    switch (l.kind) {
      case 'conv':
        return tf.fused.conv2d({
          x: values[l.input] as tf.Tensor4D,
          filter: p.filter as tf.Tensor4D,
          bias: p.bias,
          strides: l.stride,
          pad: l.pad,
          activation: l.relu ? 'relu' : 'linear',
        });
      case 'maxpool':
        return tf.maxPool(values[l.input] as tf.Tensor4D, l.k, l.stride, l.pad);
      case 'add': {
        const sum = tf.add(values[l.inputs[0]], values[l.inputs[1]]);
        return l.relu ? tf.relu(sum) : sum;
      }
      case 'gap':
        return tf.mean(values[l.input], [1, 2]);
      case 'fc':
        return tf.fused.matMul({ a: values[l.input] as tf.Tensor2D, b: p.filter as tf.Tensor2D, bias: p.bias });
      default:
        throw new Error(`the TF.js peer runs the plain ResNets only, not a ${l.kind} layer`);
    }
  };
  return {
    run() {
      const y = tf.tidy(() => {
        const values: tf.Tensor[] = [x];
        float.layers.forEach((l, i) => (values[l.output] = layer(l, i, values)));
        return values[outputTensor(float)];
      });
      const logits = y.dataSync() as Float32Array;
      y.dispose();
      return logits;
    },
  };
}
