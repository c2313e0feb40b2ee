// A plan's values are f64 (src/cli/wasi-plan.ts); these read value `i` of an operation at `at` as
// what it is: a pointer moved by `shift` (wasi/main.ts), an integer, or an f32.

@inline export function ptr(at: usize, i: i32, shift: isize): usize {
  return <usize>(<isize>load<f64>(at + (<usize>i << 3)) + shift);
}

@inline export function int(at: usize, i: i32): i32 {
  return <i32>load<f64>(at + (<usize>i << 3));
}

@inline export function real(at: usize, i: i32): f32 {
  return <f32>load<f64>(at + (<usize>i << 3));
}
