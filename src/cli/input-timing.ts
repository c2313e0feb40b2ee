/**
 * The input path's cost, for `resnet-wasm bench` and `npm run bench`: a 1920x1080 JPEG (a real
 * photo, upscaled, quality 90) decoded, resized, centre-cropped and quantized, timed with each
 * decoder that loads here, against the network's own inference time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { decodeImage } from '../image/decode.ts';
import { activeDecoder, decodeBytes } from '../image/decoders.ts';
import { loadSharp } from '../image/native.ts';
import { preprocessQuantized } from '../image/preprocess.ts';
import { resize } from '../image/resize.ts';
import type { Preprocessing, QuantParams } from '../model/types.ts';
import { packageRoot } from './paths.ts';
import { median } from './statistics.ts';

export interface InputTiming {
  decoder: 'sharp' | 'js';
  /** Medians over the runs, in milliseconds. */
  decode_ms: number;
  preprocess_ms: number;
  total_ms: number;
}

const WIDTH = 1920;
const HEIGHT = 1080;
const QUALITY = 90;

/** The photo the 1080p JPEG is made from: in the repository, not in the npm package. */
export function defaultBenchPhoto(): string | null {
  const photo = join(packageRoot(), 'test', 'photos', 'rocket.jpg');
  return existsSync(photo) ? photo : null;
}

/** `photo` stretched to 1920x1080 and encoded at quality 90: by sharp where it loads, else by jpeg-js. */
export async function fullHdJpeg(photo: string): Promise<Uint8Array> {
  const bytes = readFileSync(photo);
  const sharp = await loadSharp();
  if (sharp)
    return new Uint8Array(
      await sharp(bytes, {}).resize(WIDTH, HEIGHT, { fit: 'fill' }).jpeg({ quality: QUALITY }).toBuffer(),
    );
  const stretched = resize(decodeImage(bytes), WIDTH, HEIGHT);
  const rgba = new Uint8Array(WIDTH * HEIGHT * 4).fill(255);
  for (let p = 0; p < WIDTH * HEIGHT; p++) rgba.set(stretched.data.subarray(3 * p, 3 * p + 3), 4 * p);
  return jpeg.encode({ width: WIDTH, height: HEIGHT, data: rgba }, QUALITY).data;
}

/** Median decode and preprocessing times of `jpegBytes` with each decoder that loads here. */
export async function timeInputPath(
  jpegBytes: Uint8Array,
  pre: Preprocessing,
  quant: QuantParams,
  runs: number,
): Promise<InputTiming[]> {
  const decoders: InputTiming['decoder'][] = (await activeDecoder()) === 'sharp' ? ['sharp', 'js'] : ['js'];
  const timings: InputTiming[] = [];
  for (const decoder of decoders) {
    const decode: number[] = [];
    const preprocess: number[] = [];
    // One untimed run warms up the decoder and the kernels.
    for (let i = 0; i <= runs; i++) {
      const start = performance.now();
      const image = await decodeBytes(jpegBytes, { decoder });
      const decoded = performance.now();
      preprocessQuantized(image, pre, quant);
      if (i === 0) continue;
      decode.push(decoded - start);
      preprocess.push(performance.now() - decoded);
    }
    const total = decode.map((d, i) => d + preprocess[i]);
    timings.push({ decoder, decode_ms: median(decode), preprocess_ms: median(preprocess), total_ms: median(total) });
  }
  return timings;
}

/** One line per decoder, against `inferenceMs` (1 thread). */
export function formatInputTimings(timings: InputTiming[], inferenceMs: number): string {
  return timings
    .map((t) => {
      const verdict = t.total_ms < inferenceMs ? 'below' : 'NOT below';
      return `  1920x1080 JPEG -> input, ${t.decoder === 'sharp' ? 'sharp' : 'jpeg-js'}: decode ${t.decode_ms.toFixed(1)} + preprocess ${t.preprocess_ms.toFixed(1)} = ${t.total_ms.toFixed(1)} ms, ${verdict} the ${inferenceMs.toFixed(1)} ms of 1-thread inference`;
    })
    .join('\n');
}
