// The convention every sliced kernel follows (a kernel-table row with `sliced: true`,
// src/runtime/kernels.ts), so that work can be cut into any number of chunks and claimed by any
// thread (src/runtime/threads.ts):
//
//   export function k(...its arguments, part: i32, parts: i32, thread: i32): void
//
// - (part, parts) says WHICH WORK: the part-th of `parts` contiguous slices of the kernel's outer
//   loop, [sliceStart(n, part, parts), sliceEnd(n, part, parts)). `parts` is a number of chunks,
//   not of threads: any value from 1 up, larger or smaller than the loop (empty slices are fine),
//   and the slices of one call run in any order, on any threads, at the same time.
// - `thread` says WHOSE SCRATCH: 0 <= thread < the network's threads. Per-thread scratch is at
//   `scratch + thread * scratchStride`, never indexed by `part` (a thread runs many parts, one
//   after another, and two threads never share a `thread`).
// - Every output byte is written by exactly one slice, with arithmetic that does not depend on
//   (part, parts) nor on `thread`; a slice writes nothing outside its own outputs (partial.ts for
//   channel tails) and its scratch. So results are bit-identical for any chunking and thread count.

/** First index of slice `part` of [0, n). */
// @ts-ignore: decorator
@inline export function sliceStart(n: i32, part: i32, parts: i32): i32 {
  return <i32>(<i64>n * part / parts);
}

/** One past the last index of slice `part` of [0, n). */
// @ts-ignore: decorator
@inline export function sliceEnd(n: i32, part: i32, parts: i32): i32 {
  return sliceStart(n, part + 1, parts);
}
