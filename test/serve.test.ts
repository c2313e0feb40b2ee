// resnet-wasm serve under bad input and abuse: the server in-process on a free port (a child process
// for SIGTERM), the default ResNet-50 and the test photos. Every bad request must get a 4xx JSON
// error with its kind, and the server must answer a photo correctly afterwards, with every worker.

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32 } from '../src/format/crc32.ts';
import { loadModel } from '../src/runtime/model.ts';
import type { ClassifyResult } from '../src/serve/protocol.ts';
import { type ServeHandle, startServer } from '../src/serve/server.ts';
import { classifyCli } from './helpers/classify-cli.ts';
import { hangUpAfter, rawExchange, sendUntilAnswered, stallAfter } from './helpers/serve-requests.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = join(ROOT, 'weights', 'default.rnw');
const PHOTOS = join(ROOT, 'test', 'photos');
const CAT = readFileSync(join(PHOTOS, 'chelsea.png'));
const COFFEE = readFileSync(join(PHOTOS, 'coffee.png'));
const ROCKET = readFileSync(join(PHOTOS, 'rocket.jpg'));
const TABBY = 281,
  EGYPTIAN_CAT = 285,
  ESPRESSO = 967;
const WORKERS = 2;
const LIMITS = { queueSize: 2, bodyTimeoutMs: 1500, maxBodyBytes: 2 * 2 ** 20, maxBatch: 3 };

let server: ServeHandle;

test.before(async () => {
  server = await startServer({ modelPath: MODEL, workers: WORKERS, port: 0, ...LIMITS });
});

test.after(async () => {
  await server?.close();
});

async function post(path: string, body: BodyInit | undefined, headers: Record<string, string> = {}) {
  const response = await fetch(server.url + path, { method: 'POST', body, headers });
  return { status: response.status, headers: response.headers, json: (await response.json()) as any };
}

const postImage = (bytes: Uint8Array, type = 'image/png', query = '') =>
  post(`/v1/classify${query}`, new Uint8Array(bytes), { 'content-type': type });

function form(...files: [string, Uint8Array][]): FormData {
  const data = new FormData();
  for (const [name, bytes] of files) data.append('image', new Blob([new Uint8Array(bytes)]), name);
  return data;
}

function sameClasses(actual: ClassifyResult, expected: ClassifyResult): void {
  assert.equal(actual.top, expected.top);
  assert.type(actual.ms, 'number');
}

function assertError(answer: { status: number; json: any }, status: number, kind: string): void {
  assert.is(answer.status, status, JSON.stringify(answer.json));
  assert.is(answer.json.error.kind, kind);
  assert.type(answer.json.error.message, 'string');
  assert.ok(answer.json.error.message.length > 10, answer.json.error.message);
}

/** The server still answers a photo correctly, with every worker in place. */
async function assertHealthy(): Promise<void> {
  const { status, json } = await postImage(CAT);
  assert.is(status, 200, JSON.stringify(json));
  assert.ok([TABBY, EGYPTIAN_CAT].includes(json.top[0].index), json.top[0].label);
  const ready = await (await fetch(`${server.url}/readyz`)).json();
  assert.is(ready.workers, WORKERS);
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.split(' ')[1]);
}

test('health, readiness and the same answers as classify --json: raw body, multipart, batch', async () => {
  assert.equal(await (await fetch(`${server.url}/healthz`)).json(), { status: 'ok' });
  assert.equal(await (await fetch(`${server.url}/readyz`)).json(), { status: 'ready', workers: WORKERS, queue: 0 });
  const [cat, coffee] = classifyCli('chelsea.png', 'coffee.png');
  assert.ok([TABBY, EGYPTIAN_CAT].includes(cat.top[0].index));
  assert.is(coffee.top[0].index, ESPRESSO);
  sameClasses((await postImage(CAT)).json, cat);
  sameClasses((await post('/v1/classify', form(['coffee.png', COFFEE]))).json, coffee);
  const top2 = (await postImage(CAT, 'application/octet-stream', '?top=2')).json;
  assert.equal(top2.top, cat.top.slice(0, 2));
  const batch = await post(
    '/v1/classify/batch',
    form(['chelsea.png', CAT], ['coffee.png', COFFEE], ['cut.jpg', ROCKET.subarray(0, 5000)]),
  );
  assert.is(batch.status, 200);
  sameClasses(batch.json.results[0], cat);
  sameClasses(batch.json.results[1], coffee);
  assert.is(batch.json.results[2].error.kind, 'bad-image');
});

