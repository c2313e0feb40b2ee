// What a browser downloads: ours bundled and minified (wasm inlined as base64), against the peers'
// wasm files, raw and gzipped.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

export type ShippedSizes = Record<string, { bytes: number; gzipBytes: number }>;

const require = createRequire(import.meta.url);

export async function shippedSizes(): Promise<ShippedSizes> {
  const ours = await build({
    entryPoints: [fileURLToPath(new URL('../src/index.ts', import.meta.url))],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    // Imported only on Node, behind a check (sharp too: src/image/native.ts): a browser never loads them.
    external: ['node:*', 'sharp'],
    write: false,
  });
  const size = (bytes: Uint8Array) => ({ bytes: bytes.length, gzipBytes: gzipSync(bytes).length });
  const file = (specifier: string) => size(readFileSync(require.resolve(specifier)));
  return {
    'resnet-wasm: src/index.ts, minified browser bundle': size(ours.outputFiles[0].contents),
    'onnxruntime-web: ort-wasm-simd-threaded.wasm': file('onnxruntime-web/ort-wasm-simd-threaded.wasm'),
    'tfjs-backend-wasm: tfjs-backend-wasm-simd.wasm': file(
      '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm',
    ),
  };
}
