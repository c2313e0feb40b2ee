// Prints, for each photo, one line: the file name, the top-1 class and the logits' bytes (base64 of
// the little-endian f32 array), so that two machines' outputs compare byte for byte with diff.
// Uses the built runtime (dist/index.js), the JavaScript decoder (sharp is not there under qemu, and
// JPEG decoders differ by a level), and the default model. scripts/arm64-check.sh runs it on
// x64 and under qemu-aarch64.
//   node scripts/print-logits.js photo.jpg ...
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { loadModel } from '../dist/index.js';

const model = await loadModel(new URL('../weights/default.rnw', import.meta.url));
for (const file of process.argv.slice(2)) {
  const { top, logits } = await model.classify(await readFile(file), { decoder: 'js' });
  console.log(`${basename(file)}\t${top[0].label}\t${Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength).toString('base64')}`);
}
model.dispose();
