// The kernels, as the runtime sees them. All pointers are byte offsets into this module's memory,
// which the runtime lays out (src/runtime/memory-plan.ts) above heapBase(); their arguments are
// listed once, in the runtime's kernel table (src/runtime/kernels.ts).
export { conv } from './conv';
export { gemm, gemmTaps } from './gemm';
export { maxpool, avgpool, gap } from './pool';
export { add } from './add';
export { fc } from './fc';
export { patches } from './patches';
export { affine } from './affine';
export { resampleRow, blendRow } from './preprocess';
export { winogradInput, winogradConv } from './winograd';
export { winogradBias, largestFilterNorm } from './winograd-weights';

/** First byte the runtime may use: everything below belongs to the module's static data. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}
