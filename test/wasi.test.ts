// The standalone WASI build (build/resnet-wasi.wasm) under Node's WASI: it replays the plan that
// `resnet-wasm wasi-plan` recorded and must print the JS runtime's top-5, logits to the bit.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../src/runtime/model.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'resnet-wasm.js');
const WASM = join(ROOT, 'build', 'resnet-wasi.wasm');
const MODEL = join(ROOT, 'weights', 'default.rnw');
const PHOTOS = ['chelsea.png', 'rocket.jpg', 'coffee.png'];
const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-wasi-'));

function cli(...args: string[]): void {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
}

/**
 * Runs the command under Node's WASI in a child process, with `dir` preopened as ".". V8's fast API
 * calls into Node's WASI crash the process once the wasm memory passes about 32 MiB
 * (nodejs/node#53087: SIGSEGV after the output), hence --no-turbo-fast-api-calls.
 */
const RUNNER = `
const { WASI } = require('node:wasi');
const [wasm, dir, ...args] = process.argv.slice(1);
const wasi = new WASI({ version: 'preview1', args: ['resnet-wasi', ...args], preopens: { '.': dir }, returnOnExit: true });
WebAssembly.instantiate(require('node:fs').readFileSync(wasm), wasi.getImportObject())
  .then(({ instance }) => { process.exitCode = wasi.start(instance); });
`;

function runWasi(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    process.execPath,
    ['--no-turbo-fast-api-calls', '--no-warnings', '-e', RUNNER, WASM, dir, ...args],
    { encoding: 'utf8' },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** "77.4%  Egyptian cat (285)  logit 16.66411 0x41855019" → index and f32 bits. */
function parseTop(stdout: string): { index: number; bits: string }[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => {
      const m = /\((\d+)\) {2}logit \S+ 0x([0-9a-f]{8})$/.exec(line);
      assert.ok(m, `unexpected line: ${line}`);
      return { index: Number(m![1]), bits: m![2] };
    });
}

const bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0].toString(16).padStart(8, '0');

test('the WASI command prints the top-5 of the JS runtime, logits to the bit, for 3 photos', async () => {
  assert.ok(existsSync(MODEL), 'weights/default.rnw (npm run build:model)');
  symlinkSync(MODEL, join(dir, 'default.rnw'));
  const start = performance.now();
  cli('wasi-plan', MODEL, '-o', join(dir, 'default.plan'));
  console.log(`  wasi: plan recorded in ${(performance.now() - start).toFixed(0)} ms`);
  const model = await loadModel(MODEL);
  for (const photo of PHOTOS) {
    cli('preprocess', join(ROOT, 'test', 'photos', photo), '-o', join(dir, 'input.u8'));
    const t = performance.now();
    const r = runWasi(['default.rnw', 'default.plan', 'input.u8']);
    console.log(`  wasi: ${photo} in ${(performance.now() - t).toFixed(0)} ms (instantiate, read the model, run)`);
    assert.is(r.code, 0, r.stderr);
    const { top, logits } = await model.classify(readFileSync(join(ROOT, 'test', 'photos', photo)));
    assert.equal(
      parseTop(r.stdout),
      top.map((p) => ({ index: p.index, bits: bits(logits[p.index]) })),
      photo,
    );
    assert.match(r.stdout, top[0].label);
  }
  model.dispose();
});

test('bad arguments and a wrong input size fail with a message', () => {
  let r = runWasi(['default.rnw']);
  assert.is(r.code, 2);
  assert.match(r.stderr, 'usage: resnet-wasi');
  r = runWasi(['default.rnw', 'default.plan', 'missing.u8']);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'cannot open missing.u8');
  r = runWasi(['default.rnw', 'default.plan', 'default.plan']);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'the input must be 150528 bytes');
});

test.run();
