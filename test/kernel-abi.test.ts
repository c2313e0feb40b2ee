// The kernel table (src/runtime/kernels.ts) against what it describes: the AssemblyScript
// signatures, the compiled module's exports, and the WASI command's generated dispatch.

import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WASI_CALLS, wasiCallsSource } from '../scripts/wasi-calls.ts';
import { KERNEL_NAMES, KERNELS, SLICE_PARAMETERS, WORK } from '../src/runtime/kernels.ts';
import { createMemory, instantiateKernels, kernelModule } from '../src/runtime/wasm.ts';

const KIND = { usize: 'ptr', i32: 'i32', f32: 'f32' } as const;

/** The parameters of `export function NAME(...)` in assembly/MODULE.ts, as [name, type]. */
function assemblyParameters(module: string, name: string): string[][] {
  const source = readFileSync(new URL(`../assembly/${module}.ts`, import.meta.url), 'utf8');
  const match = new RegExp(`export function ${name}\\(([^)]*)\\)`).exec(source);
  assert.ok(match, `assembly/${module}.ts exports ${name}`);
  return match[1]
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => p.split(':').map((s) => s.trim()));
}

test('every kernel of the table has its AssemblyScript signature: names, kinds, order, (part, parts, thread)', () => {
  for (const name of KERNEL_NAMES) {
    const { module, args, sliced } = KERNELS[name];
    const expected = [
      ...args.map(([arg, kind]) => [arg, kind]),
      ...(sliced ? SLICE_PARAMETERS.map((name) => [name, 'i32']) : []),
    ];
    const actual = assemblyParameters(module, name).map(([arg, type]) => [
      arg,
      KIND[type as keyof typeof KIND] ?? type,
    ]);
    assert.equal(actual, expected, name);
  }
});

// The relaxed builds compile from the same source, and only where the engine has relaxed SIMD.
test('the baseline modules export every kernel of the table with its number of parameters', async () => {
  for (const shared of [false, true]) {
    const exports = (await instantiateKernels(
      await kernelModule(shared, 'baseline'),
      createMemory(65536, shared),
    )) as unknown as Record<string, (...args: number[]) => unknown>;
    for (const name of KERNEL_NAMES) {
      const { args, sliced } = KERNELS[name];
      assert.type(exports[name], 'function', `exports ${name} (shared memory: ${shared})`);
      assert.is(
        exports[name].length,
        args.length + (sliced ? SLICE_PARAMETERS.length : 0),
        `${name}'s parameters (shared memory: ${shared})`,
      );
    }
  }
});

test('every sliced kernel, and only those, has a row in WORK (how threads.ts cuts its calls)', () => {
  assert.equal(Object.keys(WORK).sort(), KERNEL_NAMES.filter((name) => KERNELS[name].sliced).sort());
});

test('wasi/calls.ts is generated from the current table', () => {
  assert.fixture(readFileSync(WASI_CALLS, 'utf8'), wasiCallsSource(), 'run: node --import tsx scripts/wasi-calls.ts');
});

test.run();
