/**
 * A per-channel linear stand-in for an identity block, fitted on the full network: on photos, the
 * block's input x and output y at every pixel, and per channel the least-squares line
 * y ≈ a·x + b (a = cov(x, y) / var(x), b = mean(y) − a·mean(x)). Dropping a block makes its
 * output its input (a = 1, b = 0); the fitted line keeps what the block did on average to each
 * channel's level and spread, the drift that otherwise reaches every later layer, for one affine
 * pass over the tensor (without.ts, withFittedBlocks). Each block is fitted on the full network's
 * own activations, so the fits of several dropped blocks do not depend on each other.
 */

import { writeModel } from '../format/writer.ts';
import type { QuantModel } from '../model/types.ts';
import { loadModel } from '../runtime/model.ts';
import { residualBlocks } from './blocks.ts';
import type { StudyPhoto } from './photos.ts';
import type { BlockFit } from './without.ts';

/** The per-channel line from each named block's input to its output on `photos`, in real units. */
export async function fitBlocks(
  model: QuantModel,
  names: readonly string[],
  photos: StudyPhoto[],
): Promise<Map<string, BlockFit>> {
  const blocks = residualBlocks(model).filter((b) => names.includes(b.name));
  const sums = blocks.map((b) => channelSums(model.tensors[b.input].c));
  const runtime = await loadModel(writeModel(model), { threads: 1 });
  try {
    const network = runtime.layers;
    for (const photo of photos) {
      network.setInput(photo.input);
      network.header.layers.forEach((layer, i) => {
        network.runLayer(layer, i);
        blocks.forEach((block, k) => {
          if (block.output !== layer.output) return;
          const [x, y] = [block.input, block.output].map((t) => {
            const { scale, zeroPoint } = model.tensors[t];
            return Float64Array.from(network.readTensor(t), (q) => scale * (q - zeroPoint));
          });
          sums[k].add(x, y);
        });
      });
    }
  } finally {
    runtime.dispose();
  }
  return new Map(blocks.map((block, k) => [block.name, sums[k].line()]));
}

function channelSums(channels: number) {
  const [x, y, xx, xy] = [0, 1, 2, 3].map(() => new Float64Array(channels));
  let count = 0;
  return {
    add(xs: Float64Array, ys: Float64Array): void {
      xs.forEach((v, i) => {
        const c = i % channels;
        x[c] += v;
        y[c] += ys[i];
        xx[c] += v * v;
        xy[c] += v * ys[i];
      });
      count += xs.length / channels;
    },
    line(): BlockFit {
      const scale = new Float64Array(channels);
      const shift = new Float64Array(channels);
      for (let c = 0; c < channels; c++) {
        const [mx, my] = [x[c] / count, y[c] / count];
        const variance = xx[c] / count - mx * mx;
        scale[c] = variance > 1e-12 ? (xy[c] / count - mx * my) / variance : 0;
        shift[c] = my - scale[c] * mx;
      }
      return { scale, shift };
    },
  };
}