test('a truncated JPEG, bytes that are no image, an SVG are a 422 bad-image', async () => {
  for (const cut of [ROCKET.length >> 1, 600, 3])
    assertError(await postImage(ROCKET.subarray(0, cut), 'image/jpeg'), 422, 'bad-image');
  assertError(await postImage(new TextEncoder().encode('GIF? no, a text file'), 'image/jpeg'), 422, 'bad-image');
  const svg = new TextEncoder().encode(
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>',
  );
  const refused = await postImage(svg, 'image/svg+xml');
  assertError(refused, 422, 'bad-image');
  assert.match(refused.json.error.message, /SVG/);
  await assertHealthy();
});

test('decompression bombs (headers announcing 50000x50000) are refused before decoding', async () => {
  const png = pngAnnouncing(50000, 50000);
  const answer = await postImage(png);
  assertError(answer, 413, 'too-many-pixels');
  assert.match(answer.json.error.message, /50000x50000/);
  assertError(await postImage(jpegAnnouncing(ROCKET, 50000, 50000), 'image/jpeg'), 413, 'too-many-pixels');
  assertError(await post('/v1/classify', form(['bomb.png', png])), 413, 'too-many-pixels');
  await assertHealthy();
});

test('a wrong content type is a 415; GET on a POST route and unknown paths are 404s', async () => {
  assertError(await post('/v1/classify', 'hello', { 'content-type': 'text/plain' }), 415, 'unsupported-media-type');
  assertError(
    await post('/v1/classify', JSON.stringify({ image: 'x' }), { 'content-type': 'application/json' }),
    415,
    'unsupported-media-type',
  );
  const get = await fetch(`${server.url}/v1/classify`);
  assert.is(get.status, 404);
  assert.is((await get.json()).error.kind, 'not-found');
  assertError(await postImage(CAT, 'image/png', '?top=0'), 400, 'bad-request');
  await assertHealthy();
});

test('a bad top gets the same message from serve, the library and the command line', async () => {
  const library = await loadModel(MODEL);
  for (const [query, value, cliText] of [
    ['0', 0, '0'],
    ['x', 'x', 'x'],
    ['2.5', 2.5, '2.5'],
  ] as const) {
    const api = await library.classify(CAT, { top: value as number }).then(
      () => 'accepted',
      (e: Error) => e.message,
    );
    const served = await postImage(CAT, 'image/png', `?top=${query}`);
    assertError(served, 400, 'bad-request');
    assert.is(served.json.error.message, api);
    const cli = spawnSync(
      process.execPath,
      [join(ROOT, 'bin', 'resnet-wasm.js'), 'classify', join(ROOT, 'test', 'photos', 'chelsea.png'), '--top', cliText],
      { encoding: 'utf8' },
    );
    assert.is(cli.status, 2);
    assert.is(cli.stderr, `resnet-wasm: ${api}\n`);
  }
  library.dispose();
});

test('a malformed HTTP request, or headers over the limit, is answered with a JSON error too', async () => {
  const garbage = await rawExchange(server.url, 'NOT HTTP AT ALL\r\n\r\n');
  assert.match(garbage, /^HTTP\/1.1 400 /);
  assert.is(JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4)).error.kind, 'bad-request');
  const huge = await rawExchange(
    server.url,
    `GET /healthz HTTP/1.1\r\nhost: x\r\nx-filler: ${'a'.repeat(20000)}\r\n\r\n`,
  );
  assert.match(huge, /^HTTP\/1.1 431 /);
  assert.match(huge, /"kind":"headers-too-large"/);
  await assertHealthy();
});

