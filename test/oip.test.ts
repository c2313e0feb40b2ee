// The Open Inference Protocol (/v2) of resnet-wasm serve, with requests shaped as Triton's and KServe's
// Python clients send them: tritonclient.http (JSON; binary tensors after the JSON header, no content
// type, Inference-Header-Content-Length; its classification parameter), kserve's REST client (JSON
// with an id). Oracles: `resnet-wasm classify --json` and Model.classify for the same photos, and
// tensors preprocessed by the library (src/image) for the tensor inputs.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeImage } from '../src/image/decode.ts';
import { preprocessFloat } from '../src/image/preprocess.ts';
import { resizeAndCenterCrop } from '../src/image/resize.ts';
import { loadModel, type Model } from '../src/runtime/model.ts';
import type { ClassifyResult } from '../src/serve/protocol.ts';
import { type ServeHandle, startServer } from '../src/serve/server.ts';
import { classifyCli } from './helpers/classify-cli.ts';
import { cosine } from './helpers/metrics.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = join(ROOT, 'weights', 'default.rnw');
const PHOTOS = join(ROOT, 'test', 'photos');
const CAT = readFileSync(join(PHOTOS, 'chelsea.png'));
const COFFEE = readFileSync(join(PHOTOS, 'coffee.png'));
const EGYPTIAN_CAT = 285,
  ESPRESSO = 967;

let server: ServeHandle;
let model: Model;
let expected: { cat: ClassifyResult; coffee: ClassifyResult };
let logits: { cat: Float32Array; coffee: Float32Array };

test.before(async () => {
  server = await startServer({ modelPath: MODEL, workers: 2, port: 0, maxBatch: 4 });
  model = await loadModel(MODEL);
  const [cat, coffee] = classifyCli('chelsea.png', 'coffee.png');
  expected = { cat, coffee };
  logits = { cat: (await model.classify(CAT)).logits, coffee: (await model.classify(COFFEE)).logits };
});

test.after(async () => {
  await server?.close();
  model?.dispose();
});

// ---- requests as the clients build them ----

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
  /** Sent after the JSON header (tritonclient's binary_data=True) or in it. */
  binary?: Uint8Array;
  data?: unknown[];
}

/**
 * tritonclient.http's InferenceServerClient.infer: the JSON header, then each binary input in order;
 * Inference-Header-Content-Length when anything is binary; no content type.
 */
function tritonRequest(
  inputs: Tensor[],
  outputs: { name: string; parameters?: Record<string, unknown> }[],
): { body: Buffer; headers: Record<string, string> } {
  const json = {
    inputs: inputs.map(({ name, datatype, shape, binary, data }) =>
      binary
        ? { name, shape, datatype, parameters: { binary_data_size: binary.length } }
        : { name, shape, datatype, data },
    ),
    outputs,
  };
  const head = Buffer.from(JSON.stringify(json));
  const binaries = inputs.flatMap((t) => (t.binary ? [t.binary] : []));
  const headers: Record<string, string> =
    binaries.length > 0 ? { 'Inference-Header-Content-Length': String(head.length) } : {};
  return { body: Buffer.concat([head, ...binaries]), headers };
}

/** kserve's InferenceRESTClient: JSON with the request's id, application/json. */
function kserveRequest(inputs: Tensor[]): { body: Buffer; headers: Record<string, string> } {
  const json = {
    id: 'kserve-7f3c',
    inputs: inputs.map(({ name, datatype, shape, data }) => ({ name, shape, datatype, data })),
  };
  return { body: Buffer.from(JSON.stringify(json)), headers: { 'content-type': 'application/json' } };
}

/** tritonclient's serialize_byte_tensor: each element as a 4-byte little-endian length and its bytes. */
function byteTensor(...elements: Uint8Array[]): Uint8Array {
  return Buffer.concat(elements.flatMap((e) => [Buffer.from(Uint32Array.of(e.length).buffer), e]));
}

interface Output {
  name: string;
  datatype: string;
  shape: number[];
  data: Float32Array | string[];
}

