// resnet-wasm mqtt against a real Mosquitto (test/helpers/mosquitto.ts), the default ResNet-50 and the
// cat photo: answers checked against Model.classify for the same bytes, bad payloads, MQTT 5
// requests, two gateways sharing a group, newest-frame-wins, a broker restart, kill -9, SIGTERM,
// TLS with a password. Every wait is for an event (a message, an exit); the deadlines only turn a
// hang into a failure that says what did not come.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MqttOptionError } from '../src/mqtt/errors.ts';
import { type MqttServiceOptions, resolveOptions } from '../src/mqtt/options.ts';
import { FrameScheduler } from '../src/mqtt/scheduler.ts';
import { type MqttService, mqttService } from '../src/mqtt/service.ts';
import { OptionError } from '../src/options/validate.ts';
import { loadModel } from '../src/runtime/model.ts';
import type { Prediction } from '../src/runtime/topk.ts';
import { serveSizing } from '../src/serve/sizing.ts';
import { tinyModelFile } from './helpers/model-files.ts';
import {
  type Broker,
  MOSQUITTO,
  MOSQUITTO_PASSWD,
  makeCertificates,
  makePasswordFile,
  startMosquitto,
} from './helpers/mosquitto.ts';
import { mulberry32 } from './helpers/random.ts';
import { skipBecause } from './helpers/skip.ts';
import { startProxy } from './helpers/tcp-proxy.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL = join(ROOT, 'weights', 'default.rnw');
const CAT = readFileSync(join(ROOT, 'test', 'photos', 'chelsea.png'));
const ROCKET = readFileSync(join(ROOT, 'test', 'photos', 'rocket.jpg'));
const COFFEE = readFileSync(join(ROOT, 'test', 'photos', 'coffee.png'));
/** Between the cat (240 KB) and the espresso (467 KB): the espresso is the oversized payload. */
const MAX_BYTES = 300_000;
/** Long enough for a loaded 2-core machine; reaching it fails the test, naming what did not come. */
const DEADLINE_MS = 90_000;

const skipReason =
  MOSQUITTO === null || MOSQUITTO_PASSWD === null
    ? 'mosquitto and mosquitto_passwd are not installed (apt-get install mosquitto mosquitto-clients)'
    : null;

/** Registered either way: skipped, and said so, where there is no Mosquitto. */
function brokerTest(name: string, body: () => Promise<void>): void {
  if (skipReason === null) test(name, body);
  else skipBecause(name, skipReason);
}

interface Received {
  topic: string;
  text: string;
  json: any;
  packet: IPublishPacket;
}

/** A test's own MQTT 5 client: keeps every message it receives and resolves waits on arrival. */
class Listener {
  readonly messages: Received[] = [];
  private waiters: (() => void)[] = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      const text = payload.toString();
      this.messages.push({ topic, text, json: parseJson(text), packet });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async open(url: string, topics: string[], options: IClientOptions = {}): Promise<Listener> {
    const client = await mqtt.connectAsync(url, { protocolVersion: 5, ...options });
    const listener = new Listener(client);
    await client.subscribeAsync(topics, { qos: 1 });
    return listener;
  }

  /** The first message from index `from` on that matches; waits for it. */
  async next(match: (m: Received) => boolean, what: string, from = 0): Promise<Received> {
    await this.until(() => this.messages.slice(from).some(match), what);
    return this.messages.slice(from).find(match)!;
  }

