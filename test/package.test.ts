// The npm package as a user gets it: packed, installed from the tarball into an empty folder, run
// with npx, imported from ESM for Node and for browsers (conditional exports), type-checked.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'check-pack.js'), mkdtempSync(join(tmpdir(), 'resnet-wasm-empty-'))], { encoding: 'utf8' });
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
  const files = execFileSync('tar', ['-tzf', join(packDir, tarball)], { encoding: 'utf8' }).trim().split('\n');
  for (const file of ['bin/resnet-wasm.js', 'dist/index.js', 'dist/browser.js', 'dist/cli.js', 'dist/types/index.d.ts', 'build/resnet.wasm', 'weights/default.rnw', 'README.md']) {
    assert.ok(files.includes(`package/${file}`), `${file} is packed`);
  }
  assert.ok(!files.some((f) => /^package\/(src|test|assembly|web)\//.test(f)), 'no sources or tests');
});

test('installed from the tarball into an empty folder, npx resnet-wasm classify finds the cat', () => {
  writeFileSync(join(appDir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const [tarball] = readdirSync(packDir);
  const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(packDir, tarball)], { cwd: appDir, env, encoding: 'utf8' });
  assert.is(install.status, 0, install.stderr);
  // A tarball is not a registry source, so npm 11 lists the checkout's `prepare` (the build) as an install
  // script it did not run; from the registry it is not listed. Any other warning (EBADENGINE, config) fails.
  const warnings = install.stderr.split('\n').filter((l) => /npm warn/i.test(l) && !/install-scripts( |$)/.test(l));
  assert.equal(warnings, [], `the install printed warnings:\n${install.stderr}`);
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
  for (const name of ['fastify', 'prom-client', 'mqtt', 'protobufjs', 'image-size', '@fastify']) assert.not.ok(installed.includes(name), `${name} is installed`);
  assert.ok(installed.includes('jpeg-js') && installed.includes('fast-png'));
  const serve = spawnSync('npx', ['--no', 'resnet-wasm', 'serve', '--port', '0'], { cwd: appDir, env, encoding: 'utf8' });
  assert.is(serve.status, 1);
  assert.match(serve.stderr, /needs the package "fastify", which is not installed: npm install fastify @fastify\/multipart prom-client image-size/);
});

/** The README's examples, as written, run in the consumer (from a subfolder: the model is found next to the package). */
test('loadModel() with no source: ESM, CommonJS (require and import()), from any folder', () => {
  const sub = join(appDir, 'deep', 'folder');
  mkdirSync(sub, { recursive: true });
  const photo = JSON.stringify(CAT);
  writeFileSync(join(sub, 'esm.mjs'), [
    "import { loadModel } from 'resnet-wasm';",
    'const model = await loadModel();',
    `const { top } = await model.classify(${photo}, { top: 3 });`,
    'console.log(top[0].label);',
    'model.dispose();',
  ].join('\n'));
  writeFileSync(join(sub, 'required.cjs'), [
    "const { loadModel } = require('resnet-wasm');",
    `loadModel().then(async (model) => { console.log((await model.classify(${photo})).top[0].label); model.dispose(); });`,
  ].join('\n'));
  writeFileSync(join(sub, 'imported.cjs'), [
    "import('resnet-wasm').then(async ({ loadModel }) => {",
    '  const model = await loadModel();',
    `  console.log((await model.classify(${photo})).top[0].label);`,
    '  model.dispose();',
    '});',
  ].join('\n'));
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

test('the types resolve through the exports for a strict NodeNext TypeScript consumer', () => {
  writeFileSync(join(appDir, 'typed.ts'), [
    "import { loadModel, ModelFormatError, type Classification, type LoadProgress } from 'resnet-wasm';",
    "const model = await loadModel('model.rnw', { onProgress: (p: LoadProgress) => p.bytesLoaded, threads: 2 });",
    'const result: Classification = await model.classify(new Uint8Array(0), { top: 3 });',
    'export const label: string = result.top[0].label;',
    'export const isFormatError = (e: unknown) => e instanceof ModelFormatError;',
  ].join('\n'));
  const compilerOptions = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, lib: ['ES2023', 'DOM'], types: [] };
  writeFileSync(join(appDir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['typed.ts'] }));
  run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], appDir);
});

test.run();