test('an empty body, or a form without a file, is a 400 empty-body', async () => {
  assertError(await post('/v1/classify', undefined, { 'content-type': 'image/jpeg' }), 400, 'empty-body');
  assertError(await post('/v1/classify', new Uint8Array(0), { 'content-type': 'image/png' }), 400, 'empty-body');
  assertError(await post('/v1/classify', new FormData()), 400, 'empty-body');
  assertError(await post('/v1/classify', form(['empty.png', new Uint8Array(0)])), 400, 'empty-body');
  await assertHealthy();
});

test('a 100 MB body is a 413 before the server has read it, with or without content-length', async () => {
  const total = 100 * 2 ** 20;
  const announced = await sendUntilAnswered(
    `${server.url}/v1/classify`,
    { 'content-type': 'image/jpeg', 'content-length': total },
    total,
  );
  assertError(announced, 413, 'body-too-large');
  assert.ok(announced.written < total, `the client wrote all ${announced.written} bytes before the answer`);
  const chunked = await sendUntilAnswered(`${server.url}/v1/classify`, { 'content-type': 'image/jpeg' }, total);
  assertError(chunked, 413, 'body-too-large');
  assert.ok(chunked.written < total);
  const boundary = 'big';
  const multipart = await sendUntilAnswered(
    `${server.url}/v1/classify`,
    { 'content-type': `multipart/form-data; boundary=${boundary}` },
    total,
  );
  assertError(multipart, 413, 'body-too-large');
  assert.ok(multipart.written < total);
  await assertHealthy();
});

test('a slow upload that never finishes is a 408 after the body timeout, raw or multipart', async () => {
  const raw = await stallAfter(
    `${server.url}/v1/classify`,
    { 'content-type': 'image/png', 'content-length': CAT.length },
    CAT.subarray(0, 1000),
  );
  assertError(raw, 408, 'body-timeout');
  const head = `--b\r\ncontent-disposition: form-data; name="image"; filename="cat.png"\r\ncontent-type: image/png\r\n\r\n`;
  const partial = Buffer.concat([Buffer.from(head), CAT.subarray(0, 1000)]);
  const multipart = await stallAfter(
    `${server.url}/v1/classify`,
    { 'content-type': 'multipart/form-data; boundary=b', 'content-length': partial.length + CAT.length },
    partial,
  );
  assertError(multipart, 408, 'body-timeout');
  await assertHealthy();
});

test('malformed multipart is a 400 bad-multipart', async () => {
  const type = { 'content-type': 'multipart/form-data; boundary=b' };
  assertError(
    await post('/v1/classify', 'no boundary here', { 'content-type': 'multipart/form-data' }),
    400,
    'bad-multipart',
  );
  const cut = `--b\r\ncontent-disposition: form-data; name="image"; filename="cat.png"\r\n\r\n${'x'.repeat(100)}`;
  assertError(await post('/v1/classify', cut, type), 400, 'bad-multipart');
  assertError(await post('/v1/classify', 'garbage without any boundary', type), 400, 'bad-multipart');
  // busboy skips a part whose headers it cannot read, which leaves a form without a file.
  const badHeader = `--b\r\n${'no-colon-header'.repeat(10)}\r\n\r\ndata\r\n--b--\r\n`;
  assertError(await post('/v1/classify', badHeader, type), 400, 'empty-body');
  assertError(await post('/v1/classify', form(['a.png', CAT], ['b.png', CAT])), 413, 'too-many-files');
  await assertHealthy();
});

