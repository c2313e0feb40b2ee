import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '../default-model.ts';

/** The installed package's root: the same answer from src/ (tsx) and from the bundled dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'resnet-wasm') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the resnet-wasm package root');
    dir = parent;
  }
}

/** The model the commands use when no --model is given: the packaged one. */
export function defaultModelPath(): string {
  return fileURLToPath(defaultModelUrl());
}
