// Work splitting for threads: a kernel called with (part, parts) does the part-th of `parts`
// contiguous slices of its outer loop. Every output element is written by exactly one part with
// the same arithmetic, so results are bit-identical for any thread count.

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
