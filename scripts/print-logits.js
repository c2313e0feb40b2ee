// Prints, for each photo, one line: the file name, the top-1 class and the logits' bytes (base64 of
// the little-endian f32 array), so that two machines' outputs compare byte for byte with diff.
// Uses the built runtime (dist/index.js), the JavaScript decoder (sharp is not there under qemu, and
// JPEG decoders differ by a level), and the default model or --model (a taught one). scripts/arm64-check.sh
// runs it on x64 and under qemu-aarch64. --kernels picks the kernel build (loadModel's `kernels`,
// default auto); the build that ran goes to stderr.
//   node scripts/print-logits.js [--kernels auto|baseline|relaxed] [--model mine.rnw] photo.jpg ...
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';

const { values, positionals } = parseArgs({
  options: { kernels: { type: 'string', default: 'auto' }, model: { type: 'string' } },
  allowPositionals: true,
});
const model = await loadModel(values.model ?? new URL('../weights/default.rnw', import.meta.url), {
  kernels: values.kernels,
});
console.error(`kernels: ${model.kernelBuild}`);
for (const file of positionals) {
  const { top, logits } = await model.classify(await readFile(file), { decoder: 'js' });
  console.log(
    `${basename(file)}\t${top[0].label}\t${Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength).toString('base64')}`,
  );
}
model.dispose();
