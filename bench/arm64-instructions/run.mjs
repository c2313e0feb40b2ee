// Runs ResNet-18 (the benchmark model file given) `runs` times on a constant input with the given
// kernel build and conv path; arm64-instructions.sh counts the instructions this takes under qemu.
//   node run.mjs MODEL.rnw baseline|relaxed RUNS winograd|taps (3x3 convs as a GEMM over their taps)
import { loadModel } from '../../dist/index.js';

const [file, kernels, runs, path] = process.argv.slice(2);
const model = await loadModel(file, { kernels, winograd: path === 'winograd', threads: 1 }); // no worker spinning in the count
const t0 = model.header.tensors[0];
const input = new Uint8Array(t0.h * t0.w * t0.c).map((_, i) => (i * 37) & 255);
for (let i = 0; i < Number(runs); i++) model.run(input);
model.dispose();
