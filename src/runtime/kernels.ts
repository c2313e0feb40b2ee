/**
 * The kernel ABI, once: every kernel that a Network calls, with its wasm export's module and its
 * arguments in call order, each a pointer into the memory (`ptr`, usize), an integer (`i32`) or a
 * float (`f32`). The worker threads (threads.ts), the network's calls (network.ts, through
 * KernelArgs), the WASI planner's kernel numbers (src/cli/wasi-plan.ts) and the WASI command's
 * dispatch (wasi/calls.ts, generated from this table by scripts/wasi-calls.ts) all come from it;
 * kernel-abi.test checks it against the AssemblyScript signatures. A `sliced` kernel takes
 * (part, parts, thread) after these arguments: it does slice `part` of `parts` of its outer loop
 * with thread `thread`'s scratch, the convention assembly/parts.ts spells out, and has a row in
 * WORK below, which says how big that loop is so that threads.ts can cut a call into chunks.
 *
 * A kernel's number (in a WASI plan, on the threads' job board) is its position here: append new
 * kernels at the end.
 */
export type ArgKind = 'ptr' | 'i32' | 'f32';

interface KernelSpec {
  /** The file of assembly/ that exports it. */
  readonly module: string;
  readonly sliced: boolean;
  readonly args: readonly (readonly [string, ArgKind])[];
}

/** Max and average pooling take the same arguments (assembly/pool.ts). */
const POOL_ARGS = [
  ['input', 'ptr'],
  ['inH', 'i32'],
  ['inW', 'i32'],
  ['channels', 'i32'],
  ['output', 'ptr'],
  ['outH', 'i32'],
  ['outW', 'i32'],
  ['k', 'i32'],
  ['stride', 'i32'],
  ['pad', 'i32'],
] as const;

/** A conv's NHWC input, its kernel geometry, and the requantized output that every conv writes. */
const INPUT_MAP = [
  ['input', 'ptr'],
  ['inH', 'i32'],
  ['inW', 'i32'],
  ['inC', 'i32'],
] as const;
const CONV_GEOMETRY = [
  ['kh', 'i32'],
  ['kw', 'i32'],
  ['stride', 'i32'],
  ['pad', 'i32'],
] as const;
const REQUANTIZED_OUTPUT = [
  ['output', 'ptr'],
  ['outH', 'i32'],
  ['outW', 'i32'],
  ['zo', 'i32'],
  ['lo', 'i32'],
] as const;
/** gemm's blocking (conv-path.ts gemmBlocking) and a thread's scratch, last in both GEMM kernels. */
const GEMM_BLOCKING = [
  ['groupBlocks', 'i32'],
  ['chunkPixels', 'i32'],
  ['byPixels', 'i32'],
  ['scratch', 'ptr'],
  ['scratchStride', 'i32'],
] as const;