  /** Resolves once `check` holds, checking now and on each message. */
  until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
    return deadline(
      (async () => {
        for (;;) {
          const seen = this.messages.length;
          if (await check()) return;
          // A message that came while `check` ran is not waited for.
          if (this.messages.length === seen) await new Promise<void>((resolve) => this.waiters.push(resolve));
        }
      })(),
      what,
    );
  }

  publish(
    topic: string,
    payload: Uint8Array | string,
    properties: IPublishPacket['properties'] = {},
  ): Promise<unknown> {
    return this.client.publishAsync(topic, Buffer.from(payload), { qos: 1, properties });
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function deadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const expired = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${DEADLINE_MS} ms`)), DEADLINE_MS)),
  );
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

const frame = (id: string) => ({ userProperties: { frame: id } });
const isResult = (id: string) => (m: Received) => m.json?.frame === id && m.json.top !== undefined;
const isStatus = (statusTopic: string, text: string) => (m: Received) => m.topic === statusTopic && m.text === text;

/** A counter's value from a gateway's metrics (text format, as Prometheus reads it). */
async function counter(service: MqttService, name: string): Promise<number> {
  const line = (await service.metrics.text()).split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `no metric ${name}`);
  return Number(line.split(' ')[1]);
}

async function frameCounts(service: MqttService): Promise<{ answered: number; dropped: number }> {
  return {
    answered: await counter(service, 'resnet_wasm_mqtt_frames_answered_total'),
    dropped: await counter(service, 'resnet_wasm_mqtt_frames_dropped_total'),
  };
}

function gateway(broker: Broker, options: Partial<MqttServiceOptions> & { clientId: string }): Promise<MqttService> {
  return mqttService({ broker: broker.url, modelPath: MODEL, ...options });
}

let broker: Broker;
let main: MqttService;
let listener: Listener;
let oracle: Prediction[];

test.before(async () => {
  if (skipReason !== null) return;
  broker = await startMosquitto();
  const model = await loadModel(MODEL, { threads: 1 });
  oracle = (await model.classify(CAT, { top: 5 })).top;
  listener = await Listener.open(broker.url, ['resnet-wasm/#', 'homeassistant/#', 'replies/#']);
  // One worker, as the burst test counts frames; its threads are serve's auto (the cores, at most 4).
  main = await gateway(broker, {
    clientId: 'gw-main',
    maxBytes: MAX_BYTES,
    homeassistant: true,
    metricsPort: 0,
    workers: 1,
  });
  await listener.next(isStatus(main.statusTopic, 'online'), 'online status of gw-main');
});

test.after(async () => {
  await main?.stop();
  await listener?.close();
  await broker?.close();
});

test('the scheduler keeps the newest frame per camera and serves the cameras in turn', () => {
  const scheduler = new FrameScheduler<string>();
  assert.is(scheduler.offer('a', 'a1'), undefined);
  assert.is(scheduler.offer('a', 'a2'), 'a1');
  assert.is(scheduler.offer('b', 'b1'), undefined);
  assert.is(scheduler.offer('a', 'a3'), 'a2');
  assert.is(scheduler.take(), 'a3');
  assert.is(scheduler.offer('a', 'a4'), undefined);
  assert.is(scheduler.take(), 'b1');
  assert.is(scheduler.take(), 'a4');
  assert.is(scheduler.take(), undefined);
  assert.is(scheduler.size, 0);
});

test('options that cannot work are refused before any worker starts, naming the option', async () => {
  const cases: [Partial<MqttServiceOptions>, RegExp][] = [
    [{ broker: 'http://127.0.0.1:1883' }, /broker URL must start with mqtt:\/\//],
    [{ broker: 'not a url' }, /broker must be a URL/],
    [{ images: 'cameras/+porch/image' }, /image topic must be an MQTT topic filter/],
    [{ images: '$share/g/cameras/+/image' }, /use --group/],
    [{ result: 'out/{cam}/result' }, /result topic .* \{camera\} and \{client\}/],
    [{ error: 'out/+/error' }, /error topic/],
    [{ group: 'a/b' }, /group must be a name/],
    [{ qos: 3 as 1 }, /QoS must be 0, 1 or 2/],
  ];
  for (const [options, message] of cases) {
    try {
      await mqttService({ broker: 'mqtt://127.0.0.1:1', modelPath: MODEL, ...options });
      assert.unreachable(JSON.stringify(options));
    } catch (error) {
      assert.instance(error, MqttOptionError);
      assert.match((error as Error).message, message);
    }
  }
});

test("workers and threads are serve's: its sizing within the cores, both honoured when both are given, bad values refused", () => {
  const cores = availableParallelism();
  const sized = (options: Partial<MqttServiceOptions>) => {
    const { workers, threads } = resolveOptions({ broker: 'mqtt://127.0.0.1:1', modelPath: MODEL, ...options });
    return { workers, threads };
  };
  assert.equal(sized({}), { workers: cores, threads: 1 }, 'one single-threaded worker per core by default');
  assert.equal(sized({ threads: 1 }), { workers: cores, threads: 1 });
  assert.equal(sized({ workers: 1 }), { workers: 1, threads: Math.min(4, cores) });
  assert.equal(sized({ threads: 2 }), serveSizing(undefined, 2, cores));
  assert.equal(sized({ workers: 3, threads: 'auto' }), serveSizing(3, 'auto', cores));
  assert.equal(sized({ workers: 2 * cores, threads: 3 }), { workers: 2 * cores, threads: 3 }, 'both given');
  for (const [options, message] of [
    [{ workers: 0 }, /workers must be a positive integer, got 0/],
    [{ workers: 1.5 }, /workers must be a positive integer, got 1.5/],
    [{ threads: 0 }, /threads must be a positive integer or "auto", got 0/],
    [{ threads: 'many' as 'auto' }, /threads must be a positive integer or "auto", got "many"/],
  ] as const) {
    assert.throws(
      () => sized(options),
      (error: Error) => error instanceof OptionError && message.test(error.message),
    );
  }
});

brokerTest("the main gateway runs one worker on serve's auto threads and answers as Model.classify", async () => {
  assert.equal(main.sizing, serveSizing(1, 'auto', availableParallelism()));
  await listener.publish('cameras/threads/image', CAT, frame('threads-0'));
  assert.equal((await listener.next(isResult('threads-0'), 'the cat through a threaded worker')).json.top, oracle);
});

test('resnet-wasm/mqtt resolves through the exports; classifying with resnet-wasm never loads MQTT.js', () => {
  // In a child whose resolver refuses "mqtt": the built package, imported by its own name.
  const refuseMqtt = `data:text/javascript,export async function resolve(specifier, context, next) { if (specifier === 'mqtt') throw new Error('MQTT.js was loaded'); return next(specifier, context); }`;
  const script = [
    `import { register } from 'node:module';`,
    `register(${JSON.stringify(refuseMqtt)});`,
    `const { loadModel } = await import('resnet-wasm');`,
    `const model = await loadModel(${JSON.stringify(MODEL)});`,
    `const { top } = await model.classify(${JSON.stringify(join(ROOT, 'test', 'photos', 'chelsea.png'))});`,
    `const { mqttService } = await import('resnet-wasm/mqtt');`,
    `console.log(JSON.stringify({ label: top[0].label, service: typeof mqttService }));`,
  ].join('\n');
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  assert.is(run.status, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout), { label: 'Egyptian cat', service: 'function' });
});

brokerTest(
  "the cat photo as bytes is answered with Model.classify's top-5; Home Assistant discovery names its sensor",
  async () => {
    await listener.publish('cameras/porch/image', CAT, frame('cat-1'));
    const { topic, json } = await listener.next(isResult('cat-1'), 'result for cat-1');
    assert.is(topic, 'resnet-wasm/porch/result');
    assert.equal(json.top, oracle);
    assert.is(json.top[0].label, 'Egyptian cat');
    assert.is(json.camera, 'porch');
    assert.is(json.model, 'default');
    assert.is(json.gateway, 'gw-main');
    assert.ok(json.ms >= json.inferenceMs && json.inferenceMs > 0, JSON.stringify(json));
    assert.ok(Date.parse(json.receivedAt) > 0);
    // Without a frame property or correlation data, a frame is named by its bytes' hash.
    await listener.publish('cameras/porch/image', CAT);
    const hash = createHash('sha256').update(CAT).digest('hex').slice(0, 12);
    assert.equal((await listener.next(isResult(hash), 'result for the unnamed frame')).json.top, oracle);
    const late = await Listener.open(broker.url, ['homeassistant/sensor/gw-main_porch/config']);
    const discovery = await late.next((m) => m.packet.retain, 'the retained discovery config');
    await late.close();
    assert.is(discovery.json.state_topic, 'resnet-wasm/porch/result');
    assert.is(discovery.json.availability_topic, main.statusTopic);
    assert.is(discovery.json.value_template, '{{ value_json.top[0].label }}');
    // The metrics port serves the same registry.
    const text = await (await fetch(main.metricsUrl!)).text();
    assert.match(text, /resnet_wasm_mqtt_frames_answered_total \d+/);
  },
);

brokerTest(
  'a model file other than the default (a built ResNet, its own labels) answers as Model.classify does; --retain keeps the last result',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-mqtt-'));
    const path = join(dir, 'tiny.rnw');
    writeFileSync(path, tinyModelFile());
    const tiny = await gateway(broker, {
      clientId: 'gw-tiny',
      modelPath: path,
      top: 3,
      images: 'tiny/+/image',
      result: 'resnet-wasm/tiny/{camera}',
      retain: true,
    });
    try {
      const expected = (await (await loadModel(path, { threads: 1 })).classify(CAT, { top: 3 })).top;
      await listener.publish('tiny/door/image', CAT, frame('tiny-1'));
      const { topic, json } = await listener.next(isResult('tiny-1'), 'result of the tiny model');
      assert.is(topic, 'resnet-wasm/tiny/door');
      assert.is(json.model, 'tiny');
      assert.equal(json.top, expected);
      assert.match(json.top[0].label, /^label \d$/);
      const late = await Listener.open(broker.url, ['resnet-wasm/tiny/door']);
      const retained = await late.next((m) => m.packet.retain, 'the retained last result');
      await late.close();
      assert.is(retained.json.frame, 'tiny-1');
    } finally {
      await tiny.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

brokerTest('an MQTT 5 request is answered on its Response Topic with its Correlation Data', async () => {
  const correlation = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00]);
  await listener.publish('cameras/kitchen/image', CAT, {
    responseTopic: 'replies/client-7',
    correlationData: correlation,
  });
  const reply = await listener.next((m) => m.topic === 'replies/client-7', 'reply on the response topic');
  assert.equal(reply.packet.properties?.correlationData, correlation);
  assert.is(reply.json.frame, 'deadbeef00');
  assert.equal(reply.json.top, oracle);
  assert.ok(
    !listener.messages.some((m) => m.topic === 'resnet-wasm/kitchen/result'),
    'a request is answered only on its response topic',
  );
});

brokerTest('bad payloads each get a typed error on the error topic, and the next good frame is answered', async () => {
  const lying = Buffer.from(CAT);
  lying.writeUInt32BE(65535, 16); // the PNG's IHDR width and height
  lying.writeUInt32BE(65535, 20);
  const random = mulberry32(15);
  const cases: [string, Uint8Array, string][] = [
    ['random', Uint8Array.from({ length: 5000 }, () => Math.floor(random() * 256)), 'bad-image'],
    ['truncated', ROCKET.subarray(0, ROCKET.length >> 1), 'bad-image'],
    ['oversized', COFFEE, 'body-too-large'],
    ['lying', lying, 'too-many-pixels'],
    ['empty', new Uint8Array(0), 'empty-body'],
  ];
  for (const [camera, bytes] of cases) await listener.publish(`cameras/${camera}/image`, bytes, frame(`bad-${camera}`));
  for (const [camera, , kind] of cases) {
    const { topic, json } = await listener.next(
      (m) => m.json?.frame === `bad-${camera}`,
      `error for the ${camera} payload`,
    );
    assert.is(topic, `resnet-wasm/${camera}/error`);
    assert.is(json.error.kind, kind, JSON.stringify(json));
    assert.ok(json.error.message.length > 10, json.error.message);
  }
  await listener.publish('cameras/random/image', CAT, frame('good-after-bad'));
  assert.equal((await listener.next(isResult('good-after-bad'), 'the good frame after the bad ones')).json.top, oracle);
  assert.is(await counter(main, 'resnet_wasm_errors_total{kind="too-many-pixels"}'), 1);
});

brokerTest(
  "newest frame wins: a burst of 50 frames from one camera does not hold up another camera's frame; the drops are counted",
  async () => {
    const before = await frameCounts(main);
    const start = listener.messages.length;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => listener.publish('cameras/busy/image', CAT, frame(`busy-${i}`))),
    );
    const quietSent = listener.messages.length;
    await listener.publish('cameras/quiet/image', CAT, frame('quiet-0'));
    await listener.next(isResult('quiet-0'), "the quiet camera's frame");
    // In the order of arrival the quiet frame would wait for the 50 busy ones. Ahead of it here: the
    // busy frame running when it arrives, the busy camera's one waiting frame, and those answered
    // while the gateway was still taking in the burst (12 MB; 2 at most, at 100+ ms a frame) whose
    // answers reach this listener after the quiet frame was sent.
    const quietAt = listener.messages.findIndex((m, i) => i >= start && isResult('quiet-0')(m));
    const busyAhead = listener.messages.slice(quietSent, quietAt).filter((m) => m.json?.camera === 'busy').length;
    assert.ok(busyAhead <= 4, `${busyAhead} busy frames answered between the quiet frame's arrival and its answer`);
    await listener.next(isResult('busy-49'), "the busy camera's newest frame", start);
    const after = await frameCounts(main);
    const busyAnswered = listener.messages
      .slice(start)
      .filter((m) => m.json?.camera === 'busy' && m.json.top !== undefined).length;
    assert.is(after.answered - before.answered, busyAnswered + 1);
    assert.is(after.dropped - before.dropped, 50 - busyAnswered);
    assert.ok(after.dropped - before.dropped > 0);
  },
);

