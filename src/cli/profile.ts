import type { LayerHeader } from '../model/types.ts';
import { macs } from '../model/types.ts';
import type { WinogradPlan } from '../runtime/conv-path.ts';
import type { Model } from '../runtime/model.ts';
import { median } from './statistics.ts';

/** `bench --profile`: each layer's median time over `runs` inferences, and its GMAC/s. */
export function profileLayers(model: Model, runs: number): string {
  const network = model.layers;
  const { layers, tensors } = network.header;
  const ms = layerTimes(model, runs);
  const paths = network.convPaths();
  const rows = layers.map((layer, i) => {
    const gmac = macs({ tensors, layers: [layer] }) / 1e6 / ms[i];
    return `| ${layer.name} | ${describe(layer, tensors[layer.output], paths[i], network.winogradPlan(i))} | ${ms[i].toFixed(3)} | ${gmac > 0 ? gmac.toFixed(1) : ''} |`;
  });
  const total = ms.reduce((sum, t) => sum + t, 0);
  return [
    `${network.header.architecture}, ${network.threads} thread(s), per-layer medians of ${runs} runs`,
    '',
    '| layer | op | ms | GMAC/s |',
    '|---|---|---|---|',
    ...rows,
    `| total | | ${total.toFixed(2)} | ${(model.macs / 1e6 / total).toFixed(1)} |`,
    '',
  ].join('\n');
}

/** Each layer's time in ms over `runs` inferences (after one warm-up) of a fixed input, layer by layer: the median, or `summary`. */
export function layerTimes(model: Model, runs: number, summary: (times: number[]) => number = median): number[] {
  const network = model.layers;
  const { layers, tensors } = network.header;
  const t0 = tensors[0];
  network.setInput(new Uint8Array(t0.h * t0.w * t0.c).map((_, i) => (i * 37) & 255));
  const times = layers.map(() => [] as number[]);
  for (let run = 0; run < runs + 1; run++) {
    layers.forEach((layer, i) => {
      const start = performance.now();
      network.runLayer(layer, i);
      if (run > 0) times[i].push(performance.now() - start);
    });
  }
  return times.map(summary);
}

function describe(
  layer: LayerHeader,
  out: { h: number; w: number; c: number },
  path: string | null,
  plan: WinogradPlan | undefined,
): string {
  const shape = `→ ${out.h}x${out.w}x${out.c}`;
  if (layer.kind !== 'conv') return `${layer.kind} ${shape}`;
  const how = plan ? describeWinograd(plan, layer.cin) : path;
  return `conv ${layer.kh}x${layer.kw}/${layer.stride} ${layer.cin}→${layer.cout} ${how} ${shape}`;
}

function describeWinograd({ tile, chunk }: WinogradPlan, channels: number): string {
  const chunks = Math.ceil(channels / chunk);
  return `winograd F(${tile}x${tile})${chunks > 1 ? ` in ${chunks} chunks` : ''}`;
}
