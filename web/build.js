// Builds the web app into build/web/: index.html, app.js (the page), worker.js (the model),
// sw.js (offline), and a copy of the default model, default.rnw. Everything is bundled by esbuild
// as classic scripts (a service worker cannot be a module everywhere). Run from the package root.

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { build } from 'esbuild';
import { browserOptions } from '../scripts/esbuild-browser.js';

const OUT = 'build/web';
const MODEL = 'weights/default.rnw';

mkdirSync(OUT, { recursive: true });
const options = { ...browserOptions, format: 'iife', minify: true, logLevel: 'warning' };
await build({ ...options, entryPoints: { app: 'web/app.ts', worker: 'web/worker.ts' }, outdir: OUT });
copyFileSync('web/index.html', `${OUT}/index.html`);

// The service worker's cache is named after the files it keeps, so a rebuild replaces it.
const hash = createHash('sha256');
for (const file of ['index.html', 'app.js', 'worker.js']) hash.update(readFileSync(`${OUT}/${file}`));
const version = hash.digest('hex').slice(0, 12);
await build({
  ...options,
  entryPoints: { sw: 'web/sw.ts' },
  outdir: OUT,
  define: { VERSION: JSON.stringify(version) },
});

if (existsSync(MODEL)) copyFileSync(MODEL, `${OUT}/default.rnw`);
else console.warn(`web: ${MODEL} is missing (npm run build:model): the app will not find its model`);
console.log(`web: ${OUT}/ (version ${version})`);