test('clients that hang up mid-body or while their image waits cost nothing lasting', async () => {
  const before = await metric('resnet_wasm_errors_total{kind="client-closed"}');
  await hangUpAfter(
    `${server.url}/v1/classify`,
    { 'content-type': 'image/png', 'content-length': CAT.length },
    CAT.subarray(0, 5000),
  );
  const whole = { 'content-type': 'image/png', 'content-length': CAT.length };
  await Promise.all(Array.from({ length: 4 }, () => hangUpAfter(`${server.url}/v1/classify`, whole, CAT, 20)));
  // The server counts a hang-up when it notices it: wait for the count to move.
  while ((await metric('resnet_wasm_errors_total{kind="client-closed"}')) <= before) await sleep(20);
  await assertHealthy();
});

test('a full queue answers 429 with Retry-After; the others are answered correctly', async () => {
  const answers = await Promise.all(Array.from({ length: 16 }, () => postImage(CAT)));
  const refused = answers.filter((a) => a.status === 429);
  const served = answers.filter((a) => a.status === 200);
  assert.ok(refused.length > 0, 'no request was refused');
  assert.is(refused.length + served.length, answers.length);
  for (const answer of refused) {
    assertError(answer, 429, 'queue-full');
    assert.ok(Number(answer.headers.get('retry-after')) >= 1);
  }
  for (const answer of served) assert.ok([TABBY, EGYPTIAN_CAT].includes(answer.json.top[0].index));
  assert.ok((await metric('resnet_wasm_errors_total{kind="queue-full"}')) >= refused.length);
  await assertHealthy();
});

test('a worker that dies fails only its own request and is replaced', async () => {
  const inFlight = [postImage(CAT), postImage(COFFEE)];
  while ((await metric('resnet_wasm_workers_busy')) < WORKERS) await sleep(5);
  await server.pool.terminateWorker(0);
  const answers = await Promise.all(inFlight);
  const crashed = answers.filter((a) => a.status === 500);
  assert.is(crashed.length, 1, JSON.stringify(answers.map((a) => a.json)));
  assertError(crashed[0], 500, 'worker-crashed');
  assert.is(answers.filter((a) => a.status === 200).length, 1);
  while (server.pool.readyWorkers < WORKERS) await sleep(20);
  assert.is(await metric('resnet_wasm_worker_restarts_total'), 1);
  await assertHealthy();
});

test('metrics: requests by route and status, latency histogram, queue depth, errors by kind', async () => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(text, /resnet_wasm_http_requests_total\{route="\/v1\/classify",status="200"\} \d+/);
  assert.match(text, /resnet_wasm_http_request_duration_seconds_bucket\{le="0.5",route="\/v1\/classify"\} \d+/);
  assert.match(text, /resnet_wasm_inference_duration_seconds_count \d+/);
  assert.match(text, /resnet_wasm_queue_depth 0/);
  for (const kind of [
    'unsupported-media-type',
    'empty-body',
    'body-too-large',
    'body-timeout',
    'bad-multipart',
    'bad-image',
    'too-many-pixels',
    'worker-crashed',
  ]) {
    assert.ok((await metric(`resnet_wasm_errors_total{kind="${kind}"}`)) >= 1, kind);
  }
  assert.match(text, /process_resident_memory_bytes \d+/);
});

test('a request that cannot be answered within --timeout is a 504', async () => {
  const hasty = await startServer({ modelPath: MODEL, workers: 1, port: 0, timeoutMs: 1 });
  try {
    const answer = await fetch(`${hasty.url}/v1/classify`, {
      method: 'POST',
      body: CAT,
      headers: { 'content-type': 'image/png' },
    });
    assert.is(answer.status, 504);
    assert.is((await answer.json()).error.kind, 'timeout');
  } finally {
    await hasty.close();
  }
});