brokerTest(
  'two gateways in one --group: each frame answered once, answered + dropped = all, the load split; paced, none dropped',
  async () => {
    const options = { group: 'classifiers', images: 'group/+/image', result: 'group-results/{camera}' };
    const gateways = await Promise.all(['gw-a', 'gw-b'].map((clientId) => gateway(broker, { ...options, clientId })));
    const results = await Listener.open(broker.url, ['group-results/#']);
    try {
      const cameras = ['c0', 'c1', 'c2', 'c3'];
      const totals = async () =>
        (await Promise.all(gateways.map(frameCounts))).reduce((sum, c) => ({
          answered: sum.answered + c.answered,
          dropped: sum.dropped + c.dropped,
        }));
      // 200 QoS 1 frames at once: far above capacity.
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          results.publish(`group/${cameras[i % 4]}/image`, CAT, frame(`burst-${i}`)),
        ),
      );
      await results.until(async () => {
        const t = await totals();
        return t.answered + t.dropped === 200;
      }, 'answered + dropped = 200');
      const { answered } = await totals();
      await results.until(() => results.messages.length >= answered, 'every answer of the burst');
      const burst = results.messages.map((m) => m.json);
      assert.is(new Set(burst.map((r) => r.frame)).size, burst.length, 'a frame answered twice');
      assert.is(burst.length, answered);
      for (const id of ['gw-a', 'gw-b'])
        assert.ok(
          burst.some((r) => r.gateway === id),
          `${id} answered none of the burst`,
        );
      // Paced below capacity: each camera sends its next frame once its last one is answered.
      const before = await totals();
      const PER_CAMERA = 10;
      await Promise.all(
        cameras.map(async (camera) => {
          for (let i = 0; i < PER_CAMERA; i++) {
            await results.publish(`group/${camera}/image`, CAT, frame(`paced-${camera}-${i}`));
            await results.next(isResult(`paced-${camera}-${i}`), `paced-${camera}-${i}`);
          }
        }),
      );
      const paced = results.messages.slice(burst.length).map((m) => m.json);
      assert.is(paced.length, cameras.length * PER_CAMERA);
      assert.is(new Set(paced.map((r) => r.frame)).size, paced.length, 'a paced frame answered twice');
      for (const r of paced) assert.equal(r.top, oracle);
      const after = await totals();
      assert.is(after.dropped, before.dropped, 'frames dropped below capacity');
      for (const id of ['gw-a', 'gw-b'])
        assert.ok(
          paced.some((r) => r.gateway === id),
          `${id} answered none of the paced frames`,
        );
    } finally {
      await Promise.all(gateways.map((g) => g.stop()));
      await results.close();
    }
  },
);

