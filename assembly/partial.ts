// Stores of fewer than 16 bytes. Kernels that split their work over threads by pixels must not
// write past a pixel's last channel: the next pixel may belong to another thread's slice.

/** Stores the first `n` (0..16) bytes of `v` at `ptr`. */
// @ts-ignore: decorator
@inline
export function storePartial(ptr: usize, v: v128, n: i32): void {
  if (n >= 16) {
    v128.store(ptr, v);
    return;
  }
  if (n & 8) {
    v128.store64_lane(ptr, v, 0);
    v = i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0, 0, 0, 0, 0);
    ptr += 8;
  }
  if (n & 4) {
    v128.store32_lane(ptr, v, 0);
    v = i8x16.shuffle(v, v, 4, 5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    ptr += 4;
  }
  if (n & 2) {
    v128.store16_lane(ptr, v, 0);
    v = i8x16.shuffle(v, v, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    ptr += 2;
  }
  if (n & 1) v128.store8_lane(ptr, v, 0);
}
