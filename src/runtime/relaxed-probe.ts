/**
 * Whether this engine runs relaxed SIMD's int8 dot exactly as the relaxed kernel build uses it
 * (assembly/mac.ts: int8 weights times 0..127). The spec lets engines differ only outside that
 * range, yet Node 20 needs a flag to compile the opcode and its baseline compiler (Liftoff) gets the
 * dot wrong even inside it; a newer engine is trusted once the probe's dots come out exact.
 */

/**
 * (module (memory (export "m") 1)
 *   (func (export "dot") (param $at i32)
 *     (v128.store offset=48 (local.get $at)
 *       (i32x4.relaxed_dot_i8x16_i7x16_add_s
 *         (v128.load (local.get $at)) (v128.load offset=16 (local.get $at)) (v128.load offset=32 (local.get $at))))))
 */
const PROBE = Uint8Array.of(
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00,
  0x01,
  0x05,
  0x01,
  0x60,
  0x01,
  0x7f,
  0x00, // type: (i32) -> ()
  0x03,
  0x02,
  0x01,
  0x00, // one function of that type
  0x05,
  0x03,
  0x01,
  0x00,
  0x01, // one memory, one page
  0x07,
  0x0b,
  0x02,
  0x01,
  0x6d,
  0x02,
  0x00,
  0x03,
  0x64,
  0x6f,
  0x74,
  0x00,
  0x00, // exports "m", "dot"
  0x0a,
  0x1f,
  0x01,
  0x1d,
  0x00,
  0x20,
  0x00,
  0x20,
  0x00,
  0xfd,
  0x00,
  0x04,
  0x00, // v128.load
  0x20,
  0x00,
  0xfd,
  0x00,
  0x04,
  0x10, // v128.load offset=16
  0x20,
  0x00,
  0xfd,
  0x00,
  0x04,
  0x20, // v128.load offset=32
  0xfd,
  0x93,
  0x02, // i32x4.relaxed_dot_i8x16_i7x16_add_s
  0xfd,
  0x0b,
  0x04,
  0x30, // v128.store offset=48
  0x0b,
);

/** One dot: signed bytes `a`, bytes `b` in 0..127, int32 accumulators `c`. */
interface DotCase {
  a: Int8Array;
  b: Uint8Array;
  c: Int32Array;
}

/** Null if the relaxed build may run here, else why not. */
export async function probeRelaxedSimd(): Promise<string | null> {
  const node = nodeMajor();
  if (node !== undefined && node <= 20)
    return `Node ${node} miscomputes relaxed SIMD dots (Node 22 or newer runs them)`;
  return relaxedDotProblem();
}

/** The probe proper, whatever the engine: null if the dots come out exact, else what went wrong. */
export async function relaxedDotProblem(): Promise<string | null> {
  let exports: WebAssembly.Exports;
  try {
    exports = (await WebAssembly.instantiate(PROBE)).instance.exports;
  } catch (error) {
    return `the engine does not compile relaxed SIMD (${(error as Error).message})`;
  }
  const memory = (exports.m as WebAssembly.Memory).buffer;
  const dot = exports.dot as (at: number) => void;
  for (const [i, { a, b, c }] of probeCases().entries()) {
    new Int8Array(memory, 0, 16).set(a);
    new Uint8Array(memory, 16, 16).set(b);
    new Int32Array(memory, 32, 4).set(c);
    dot(0);
    const got = Array.from(new Int32Array(memory, 48, 4));
    const want = exactDot(a, b, c);
    if (got.some((v, lane) => v !== want[lane])) return `relaxed dot case ${i} gave [${got}], exactly it is [${want}]`;
  }
  return null;
}

/**
 * The extremes the kernels reach (-128 and 127 times 127, sums near the x86 16-bit limit, the 0/1
 * high halves of split activations), then seeded random operands.
 */
function probeCases(): DotCase[] {
  const fill = (a: number, b: number, c: number[]): DotCase => ({
    a: new Int8Array(16).fill(a),
    b: new Uint8Array(16).fill(b),
    c: Int32Array.from(c),
  });
  const cases = [
    fill(-128, 127, [0, 1, -1, 2 ** 30]),
    fill(127, 127, [-(2 ** 31), 2 ** 31 - 1 - 4 * 127 * 127, 7, -7]),
    fill(-128, 1, [5, 0, -3, 2 ** 20]),
    {
      a: Int8Array.from({ length: 16 }, (_, i) => (i % 2 ? 127 : -128)),
      b: Uint8Array.from({ length: 16 }, (_, i) => (i % 3 ? 127 : 0)),
      c: new Int32Array(4),
    },
  ];
  let seed = 0x2545f491;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 16;
  };
  for (let i = 0; i < 8; i++) {
    cases.push({
      a: Int8Array.from({ length: 16 }, () => (next() - 32768) >> 8),
      b: Uint8Array.from({ length: 16 }, () => next() & 127),
      c: Int32Array.from({ length: 4 }, () => next() * 65536 + next()),
    });
  }
  return cases;
}

function exactDot(a: Int8Array, b: Uint8Array, c: Int32Array): number[] {
  return Array.from(c, (acc, lane) => {
    let sum = acc;
    for (let j = 4 * lane; j < 4 * lane + 4; j++) sum += a[j] * b[j];
    return sum | 0;
  });
}

function nodeMajor(): number | undefined {
  const version = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  return version === undefined ? undefined : Number.parseInt(version, 10);
}