export const KERNELS = {
  conv: {
    module: 'conv',
    sliced: true,
    args: [
      ...INPUT_MAP,
      ['zx', 'i32'],
      ['params', 'ptr'],
      ['outC', 'i32'],
      ...CONV_GEOMETRY,
      ...REQUANTIZED_OUTPUT,
      ['padRow', 'ptr'],
      ['scratch', 'ptr'],
      ['scratchStride', 'i32'],
    ],
  },
  maxpool: {
    module: 'pool',
    sliced: true,
    args: POOL_ARGS,
  },
  gap: {
    module: 'pool',
    sliced: true,
    args: [
      ['input', 'ptr'],
      ['pixels', 'i32'],
      ['channels', 'i32'],
      ['zx', 'i32'],
      ['output', 'ptr'],
      ['multiplier', 'f32'],
      ['zo', 'i32'],
    ],
  },
  add: {
    module: 'add',
    sliced: true,
    args: [
      ['a', 'ptr'],
      ['za', 'i32'],
      ['multA', 'f32'],
      ['b', 'ptr'],
      ['zb', 'i32'],
      ['multB', 'f32'],
      ['output', 'ptr'],
      ['count', 'i32'],
      ['zo', 'i32'],
      ['lo', 'i32'],
    ],
  },
  fc: {
    module: 'fc',
    sliced: true,
    args: [
      ['input', 'ptr'],
      ['inC', 'i32'],
      ['params', 'ptr'],
      ['outC', 'i32'],
      ['output', 'ptr'],
    ],
  },
  winogradInput: {
    module: 'winograd',
    sliced: true,
    args: [...INPUT_MAP, ['zx', 'i32'], ['v', 'ptr'], ['tile', 'i32'], ['tilesH', 'i32'], ['tilesW', 'i32']],
  },
  winogradConv: {
    module: 'winograd',
    sliced: true,
    args: [
      ['v', 'ptr'],
      ['tile', 'i32'],
      ['chunk', 'i32'],
      ['tilesH', 'i32'],
      ['tilesW', 'i32'],
      ['inC', 'i32'],
      ['bias', 'ptr'],
      ['params', 'ptr'],
      ['outC', 'i32'],
      ['output', 'ptr'],
      ['outH', 'i32'],
      ['outW', 'i32'],
      ['zo', 'i32'],
      ['lo', 'i32'],
      ['scratch', 'ptr'],
      ['scratchStride', 'i32'],
    ],
  },
  patches: {
    module: 'patches',
    sliced: true,
    args: [
      ...INPUT_MAP,
      ['zx', 'i32'],
      ['kh', 'i32'],
      ['kw', 'i32'],
      ['stride', 'i32'],
      ['pad', 'i32'],
      ['output', 'ptr'],
      ['outH', 'i32'],
      ['outW', 'i32'],
      ['kp', 'i32'],
    ],
  },
  winogradBias: {
    module: 'winograd-weights',
    sliced: false,
    args: [
      ['params', 'ptr'],
      ['cin', 'i32'],
      ['cout', 'i32'],
      ['zx', 'i32'],
      ['out', 'ptr'],
    ],
  },
  avgpool: {
    module: 'pool',
    sliced: true,
    args: POOL_ARGS,
  },
  affine: {
    module: 'affine',
    sliced: true,
    args: [
      ['input', 'ptr'],
      ['pixels', 'i32'],
      ['channels', 'i32'],
      ['zx', 'i32'],
      ['params', 'ptr'],
      ['output', 'ptr'],
      ['zo', 'i32'],
      ['lo', 'i32'],
    ],
  },
  gemm: {
    module: 'gemm',
    sliced: true,
    args: [
      ['input', 'ptr'],
      ['inW', 'i32'],
      ['inC', 'i32'],
      ['params', 'ptr'],
      ['outC', 'i32'],
      ['stride', 'i32'],
      ...REQUANTIZED_OUTPUT,
      ...GEMM_BLOCKING,
    ],
  },
  gemmTaps: {
    module: 'gemm',
    sliced: true,
    args: [
      ...INPUT_MAP,
      ['params', 'ptr'],
      ['outC', 'i32'],
      ...CONV_GEOMETRY,
      ...REQUANTIZED_OUTPUT,
      ['padRow', 'ptr'],
      ...GEMM_BLOCKING,
    ],
  },
} as const satisfies Record<string, KernelSpec>;

type Table = typeof KERNELS;
export type KernelName = keyof Table;
/** The kernels that a layer's work is split into parts for. */
export type SlicedKernel = { [K in KernelName]: Table[K]['sliced'] extends true ? K : never }[KernelName];

/** A kernel call's arguments by name: a missing, extra or misnamed argument is a type error. */
export type KernelArgs<K extends KernelName> = { readonly [A in Table[K]['args'][number][0]]: number };

type Numbers<T extends readonly unknown[]> = { -readonly [I in keyof T]: number };
/** The wasm export's signature, derived from the table. @internal */
export type KernelFunction<K extends KernelName> = (
  ...args: Table[K]['sliced'] extends true
    ? [...Numbers<Table[K]['args']>, part: number, parts: number, thread: number]
    : Numbers<Table[K]['args']>
) => void;

/** The parameters that every sliced kernel takes after its own arguments (assembly/parts.ts). */
export const SLICE_PARAMETERS = ['part', 'parts', 'thread'] as const;

