// The command line as a user meets it: the bundled CLI in a child process, good and bad input.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resnetFloat } from '../src/builder/resnet.ts';
import { ImageDecodeError, ModelFormatError } from '../src/errors.ts';
import { writeModel } from '../src/format/writer.ts';
import { outputTensor } from '../src/model/types.ts';
import { rangeParams } from '../src/quantize/calibrate.ts';
import { quantizeModel } from '../src/quantize/quantize.ts';
import { loadModel } from '../src/runtime/model.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'resnet-wasm.js');
const CAT = join(ROOT, 'test', 'photos', 'chelsea.png');
const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-cli-'));

/** A small ResNet-18 (64x64 input, 10 classes) with fixed activation ranges: quick to run. */
function smallModelFile(): Uint8Array {
  const float = resnetFloat({ depth: 18, seed: 3, inputSize: 64, numClasses: 10 });
  const out = outputTensor(float);
  const quant = quantizeModel(
    float,
    float.tensors.map((_, t) => (t === out ? { scale: 1, zeroPoint: 0 } : rangeParams(t === 0 ? -2.2 : 0, 6))),
  );
  return writeModel({ ...quant, labels: quant.labels.map((_, i) => `label ${i}`) });
}

const MODEL_BYTES = smallModelFile();
const MODEL = join(dir, 'small.rnw');
writeFileSync(MODEL, MODEL_BYTES);

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function badFile(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

test('classify --json prints one JSON object per image', () => {
  const r = cli('classify', CAT, CAT, '--model', MODEL, '--json', '--top', '3');
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.is(lines.length, 2);
  for (const line of lines) {
    assert.is(line.file, CAT);
    assert.is(line.top.length, 3);
    assert.equal(Object.keys(line.top[0]).sort(), ['index', 'label', 'score']);
    assert.match(line.top[0].label, /^label \d$/);
    assert.ok(line.top[0].score >= line.top[1].score && line.top[1].score >= line.top[2].score);
    assert.type(line.ms, 'number');
  }
  assert.equal(lines[0].top, lines[1].top, 'same photo, same answer');
});

test("classify --decoder js: the JavaScript decoder's answer, the same as in-process; a bad choice is a usage error", async () => {
  const rocket = join(ROOT, 'test', 'photos', 'rocket.jpg');
  const r = cli('classify', rocket, '--model', MODEL, '--json', '--decoder', 'js');
  assert.is(r.code, 0, r.stderr);
  const model = await loadModel(MODEL_BYTES);
  const expected = await model.classify(readFileSync(rocket), { decoder: 'js' });
  model.dispose();
  assert.equal(JSON.parse(r.stdout).top, expected.top);
  const bad = cli('classify', rocket, '--model', MODEL, '--decoder', 'pil');
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /decoder must be one of auto, sharp, browser, js, got "pil"/);
});

test('classify: a file that is not an image is reported and the others still run', () => {
  const notImage = badFile('notes.jpg', new TextEncoder().encode('this is not a photo'));
  const r = cli('classify', notImage, CAT, '--model', MODEL, '--json');
  assert.is(r.code, 1);
  const [bad, good] = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.is(bad.file, notImage);
  assert.match(bad.error, /not a supported image|JPEG|PNG/i);
  assert.is(good.top.length, 5);
  assert.not.match(r.stderr, /at .*\.js:\d+/, 'no stack trace');
});

test('classify: a model with a wrong magic, truncated, or corrupted: one line naming the byte offset', () => {
  const wrongMagic = MODEL_BYTES.slice();
  wrongMagic[1] ^= 0xff;
  const corrupted = MODEL_BYTES.slice();
  corrupted[corrupted.length >> 1] ^= 0x01;
  const cases: [string, Uint8Array, RegExp][] = [
    ['magic.rnw', wrongMagic, /magic/i],
    ['truncated.rnw', MODEL_BYTES.slice(0, MODEL_BYTES.length - 1000), /truncat|ends|missing/i],
    ['corrupted.rnw', corrupted, /CRC|checksum|padding/i],
  ];
  for (const [name, bytes, problem] of cases) {
    const r = cli('classify', CAT, '--model', badFile(name, bytes));
    assert.is(r.code, 1, name);
    assert.match(r.stderr, problem, name);
    assert.match(r.stderr, /byte \d+/, `${name}: ${r.stderr}`);
    assert.ok(
      r.stderr.startsWith(`resnet-wasm: ${join(dir, name)}: `),
      `${name}: the message names the file: ${r.stderr}`,
    );
    assert.is(r.stderr.trim().split('\n').length, 1, `${name}: one line`);
    assert.is(r.stdout, '');
  }
});