brokerTest('the broker stops and starts again: the gateway reconnects, reads online again and answers', async () => {
  const own = await startMosquitto();
  const service = await gateway(own, { clientId: 'gw-restart' });
  const watcher = await Listener.open(own.url, ['resnet-wasm/#'], { reconnectPeriod: 200 });
  try {
    await watcher.next(isStatus(service.statusTopic, 'online'), 'online before the restart');
    await own.stop();
    const restarted = watcher.messages.length;
    await own.restart();
    await watcher.next(isStatus(service.statusTopic, 'online'), 'online after the restart', restarted);
    await watcher.publish('cameras/garden/image', CAT, frame('after-restart'));
    assert.equal((await watcher.next(isResult('after-restart'), 'a result after the restart')).json.top, oracle);
  } finally {
    await service.stop();
    await watcher.close();
    await own.close();
  }
});

brokerTest(
  'the network drops: the Last Will reads offline, QoS 1 frames published meanwhile are kept by the session and answered after the reconnection',
  async () => {
    const proxy = await startProxy(broker.port);
    const service = await mqttService({
      broker: `mqtt://127.0.0.1:${proxy.port}`,
      modelPath: MODEL,
      clientId: 'gw-away',
      images: 'away/+/image',
    });
    try {
      await listener.next(isStatus(service.statusTopic, 'online'), 'online through the proxy');
      const from = listener.messages.length;
      await proxy.cut();
      await listener.next(isStatus(service.statusTopic, 'offline'), 'offline (Last Will) after the drop', from);
      for (const camera of ['a0', 'a1']) await listener.publish(`away/${camera}/image`, CAT, frame(`away-${camera}`));
      await proxy.open();
      for (const camera of ['a0', 'a1'])
        assert.equal(
          (await listener.next(isResult(`away-${camera}`), `away-${camera}, published while away`, from)).json.top,
          oracle,
        );
      await listener.next(isStatus(service.statusTopic, 'online'), 'online after the reconnection', from);
      // Stopped without its broker, the gateway does not wait for it.
      const cutAgain = listener.messages.length;
      await proxy.cut();
      await listener.next(isStatus(service.statusTopic, 'offline'), 'offline after the second drop', cutAgain);
      await deadline(service.stop(), 'a stop without the broker');
    } finally {
      await service.stop();
      await proxy.close();
    }
  },
);