test('--max-connections: a connection past it is closed at once; idle ones are closed after the idle timeout, and the slots serve again', async () => {
  const limits = { maxConnections: 3, timeoutMs: 1000, bodyTimeoutMs: 400 };
  const small = await startServer({ modelPath: MODEL, workers: 1, port: 0, ...limits });
  const { port } = new URL(small.url);
  const open = () =>
    new Promise<{ socket: Socket; closed: Promise<number> }>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      const start = Date.now();
      const closed = new Promise<number>((done) => socket.on('close', () => done(Date.now() - start)));
      socket.on('error', () => {});
      socket.once('connect', () => resolve({ socket, closed }));
      socket.once('error', reject);
    });
  try {
    const idle = await Promise.all([open(), open(), open()]);
    const fourth = await fetch(`${small.url}/healthz`).then(
      (r) => `served: ${r.status}`,
      (error: Error) => `refused: ${error.message}`,
    );
    assert.match(fourth, /^refused/);
    // Idle for 2 x 400 + 1000 ms, then closed by the server (not before; how much later depends on the machine's load).
    for (const ms of await Promise.all(idle.map((c) => c.closed)))
      assert.ok(ms >= 1500, `an idle connection closed after ${ms} ms`);
    const text = await (await fetch(`${small.url}/metrics`)).text();
    assert.match(text, /resnet_wasm_errors_total\{kind="too-many-connections"\} 1/);
    // Headers that never end count as silence too.
    const stalled = await open();
    stalled.socket.write('POST /v1/classify HTTP/1.1\r\nhost: x\r\n');
    await stalled.closed;
    // The slots serve again (a classification here could outlast this server's 1 s timeout on a busy machine).
    assert.equal(await (await fetch(`${small.url}/healthz`)).json(), { status: 'ok' });
  } finally {
    await small.close();
  }
});

test('SIGTERM: the request in flight is answered, new ones are refused, the process exits 0', async () => {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'resnet-wasm.js'), 'serve', '--port', '0', '--workers', '1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '',
    stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    // After the listener above, so `stdout` already holds the chunk.
    const onData = () => {
      const listening = /listening on (\S+)/.exec(stdout);
      if (listening) resolve(listening[1]);
    };
    child.stdout.on('data', onData);
    exited.then(() => reject(new Error(`the server exited before listening: ${stderr}`)));
  });
  const inFlight = fetch(`${url}/v1/classify/batch`, {
    method: 'POST',
    body: form(['a.png', CAT], ['b.png', COFFEE], ['c.png', CAT]),
  });
  const busy = async () =>
    / 1$/m.test(
      (await (await fetch(`${url}/metrics`)).text())
        .split('\n')
        .find((l) => l.startsWith('resnet_wasm_workers_busy ')) ?? '',
    );
  while (!(await busy())) await sleep(10);
  child.kill('SIGTERM');
  const answer = await inFlight;
  assert.is(answer.status, 200);
  const { results } = await answer.json();
  assert.ok([TABBY, EGYPTIAN_CAT].includes(results[0].top[0].index));
  assert.is(results[1].top[0].index, ESPRESSO);
  assert.equal(results[2].top, results[0].top);
  assert.is(await exited, 0, stderr);
  await fetch(`${url}/healthz`).then(
    () => assert.unreachable('a stopped server answered'),
    (error) => assert.ok(error instanceof TypeError),
  );
  assert.match(stdout, /SIGTERM/);
});

/** A PNG signature and IHDR chunk (CRC included) announcing width x height, and a first scrap of IDAT. */
function pngAnnouncing(width: number, height: number): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(8 + data.length + 4);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x63, 0, 0]))]);
}

/** A real JPEG whose frame header (SOF0 or SOF2) is rewritten to announce width x height. */
function jpegAnnouncing(jpeg: Uint8Array, width: number, height: number): Uint8Array {
  const out = Buffer.from(jpeg);
  for (let pos = 2; pos + 9 < out.length; pos += 2 + out.readUInt16BE(pos + 2)) {
    if (out[pos + 1] === 0xc0 || out[pos + 1] === 0xc2) {
      out.writeUInt16BE(height, pos + 5);
      out.writeUInt16BE(width, pos + 7);
      return out;
    }
  }
  throw new Error('no SOF0/SOF2 marker in the test JPEG');
}

test.run();