test('classify: a missing model or image file is a one-line error', () => {
  const r = cli('classify', CAT, '--model', join(dir, 'missing.rnw'));
  assert.is(r.code, 1);
  assert.match(r.stderr, /missing\.rnw/);
  const s = cli('classify', join(dir, 'missing.png'), '--model', MODEL);
  assert.is(s.code, 1);
  assert.match(s.stderr, /missing\.png/);
});

test('bad arguments exit 2 with one line: unknown command, bad --top, no image, unknown option', () => {
  assert.is(cli('frobnicate').code, 2);
  const top = cli('classify', CAT, '--model', MODEL, '--top', 'x');
  assert.is(top.code, 2);
  assert.is(top.stderr, 'resnet-wasm: top must be a positive integer, got "x"\n');
  assert.is(cli('classify', '--model', MODEL).code, 2);
  assert.is(cli('classify', CAT, '--bogus').code, 2);
  assert.is(cli().code, 2, 'no command: the overview on stderr');
});

test('--threads on classify, classify --stream, embed, serve and mqtt: N or auto, the same logits, bad values exit 2', () => {
  const logits = (threads: string) => {
    const r = cli('classify', CAT, '--model', MODEL, '--json', '--top', '10', '--threads', threads);
    assert.is(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).top;
  };
  assert.equal(logits('3'), logits('1'));
  assert.equal(logits('auto'), logits('1'));
  const stream = cli('classify', '--stream', join(dir, 'absent.mjpeg'), '--model', MODEL, '--threads', '2');
  assert.match(stream.stderr, /absent\.mjpeg/, 'classify --stream takes --threads');
  const embed = (threads: string) => cli('embed', CAT, '--model', MODEL, '--json', '--threads', threads);
  assert.equal(JSON.parse(embed('2').stdout).embedding, JSON.parse(embed('1').stdout).embedding);
  for (const [command, bad] of [
    ['classify', '0'],
    ['embed', 'many'],
    ['serve', '1.5'],
    ['mqtt', '0'],
  ]) {
    const images = command === 'serve' || command === 'mqtt' ? [] : [CAT];
    const r = cli(command, ...images, '--model', MODEL, '--threads', bad);
    assert.is(r.code, 2, `${command} --threads ${bad}`);
    assert.match(r.stderr, /threads must be a positive integer or "auto", got/);
  }
  for (const command of ['classify', 'embed', 'serve', 'mqtt'])
    assert.match(cli(command, '--help').stdout, /--threads N\|auto +threads/, `${command} --help`);
  // mqtt's --threads used to count the workers: now both are serve's.
  for (const command of ['serve', 'mqtt']) {
    const help = cli(command, '--help').stdout;
    assert.match(help, /--threads N\|auto +threads per worker/, `${command} --help`);
    assert.match(help, /--workers N +.*each with its own model/, `${command} --help`);
    assert.match(help, /workers x threads stay within the cores unless both are given/, `${command} --help`);
    const workers = cli(command, '--model', MODEL, '--workers', '0');
    assert.is(workers.code, 2, `${command} --workers 0`);
    assert.match(workers.stderr, /--workers must be a positive integer, got "0"/);
  }
});