/** POSTs and reads the answer as tritonclient's InferResult does: the JSON, then each binary output. */
async function infer(request: { body: Buffer; headers: Record<string, string> }, path = '/v2/models/default/infer') {
  const response = await fetch(server.url + path, {
    method: 'POST',
    body: new Uint8Array(request.body),
    headers: request.headers,
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  const headerLength = Number(response.headers.get('inference-header-content-length') ?? bytes.length);
  const json = JSON.parse(bytes.subarray(0, headerLength).toString('utf8'));
  let offset = headerLength;
  const outputs: Record<string, Output> = {};
  for (const output of json.outputs ?? []) {
    const size = output.parameters?.binary_data_size;
    let data = output.data;
    if (size !== undefined) {
      const chunk = bytes.subarray(offset, offset + size);
      offset += size;
      data = output.datatype === 'FP32' ? new Float32Array(new Uint8Array(chunk).buffer) : splitByteTensor(chunk);
    } else if (output.datatype === 'FP32') {
      data = Float32Array.from(data);
    }
    outputs[output.name] = { ...output, data };
  }
  return { status: response.status, json, outputs };
}

function splitByteTensor(bytes: Buffer): string[] {
  const strings: string[] = [];
  for (let at = 0; at < bytes.length; at += 4 + bytes.readUInt32LE(at))
    strings.push(bytes.subarray(at + 4, at + 4 + bytes.readUInt32LE(at)).toString('utf8'));
  return strings;
}

/** "score:index:label" strings as classify --json's top-k (scores to 6 decimals). */
function asClassStrings(result: ClassifyResult, k: number): string[] {
  return result.top.slice(0, k).map(({ score, index, label }) => `${score.toFixed(6)}:${index}:${label}`);
}

const row = (data: Float32Array, i: number) => data.subarray(i * 1000, (i + 1) * 1000);

// ---- health and metadata ----

test('health, server metadata, model metadata and readiness as the protocol names them', async () => {
  const get = async (path: string) => {
    const response = await fetch(server.url + path);
    return { status: response.status, json: await response.json() };
  };
  assert.equal(await get('/v2/health/live'), { status: 200, json: { live: true } });
  assert.equal(await get('/v2/health/ready'), { status: 200, json: { ready: true } });
  const meta = await get('/v2');
  assert.is(meta.json.name, 'resnet-wasm');
  assert.equal(meta.json.extensions, ['binary_tensor_data', 'classification', 'model_configuration']);
  const modelMeta = {
    name: 'default',
    versions: ['1'],
    platform: 'resnet-wasm',
    inputs: [{ name: 'input', datatype: 'UINT8', shape: [-1, 224, 224, 3] }],
    outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 1000] }],
  };
  assert.equal(await get('/v2/models/default'), { status: 200, json: modelMeta });
  assert.equal(await get('/v2/models/default/versions/1'), { status: 200, json: modelMeta });
  // Triton's ModelConfig JSON for the same tensors: dims without the batch dimension, up to --max-batch (4 here).
  const config = {
    name: 'default',
    platform: 'resnet-wasm',
    backend: 'resnet-wasm',
    max_batch_size: 4,
    input: [{ name: 'input', data_type: 'TYPE_UINT8', format: 'FORMAT_NHWC', dims: [224, 224, 3] }],
    output: [{ name: 'logits', data_type: 'TYPE_FP32', dims: [1000], label_filename: 'default.rnw' }],
  };
  assert.equal(await get('/v2/models/default/config'), { status: 200, json: config });
  assert.equal(await get('/v2/models/default/versions/1/config'), { status: 200, json: config });
  assert.equal(await get('/v2/models/default/ready'), { status: 200, json: { name: 'default', ready: true } });
  for (const path of [
    '/v2/models/resnet50',
    '/v2/models/resnet50/ready',
    '/v2/models/resnet50/config',
    '/v2/models/default/versions/2',
    '/v2/models/default/versions/2/config',
  ]) {
    const answer = await get(path);
    assert.is(answer.status, 404, path);
    assert.equal(Object.keys(answer.json), ['error'], path);
    assert.type(answer.json.error, 'string');
  }
});

// ---- images ----

test('tritonclient, binary BYTES (the ensemble image client): two photos in one request, binary logits and classification', async () => {
  const request = tritonRequest(
    [{ name: 'INPUT', datatype: 'BYTES', shape: [2, 1], binary: byteTensor(CAT, COFFEE) }],
    [
      { name: 'logits', parameters: { binary_data: true } },
      { name: 'top', parameters: { binary_data: true, classification: 3 } },
    ],
  );
  const { status, json, outputs } = await infer(request);
  assert.is(status, 200, JSON.stringify(json));
  assert.is(json.model_name, 'default');
  assert.equal(outputs.logits.shape, [2, 1000]);
  assert.equal(row(outputs.logits.data as Float32Array, 0), logits.cat);
  assert.equal(row(outputs.logits.data as Float32Array, 1), logits.coffee);
  assert.equal(outputs.top.shape, [2, 3]);
  assert.equal(outputs.top.data, [...asClassStrings(expected.cat, 3), ...asClassStrings(expected.coffee, 3)]);
});

