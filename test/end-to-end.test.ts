// ResNet-18 end to end: the file the builder writes, loaded by the runtime, against two oracles:
// the independent scalar integer reference (bit for bit) and the fp32 reference (quality).
// The network's BN statistics are measured on real photos so that its output depends on its
// input (a random ResNet with default BN answers almost the same for every photo).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildTestModel } from '../src/builder/build.ts';
import { imagenetPreprocessing } from '../src/builder/resnet.ts';
import { decodeModel } from '../src/format/reader.ts';
import { writeModel } from '../src/format/writer.ts';
import { preprocessFloat, preprocessQuantized } from '../src/image/preprocess.ts';
import { runFloat } from '../src/reference/fp32.ts';
import { simdConvolve } from '../src/reference/fp32-simd.ts';
import { loadModel } from '../src/runtime/model.ts';
import { argmax, centredCosine } from './helpers/metrics.ts';
import { photoSplit } from './helpers/photos.ts';
import { runQuantReference } from './oracle/int8-reference.ts';

const photos = photoSplit(16, 20);
const preprocessing = imagenetPreprocessing(224);
const { float, quant } = buildTestModel({
  depth: 18,
  seed: 7,
  calibration: photos.calibration.map((p) => preprocessFloat(p.image, preprocessing)),
});
const file = writeModel(quant);
const model = await loadModel(file);
const inputs = photos.test.map((p) => preprocessQuantized(p.image, preprocessing, quant.tensors[0]));
const int8 = inputs.map((input) => model.run(input));

test('int8 logits equal the independent scalar integer reference, bit for bit, on 20 views of photos', () => {
  const reference = decodeModel(file);
  inputs.forEach((input, i) => {
    assert.equal(int8[i], runQuantReference(reference, input), photos.test[i].file);
  });
});

test('int8 follows fp32 on a network whose answer depends on the photo', () => {
  // The reference's convs in wasm: its floats bit for bit (fp32-simd.test.ts), 5 times sooner.
  const convolve = simdConvolve();
  const fp32 = photos.test.map((p) => runFloat(float, preprocessFloat(p.image, preprocessing), undefined, convolve));
  const classes = new Set(fp32.map(argmax));
  assert.ok(classes.size >= 5, `fp32 top-1 takes only ${classes.size} distinct classes over 20 views`);
  const cosine = centredCosine(int8, fp32);
  const agreement = fp32.filter((f, i) => argmax(f) === argmax(int8[i])).length;
  console.log(
    `end-to-end: ${classes.size} distinct fp32 classes, centred cosine ${cosine.toFixed(4)}, top-1 agreement ${agreement}/20`,
  );
  assert.ok(cosine >= 0.97, `mean centred cosine ${cosine}`);
  assert.ok(agreement >= 17, `top-1 agreement ${agreement}/20`);
});

test('the runtime reports its memory: parameters, Winograd biases and one reused activation arena', () => {
  const f = model.footprint();
  // Every payload as it came (11.7 MB of ResNet-18 weights); Winograd derives U' as it runs and
  // keeps only its unfolded biases.
  assert.ok(f.parameterBytes > 11e6 && f.parameterBytes < 12e6, `parameters ${f.parameterBytes}`);
  assert.ok(f.derivedBytes > 0 && f.derivedBytes < 1e5, `Winograd biases ${f.derivedBytes}`);
  // Two 56x56x64 activations plus the stem's patch rows bound the peak; no tensor has its own buffer.
  assert.ok(f.arenaBytes < 4e6, `arena ${f.arenaBytes}`);
  assert.ok(f.wasmBytes >= f.parameterBytes + f.derivedBytes + f.arenaBytes);
});

test.run();