test('suggestions: a misspelled command or option names the nearest one', () => {
  const command = cli('clasify', CAT);
  assert.is(command.code, 2);
  assert.match(command.stderr, /unknown command "clasify"; did you mean "classify"\?/);
  const option = cli('classify', CAT, '--tpo', '3');
  assert.is(option.code, 2);
  assert.match(option.stderr, /unknown option --tpo; did you mean --top\?/);
  assert.match(cli('serve', '--wokers', '2').stderr, /did you mean --workers\?/);
  assert.not.match(cli('classify', CAT, '--zzzzzz').stderr, /did you mean/, 'nothing near: no suggestion');
});

test("--version prints package.json's version; every command has --help and help <command> with options and an example", () => {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  for (const flag of ['--version', '-v'])
    assert.equal(cli(flag), { code: 0, stdout: `${manifest.version}\n`, stderr: '' });
  const overview = cli('help');
  assert.is(overview.code, 0);
  const names = [...overview.stdout.matchAll(/^ {2}([a-z-]+) {2}/gm)].map((m) => m[1]);
  assert.ok(names.includes('classify') && names.includes('serve') && names.includes('convert'), names.join());
  for (const name of names) {
    const help = cli(name, '--help');
    assert.is(help.code, 0, name);
    assert.ok(help.stdout.startsWith(`Usage: resnet-wasm ${name} `), help.stdout);
    assert.match(help.stdout, /\nOptions:\n/);
    assert.match(help.stdout, new RegExp(`\\nExamples:\\n(  .*\\n)*  .*resnet-wasm ${name} `));
    assert.is(cli('help', name).stdout, help.stdout, `help ${name} is ${name} --help`);
  }
  assert.match(cli('classify', '--help').stdout, /--top K +how many classes to print \(default 5\)/);
  assert.is(cli('help', 'nope').code, 2);
});

test('every error about a file names it: a missing stream file, a missing model for serve-side commands', () => {
  const stream = cli('classify', '--stream', join(dir, 'no-such.mjpeg'), '--model', MODEL);
  assert.is(stream.code, 1);
  assert.match(stream.stderr, /no-such\.mjpeg/);
  const plan = cli('wasi-plan', join(dir, 'absent.rnw'), '-o', join(dir, 'x.plan'));
  assert.is(plan.code, 1);
  assert.match(plan.stderr, /absent\.rnw/);
});

test('bench --json prints the documented fields', () => {
  const r = cli('bench', '--model', MODEL, '--runs', '3', '--json');
  assert.is(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.equal(
    Object.keys(result).sort(),
    [
      'gmac_per_s',
      'input',
      'input_1080p',
      'kernels',
      'median_ms',
      'model',
      'p10_ms',
      'p90_ms',
      'runtime',
      'threads',
    ].sort(),
  );
  // On 1 thread, the input path of a 1080p JPEG, with each decoder that loads (sharp first).
  const decoders = result.input_1080p.map((t: { decoder: string }) => t.decoder);
  assert.ok(decoders.join() === 'sharp,js' || decoders.join() === 'js', decoders.join());
  for (const t of result.input_1080p)
    assert.ok(t.decode_ms > 0 && t.preprocess_ms > 0 && t.total_ms >= t.preprocess_ms, JSON.stringify(t));
  assert.is(result.runtime, 'resnet-wasm');
  assert.is(result.input, 64);
  assert.ok(result.p10_ms <= result.median_ms && result.median_ms <= result.p90_ms);
});

test('loadModel rejects bad bytes with ModelFormatError; classify rejects non-images with ImageDecodeError', async () => {
  for (const cut of [0, 8, 100, MODEL_BYTES.length - 1]) {
    try {
      await loadModel(MODEL_BYTES.slice(0, cut));
      assert.unreachable(`cut at ${cut}`);
    } catch (error) {
      assert.instance(error, ModelFormatError, String(error));
    }
  }
  const model = await loadModel(MODEL_BYTES);
  const failure = (image: Uint8Array) =>
    model.classify(image).then(
      () => assert.unreachable('classified'),
      (e: unknown) => e,
    );
  assert.instance(await failure(readFileSync(CLI)), ImageDecodeError);
  assert.instance(await failure(new Uint8Array(0)), ImageDecodeError);
  model.dispose();
  assert.match(String(await failure(readFileSync(CAT))), /disposed/);
});

test.run();