test('kserve REST client, JSON: a base64 image, every output by default, the id echoed', async () => {
  const { status, json, outputs } = await infer(
    kserveRequest([{ name: 'image', datatype: 'BYTES', shape: [1], data: [COFFEE.toString('base64')] }]),
  );
  assert.is(status, 200, JSON.stringify(json));
  assert.is(json.id, 'kserve-7f3c');
  assert.equal(outputs.logits.data, logits.coffee);
  assert.equal(outputs.top.data, asClassStrings(expected.coffee, 5));
  assert.is(expected.coffee.top[0].index, ESPRESSO);
});

test("tritonclient's classification extension on the FP32 output: logit:index:label, best first", async () => {
  const request = tritonRequest(
    [{ name: 'image', datatype: 'BYTES', shape: [1], binary: byteTensor(CAT) }],
    [{ name: 'logits', parameters: { classification: 2 } }],
  );
  const { status, outputs } = await infer(request);
  assert.is(status, 200);
  assert.equal(outputs.logits.shape, [1, 2]);
  assert.equal(
    outputs.logits.data,
    expected.cat.top.slice(0, 2).map(({ index, label }) => `${logits.cat[index].toFixed(6)}:${index}:${label}`),
  );
  assert.is(expected.cat.top[0].index, EGYPTIAN_CAT);
});

// ---- preprocessed tensors ----

const preprocessing = () => model.header.preprocessing;
/** The crop's RGB pixels, as the library resizes and crops (src/image/resize.ts). */
const pixels = (bytes: Uint8Array) =>
  resizeAndCenterCrop(decodeImage(bytes), preprocessing().resize, preprocessing().crop).data;

function toNchw<T extends Float32Array | Uint8Array>(hwc: T, size: number): T {
  const out = new (hwc.constructor as new (n: number) => T)(hwc.length);
  for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) out[c * size * size + p] = hwc[p * 3 + c];
  return out;
}

test('UINT8 pixels the library resized and cropped, NHWC binary and NCHW JSON (tritonclient): the same logits as the photo, bit for bit', async () => {
  const nhwc = tritonRequest(
    [{ name: 'input', datatype: 'UINT8', shape: [1, 224, 224, 3], binary: pixels(CAT) }],
    [{ name: 'logits', parameters: { binary_data: true } }],
  );
  const cat = await infer(nhwc);
  assert.is(cat.status, 200, JSON.stringify(cat.json));
  assert.equal(cat.outputs.logits.data, logits.cat);
  // tritonclient with binary_data=False on the input and the output: all JSON, no header length.
  const nchw = tritonRequest(
    [{ name: 'input', datatype: 'UINT8', shape: [1, 3, 224, 224], data: Array.from(toNchw(pixels(COFFEE), 224)) }],
    [{ name: 'logits', parameters: { binary_data: false } }],
  );
  assert.is(nchw.headers['Inference-Header-Content-Length'], undefined);
  const coffee = await infer(nchw);
  assert.is(coffee.status, 200, JSON.stringify(coffee.json));
  assert.equal(coffee.outputs.logits.data, logits.coffee);
});

/**
 * Triton's image_client.py: get_model_metadata, get_model_config, parse_model's checks, then one
 * batch of its preprocessed images (the dtype the metadata names, the config's format) under the
 * metadata's input name, the output asked for with class_count (binary, as tritonclient asks).
 */
