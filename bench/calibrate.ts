// `npm run bench:calibrate [-- PHOTOS]`: how long `convert --calibrate` takes with PHOTOS photos
// (default 32: every 10th photo of the ImageNet sample, as scripts/calibrate-default-model.sh
// picks them) on the builder's ResNet-18 (as fp32 ONNX) and on the default model's source (the
// Keras ResNet-50), percentile method. Each row times the whole conversion (import, calibration,
// quantization, writing) in this process with 1 photo and with PHOTOS, and each photo after the
// first (their difference over PHOTOS − 1). CPU time beside wall time: on a shared host, wall time
// also counts the waiting.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { resnetFloat } from '../src/builder/resnet.ts';
import { positiveInteger } from '../src/cli/command.ts';
import { convertModel } from '../src/convert/convert.ts';
import { encodeOnnxModel } from '../src/convert/onnx-proto.ts';
import { exportFolded } from '../test/helpers/onnx-export.ts';
import { imagenetFiles } from '../test/helpers/photos.ts';
import { SOURCE } from './teach/embeddings.ts';

const count = positiveInteger(process.argv[2] ?? '32', 'the photo count');
const files = imagenetFiles().filter((_, i) => i % 10 === 5);
if (files.length < count) {
  console.log(`bench:calibrate: skipped, needs ${count} photos of the ImageNet sample, found ${files.length}`);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'bench-calibrate-'));
try {
  const resnet18 = join(dir, 'resnet18-fp32.onnx');
  writeFileSync(resnet18, encodeOnnxModel(exportFolded(resnetFloat({ depth: 18, seed: 1 }), { batch: 1 })));
  console.log(`convert --calibrate (percentile), ${count} photos; wall / CPU seconds\n`);
  console.log(`| model | 1 photo | ${count} photos | each photo after the first |`);
  console.log('|---|---|---|---|');
  for (const [name, model] of [
    ['ResNet-18 (builder, fp32 ONNX)', resnet18],
    ['ResNet-50 (Keras, the default model)', SOURCE],
  ]) {
    const one = await timeConvert(model, photoFolder(1));
    const all = await timeConvert(model, photoFolder(count));
    const perPhoto = (k: 'wall' | 'cpu') => (all[k] - one[k]) / (count - 1);
    const each = `${perPhoto('wall').toFixed(2)} / ${perPhoto('cpu').toFixed(2)}`;
    console.log(`| ${name} | ${seconds(one)} | ${seconds(all)} | ${each} |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function photoFolder(n: number): string {
  const folder = mkdtempSync(join(dir, `photos-${n}-`));
  for (const { file } of files.slice(0, n)) symlinkSync(file, join(folder, basename(file)));
  return folder;
}

async function timeConvert(input: string, photos: string): Promise<{ wall: number; cpu: number }> {
  const [started, cpu] = [performance.now(), process.cpuUsage()];
  await convertModel({ input, output: join(dir, 'out.rnw'), calibrate: photos, method: 'percentile' });
  const { user, system } = process.cpuUsage(cpu);
  return { wall: (performance.now() - started) / 1000, cpu: (user + system) / 1e6 };
}

function seconds({ wall, cpu }: { wall: number; cpu: number }): string {
  return `${wall.toFixed(1)} / ${cpu.toFixed(1)}`;
}