/** The built CLI (npm run build), as a gateway in its own process. */
function cli(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; exit: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'resnet-wasm.js'), 'mqtt', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.resume();
  const exit = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stderr })),
  );
  return { child, exit };
}

brokerTest('kill -9 of the gateway: its retained status reads offline (the Last Will)', async () => {
  const { child, exit } = cli(['--broker', broker.url, '--client-id', 'gw-killed']);
  const status = 'resnet-wasm/gw-killed/status';
  await listener.next(isStatus(status, 'online'), 'online of the CLI gateway');
  const from = listener.messages.length;
  child.kill('SIGKILL');
  await deadline(exit, 'exit after kill -9');
  await listener.next(isStatus(status, 'offline'), 'offline (Last Will) after kill -9', from);
  const late = await Listener.open(broker.url, [status]);
  await late.next((m) => m.text === 'offline' && m.packet.retain, 'the retained offline');
  await late.close();
});

brokerTest('SIGTERM with frames in flight: they are answered, then offline, exit 0', async () => {
  const { child, exit } = cli(['--broker', broker.url, '--client-id', 'gw-term', '--topic', 'term/+/image']);
  const status = 'resnet-wasm/gw-term/status';
  await listener.next(isStatus(status, 'online'), 'online of the CLI gateway');
  const from = listener.messages.length;
  for (const camera of ['t0', 't1', 't2']) await listener.publish(`term/${camera}/image`, CAT, frame(`term-${camera}`));
  await listener.next(isResult('term-t0'), "the first frame's answer", from);
  child.kill('SIGTERM');
  const { code, stderr } = await deadline(exit, 'exit after SIGTERM');
  assert.is(code, 0, stderr);
  const offline = await listener.next(isStatus(status, 'offline'), 'offline after SIGTERM', from);
  const offlineAt = listener.messages.indexOf(offline);
  for (const camera of ['t1', 't2']) {
    const answer = listener.messages.findIndex((m, i) => i >= from && isResult(`term-${camera}`)(m));
    assert.ok(answer >= 0 && answer < offlineAt, `term-${camera} answered before offline`);
  }
});