test("Triton's image_client.py: metadata, config, then a batch in the config's input format with class_count", async () => {
  const metadata = await (await fetch(`${server.url}/v2/models/default`)).json();
  const config = await (await fetch(`${server.url}/v2/models/default/config`)).json();
  assert.is(metadata.inputs.length, 1, 'expecting 1 input');
  assert.is(metadata.outputs.length, 1, 'expecting 1 output');
  assert.is(config.input.length, 1, 'expecting 1 input in model configuration');
  const [input] = metadata.inputs;
  const [output] = metadata.outputs;
  assert.is(output.datatype, 'FP32');
  assert.ok(config.max_batch_size >= 2, 'batching');
  assert.ok(output.shape.slice(1).filter((d: number) => d > 1).length <= 1, 'the output is a vector');
  assert.is(input.shape.length, 4);
  assert.is(config.input[0].format, 'FORMAT_NHWC');
  const [, h, w, c] = input.shape;
  assert.equal([h, w, c], [224, 224, 3]);
  assert.is(input.datatype, 'UINT8', 'raw pixels: image_client scales none by default');
  const request = tritonRequest(
    [
      {
        name: input.name,
        datatype: input.datatype,
        shape: [2, h, w, c],
        binary: Buffer.concat([pixels(CAT), pixels(COFFEE)]),
      },
    ],
    [{ name: output.name, parameters: { binary_data: true, classification: 3 } }],
  );
  const { status, json, outputs } = await infer(request);
  assert.is(status, 200, JSON.stringify(json));
  assert.equal(outputs[output.name].shape, [2, 3]);
  const strings = (result: ClassifyResult, values: Float32Array) =>
    result.top.slice(0, 3).map(({ index, label }) => `${values[index].toFixed(6)}:${index}:${label}`);
  assert.equal(outputs[output.name].data, [
    ...strings(expected.cat, logits.cat),
    ...strings(expected.coffee, logits.coffee),
  ]);
});

test("FP32 values the library normalized (preprocessFloat), NCHW binary and NHWC JSON: the photo's classes", async () => {
  const cat = preprocessFloat(decodeImage(CAT), preprocessing());
  const coffee = preprocessFloat(decodeImage(COFFEE), preprocessing());
  const batch = new Float32Array(2 * cat.length);
  batch.set(toNchw(cat, 224));
  batch.set(toNchw(coffee, 224), cat.length);
  const binary = tritonRequest(
    [{ name: 'input', datatype: 'FP32', shape: [2, 3, 224, 224], binary: new Uint8Array(batch.buffer) }],
    [{ name: 'logits', parameters: { binary_data: true } }, { name: 'top' }],
  );
  const both = await infer(binary);
  assert.is(both.status, 200, JSON.stringify(both.json));
  const json = await infer(
    kserveRequest([{ name: 'input', datatype: 'FP32', shape: [1, 224, 224, 3], data: Array.from(cat) }]),
  );
  assert.is(json.status, 200);
  // The float path quantizes f32-rounded values where the photo's lookup table quantizes doubles:
  // an input level may differ where a value falls on a rounding boundary.
  const answers = [
    [row(both.outputs.logits.data as Float32Array, 0), logits.cat, expected.cat],
    [row(both.outputs.logits.data as Float32Array, 1), logits.coffee, expected.coffee],
    [json.outputs.logits.data as Float32Array, logits.cat, expected.cat],
  ] as const;
  for (const [actual, photo, classes] of answers) {
    assert.ok(cosine(actual, photo) > 0.9999, `cosine ${cosine(actual, photo)}`);
    const top = Array.from(actual.keys())
      .sort((a, b) => actual[b] - actual[a])
      .slice(0, 3);
    assert.equal(
      top,
      classes.top.slice(0, 3).map((p) => p.index),
    );
  }
  assert.equal(
    (both.outputs.top.data as string[]).filter((_, i) => i % 5 === 0).map((s) => Number(s.split(':')[1])),
    [EGYPTIAN_CAT, ESPRESSO],
  );
});

// ---- errors, as the clients read them ----

