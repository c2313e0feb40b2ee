// `npm pack` runs this first (prepack): the tarball must carry the built runtime and the default
// model, which are build outputs and so not in git. A missing one fails the pack, naming the fix.
// Usage: node scripts/check-pack.js [package root]
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2] ?? '.';
const REQUIRED = {
  'dist/index.js': 'npm run build',
  'dist/browser.js': 'npm run build',
  'dist/cli.js': 'npm run build',
  'dist/serve-worker.js': 'npm run build',
  'dist/mqtt.js': 'npm run build',
  'dist/types/index.d.ts': 'npm run build',
  'build/resnet.wasm': 'npm run build',
  'weights/default.rnw': 'npm run build:model',
};

const missing = Object.entries(REQUIRED).filter(
  ([file]) => !existsSync(join(root, file)) || statSync(join(root, file)).size === 0,
);
if (missing.length > 0) {
  for (const [file, fix] of missing) console.error(`resnet-wasm: cannot pack: ${file} is missing (run "${fix}")`);
  process.exit(1);
}
