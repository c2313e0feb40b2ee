// `resnet-wasm convert` as a user runs it: good conversions, and every failure leaves no output
// behind (nor a temporary file), and never touches an existing file at the output path.

import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resnetFloat } from '../src/builder/resnet.ts';
import { encodeOnnxModel } from '../src/convert/onnx-proto.ts';
import { decodeModel } from '../src/format/reader.ts';
import { buildKerasModel, saveTfjsLayers } from './helpers/keras-model.ts';
import { exportFolded } from './helpers/onnx-export.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'resnet-wasm.js');
const PHOTOS = join(ROOT, 'test', 'photos');
const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-convert-'));

const onnx = join(dir, 'resnet18.onnx');
writeFileSync(onnx, encodeOnnxModel(exportFolded(resnetFloat({ depth: 18, seed: 5, inputSize: 64, numClasses: 10 }))));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The conversion failed cleanly: one-line error matching `problem`, no output, no temporary file; exit 2 for bad arguments. */
function failsCleanly(args: string[], output: string, problem: RegExp, code = 1): void {
  const before = readdirSync(dirname(output));
  const r = cli('convert', ...args, '-o', output);
  assert.is(r.code, code, r.stderr);
  assert.match(r.stderr, problem);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(readdirSync(dirname(output)), before, 'nothing written');
}

test('ONNX → int8 with calibration photos, then classify with it; --ranges reproduces it byte for byte', () => {
  const out = join(dir, 'a.rnw');
  const ranges = join(dir, 'a.ranges.json');
  const r = cli('convert', onnx, '-o', out, '--calibrate', PHOTOS, '--save-ranges', ranges);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /a\.rnw: .*layers/);
  const model = decodeModel(readFileSync(out));
  assert.is(model.preprocessing.crop, 64);
  assert.is(model.labels.length, 10);
  const classify = cli('classify', join(PHOTOS, 'chelsea.png'), '--model', out, '--json');
  assert.is(classify.code, 0, classify.stderr);
  assert.is(JSON.parse(classify.stdout).top.length, 5);
  const again = join(dir, 'b.rnw');
  assert.is(cli('convert', onnx, '-o', again, '--ranges', ranges).code, 0);
  assert.equal(readFileSync(again), readFileSync(out));
});

test('every calibration method converts', () => {
  for (const method of ['percentile', 'entropy']) {
    const r = cli('convert', onnx, '-o', join(dir, `${method}.rnw`), '--calibrate', PHOTOS, '--calibration', method);
    assert.is(r.code, 0, `${method}: ${r.stderr}`);
  }
  failsCleanly([onnx, '--calibrate', PHOTOS, '--calibration', 'magic'], join(dir, 'x.rnw'), /--calibration/, 2);
});

test('calibration folder empty, missing, or holding a broken image: an error naming it, no output', () => {
  const empty = join(dir, 'empty');
  mkdirSync(empty);
  failsCleanly([onnx, '--calibrate', empty], join(dir, 'out.rnw'), /empty.*no JPEG or PNG|no JPEG or PNG/);
  failsCleanly([onnx, '--calibrate', join(dir, 'nowhere')], join(dir, 'out.rnw'), /nowhere/);
  const broken = join(dir, 'broken');
  mkdirSync(broken);
  writeFileSync(join(broken, 'bad.jpg'), 'not a jpeg');
  failsCleanly([onnx, '--calibrate', broken], join(dir, 'out.rnw'), /bad\.jpg/);
  failsCleanly([onnx], join(dir, 'out.rnw'), /--calibrate/);
});

test('corrupt or unsupported models: an error naming the file or node, no output', () => {
  const corrupt = join(dir, 'corrupt.onnx');
  writeFileSync(corrupt, readFileSync(onnx).subarray(0, 5000));
  failsCleanly([corrupt, '--calibrate', PHOTOS], join(dir, 'out.rnw'), /corrupt\.onnx/);
  failsCleanly([join(dir, 'missing.onnx'), '--calibrate', PHOTOS], join(dir, 'out.rnw'), /missing\.onnx/);
});

test('a TF.js model with a missing or short shard: an error naming the shard, no output', async () => {
  const keras = join(dir, 'keras');
  mkdirSync(keras);
  const modelJson = await saveTfjsLayers(buildKerasModel(3), keras, 2);
  const manifest = JSON.parse(readFileSync(modelJson, 'utf8')).weightsManifest[0].paths as string[];
  const converted = cli(
    'convert',
    modelJson,
    '-o',
    join(dir, 'keras.rnw'),
    '--calibrate',
    PHOTOS,
    '--preprocessing',
    'torch',
  );
  assert.is(converted.code, 0, converted.stderr);
  const shard = join(keras, manifest[1]);
  const bytes = readFileSync(shard);
  writeFileSync(shard, bytes.subarray(0, bytes.length - 4));
  failsCleanly([modelJson, '--calibrate', PHOTOS], join(dir, 'out.rnw'), new RegExp(manifest[1].replace('.', '\\.')));
  rmSync(shard);
  failsCleanly([modelJson, '--calibrate', PHOTOS], join(dir, 'out.rnw'), new RegExp(manifest[1].replace('.', '\\.')));
});

test('a network that computes NaN on the photos: an error naming the layer, no output', async () => {
  const keras = join(dir, 'nan');
  mkdirSync(keras);
  const modelJson = await saveTfjsLayers(buildKerasModel(4), keras, 1);
  const { weightsManifest } = JSON.parse(readFileSync(modelJson, 'utf8'));
  const weights: { name: string; shape: number[] }[] = weightsManifest[0].weights;
  // A negative BN variance: √(σ² + ε) is NaN from the stem on.
  const at = weights.findIndex((w) => w.name === 'bn_conv1/moving_variance');
  const offset = weights.slice(0, at).reduce((sum, w) => sum + 4 * w.shape.reduce((n, d) => n * d, 1), 0);
  const shard = join(keras, weightsManifest[0].paths[0]);
  const bytes = readFileSync(shard);
  new DataView(bytes.buffer, bytes.byteOffset).setFloat32(offset, -1, true);
  writeFileSync(shard, bytes);
  failsCleanly([modelJson, '--calibrate', PHOTOS], join(dir, 'out.rnw'), /non-finite.*"conv1"/);
});

test('a failed conversion leaves an existing file at the output path untouched', () => {
  const existing = join(dir, 'existing.rnw');
  copyFileSync(onnx, existing);
  const r = cli('convert', onnx, '-o', existing, '--calibrate', join(dir, 'nowhere'));
  assert.is(r.code, 1);
  assert.equal(readFileSync(existing), readFileSync(onnx));
  assert.ok(existsSync(existing));
});

test.run();