/**
 * A sliced call's outer loop: `units`, the n that the kernel slices with sliceStart/sliceEnd (a
 * chunk is never smaller than one unit), and `unitWork`, about how long one unit takes, in
 * multiply-accumulates of the direct conv (~0.033 ns each on the 2-core VM). It only decides how
 * finely a call is cut, so it may be off by 2x.
 */
export interface Work {
  units: number;
  unitWork: number;
}

const cp = (channels: number) => Math.ceil(channels / 8) * 8;
const blocks = (outC: number) => Math.ceil(outC / 4);
/** Winograd's transformed tile is (tile + 2)² positions; each product is a conv MAC's work. */
const positions = (tile: number) => (tile + 2) ** 2;

/**
 * Each sliced kernel's outer loop, from its arguments: a new sliced kernel needs its row here.
 * Element-wise costs from ResNet-50's `bench --profile`, in conv MACs per byte: add 16 (0.44 ms
 * at 56x56x256), max pool 4 per window byte (0.23 ms at 56x56x64, 3x3), gap 14 (0.05 ms at
 * 7x7x2048), fc 2 per MAC (reads every weight once).
 */
export const WORK: { readonly [K in SlicedKernel]: (a: KernelArgs<K>) => Work } = {
  conv: (a) => ({ units: blocks(a.outC), unitWork: 4 * a.outH * a.outW * a.kh * a.kw * cp(a.inC) }),
  maxpool: (a) => ({ units: a.outH, unitWork: 4 * a.outW * a.channels * a.k * a.k }),
  avgpool: (a) => ({ units: a.outH, unitWork: 4 * a.outW * a.channels * a.k * a.k }),
  gap: (a) => ({ units: Math.ceil(a.channels / 16), unitWork: 14 * 16 * a.pixels }),
  add: (a) => ({ units: Math.ceil(a.count / 16), unitWork: 16 * 16 }),
  affine: (a) => ({ units: a.pixels, unitWork: 16 * a.channels }),
  fc: (a) => ({ units: blocks(a.outC), unitWork: 2 * 4 * cp(a.inC) }),
  patches: (a) => ({ units: a.outH, unitWork: 2 * a.outW * a.kp }),
  winogradInput: (a) => ({ units: a.tilesH, unitWork: 2 * a.tilesW * positions(a.tile) * cp(a.inC) }),
  winogradConv: (a) => ({ units: blocks(a.outC), unitWork: 4 * a.tilesH * a.tilesW * positions(a.tile) * cp(a.inC) }),
  gemm: (a) => gemmWork(a, cp(a.inC)),
  gemmTaps: (a) => gemmWork(a, a.kh * a.kw * cp(a.inC)),
};

/** A GEMM of depth `k`: its quads of pixels or its output-channel blocks, as byPixels says. */
function gemmWork(a: { outH: number; outW: number; outC: number; byPixels: number }, k: number): Work {
  return a.byPixels
    ? { units: Math.ceil((a.outH * a.outW) / 4), unitWork: 4 * a.outC * k }
    : { units: blocks(a.outC), unitWork: 4 * a.outH * a.outW * k };
}

/** Every kernel's number: its position in the table. */
export const KERNEL_NAMES = Object.keys(KERNELS) as KernelName[];

/** The most arguments in a kernel's row of the table ((part, parts, thread) not counted). */
export const MAX_KERNEL_ARGS = Math.max(...KERNEL_NAMES.map((name) => KERNELS[name].args.length));

/** The positional arguments of a call, in the table's order. */
export function argumentList<K extends KernelName>(kernel: K, args: KernelArgs<K>): number[] {
  const named = args as Record<string, number>;
  return KERNELS[kernel].args.map(([name]) => named[name]);
}

/** Calls a kernel export with positional arguments (argumentList), then any trailing ones (part, parts, thread). */
export function invoke(
  exports: { readonly [K in KernelName]: unknown },
  kernel: KernelName,
  args: readonly number[],
  ...trailing: number[]
): void {
  (exports[kernel] as (...values: number[]) => void)(...args, ...trailing);
}