brokerTest(
  'TLS with a client certificate and a password: answers; a wrong password and an unknown CA end with a message and exit 1',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'resnet-wasm-mqtt-tls-'));
    const tls = makeCertificates(dir);
    const other = makeCertificates(dir, 'other-ca');
    const passwords = makePasswordFile(dir, 'gateway', 'correct horse');
    const passwordPath = join(dir, 'password.txt');
    writeFileSync(passwordPath, 'correct horse\n');
    const secure = await startMosquitto({ tls, passwordFile: passwords });
    const client = {
      ca: readFileSync(tls.ca),
      cert: readFileSync(tls.clientCert),
      key: readFileSync(tls.clientKey),
      username: 'gateway',
      password: 'correct horse',
    };
    const watcher = await Listener.open(secure.url, ['resnet-wasm/#'], client);
    const certificates = ['--cert', tls.clientCert, '--key', tls.clientKey, '--username', 'gateway'];
    try {
      const good = cli([
        '--broker',
        secure.url,
        '--client-id',
        'gw-tls',
        '--ca',
        tls.ca,
        ...certificates,
        '--password-file',
        passwordPath,
      ]);
      await watcher.next(isStatus('resnet-wasm/gw-tls/status', 'online'), 'online over TLS');
      await watcher.publish('cameras/vault/image', CAT, frame('tls-1'));
      assert.equal((await watcher.next(isResult('tls-1'), 'a result over TLS')).json.top, oracle);
      good.child.kill('SIGTERM');
      assert.is((await deadline(good.exit, 'exit of the TLS gateway')).code, 0);

      const wrong = cli(['--broker', secure.url, '--client-id', 'gw-wrong', '--ca', tls.ca, ...certificates], {
        RESNET_WASM_MQTT_PASSWORD: 'wrong',
      });
      const refused = await deadline(wrong.exit, 'exit on a wrong password');
      assert.is(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /refused the connection: .*(user name or password|not authorized)/i);

      const unknown = cli([
        '--broker',
        secure.url,
        '--client-id',
        'gw-unknown-ca',
        '--ca',
        other.ca,
        ...certificates,
        '--password-file',
        passwordPath,
      ]);
      const failed = await deadline(unknown.exit, 'exit on an unknown CA');
      assert.is(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, /TLS connection to mqtts:\/\/127\.0\.0\.1:\d+ failed: .*certificate/i);
    } finally {
      await watcher.close();
      await secure.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test.run();