const BAD: {
  what: string;
  request: () => { body: Buffer; headers: Record<string, string> };
  path?: string;
  status: number;
  message: RegExp;
}[] = [
  {
    what: 'a tensor of the wrong shape',
    request: () =>
      tritonRequest(
        [{ name: 'input', datatype: 'FP32', shape: [1, 3, 32, 32], binary: new Uint8Array(4 * 3 * 32 * 32) }],
        [],
      ),
    status: 400,
    message:
      /input "input" has shape \[1,3,32,32\]; expected \[N, 3, 224, 224\] \(NCHW\) or \[N, 224, 224, 3\] \(NHWC\)/,
  },
  {
    what: 'data that does not fill its shape',
    request: () => kserveRequest([{ name: 'input', datatype: 'UINT8', shape: [1, 224, 224, 3], data: [1, 2, 3] }]),
    status: 400,
    message: /input "input" has 3 elements; its shape \[1,224,224,3\] has 150528/,
  },
  {
    what: 'an unknown model',
    request: () => kserveRequest([{ name: 'image', datatype: 'BYTES', shape: [1], data: [CAT.toString('base64')] }]),
    path: '/v2/models/resnet152/infer',
    status: 404,
    message: /unknown model "resnet152"/,
  },
  {
    what: 'an unsupported datatype',
    request: () => kserveRequest([{ name: 'input', datatype: 'INT64', shape: [1], data: [1] }]),
    status: 400,
    message: /input "input" is INT64: send BYTES/,
  },
  {
    what: 'an unknown output',
    request: () =>
      tritonRequest(
        [{ name: 'image', datatype: 'BYTES', shape: [1], binary: byteTensor(CAT) }],
        [{ name: 'probabilities' }],
      ),
    status: 400,
    message: /unknown output "probabilities"/,
  },
  {
    what: 'a classification count of 0',
    request: () =>
      tritonRequest(
        [{ name: 'image', datatype: 'BYTES', shape: [1], binary: byteTensor(CAT) }],
        [{ name: 'top', parameters: { classification: 0 } }],
      ),
    status: 400,
    message: /parameters.classification must be an integer from 1 to 1000, got 0/,
  },
  {
    what: 'binary data shorter than binary_data_size',
    request: () => {
      const { body, headers } = tritonRequest(
        [{ name: 'image', datatype: 'BYTES', shape: [1], binary: byteTensor(CAT) }],
        [],
      );
      return { body: body.subarray(0, body.length - 10), headers };
    },
    status: 400,
    message: /binary_data_size \d+ runs past the end of the body/,
  },
  {
    what: 'a body that is not JSON',
    request: () => ({ body: Buffer.from('{"inputs": ['), headers: { 'content-type': 'application/json' } }),
    status: 400,
    message: /not JSON/,
  },
  {
    what: 'bytes that are no image',
    request: () =>
      tritonRequest(
        [{ name: 'image', datatype: 'BYTES', shape: [1], binary: byteTensor(Buffer.from('not an image at all')) }],
        [],
      ),
    status: 422,
    message: /./,
  },
  {
    what: 'more images than --max-batch',
    request: () =>
      tritonRequest(
        [{ name: 'image', datatype: 'BYTES', shape: [5], binary: byteTensor(CAT, CAT, CAT, CAT, CAT) }],
        [],
      ),
    status: 413,
    message: /at most 4 at once \(--max-batch\)/,
  },
];

for (const { what, request, path, status, message } of BAD) {
  test(`refused with {"error": message}: ${what}`, async () => {
    const answer = await infer(request(), path);
    assert.is(answer.status, status);
    assert.equal(Object.keys(answer.json), ['error']);
    assert.match(answer.json.error, message);
  });
}

test('after every refusal the server answers a photo correctly; /v1 is unchanged', async () => {
  const { status, outputs } = await infer(
    tritonRequest(
      [{ name: 'image', datatype: 'BYTES', shape: [1], binary: byteTensor(CAT) }],
      [{ name: 'logits', parameters: { binary_data: true } }],
    ),
  );
  assert.is(status, 200);
  assert.equal(outputs.logits.data, logits.cat);
  const v1 = await fetch(`${server.url}/v1/classify`, {
    method: 'POST',
    body: new Uint8Array(CAT),
    headers: { 'content-type': 'image/png' },
  });
  const body = await v1.json();
  assert.equal(Object.keys(body), ['top', 'ms']);
  assert.equal(body.top, expected.cat.top);
  const notJson = await fetch(`${server.url}/v1/classify`, {
    method: 'POST',
    body: '{}',
    headers: { 'content-type': 'application/json' },
  });
  assert.is(notJson.status, 415);
  assert.is((await notJson.json()).error.kind, 'unsupported-media-type');
});

test('--model-name names the model in /v2', async () => {
  const named = await startServer({ modelPath: MODEL, modelName: 'resnet50', workers: 1, port: 0 });
  try {
    assert.is((await fetch(`${named.url}/v2/models/resnet50`)).status, 200);
    assert.is((await fetch(`${named.url}/v2/models/default`)).status, 404);
  } finally {
    await named.close();
  }
});

test.run();
