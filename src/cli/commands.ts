/**
 * Every `resnet-wasm` command, one entry each: its help (options, examples) and its code, loaded
 * when it runs. A new command is one more entry here; `packages` names the optional dependencies
 * its code imports (package.json's peerDependencies), so that a missing one is named with the fix.
 */
import { availableParallelism } from 'node:os';
import { DEFAULT_DISCOVERY_PREFIX } from '../mqtt/homeassistant.ts';
import { DEFAULT_TOPICS } from '../mqtt/topics.ts';
import { DEFAULT_TOP } from '../options/validate.ts';
import { DEFAULT_LIMITS } from '../serve/default-limits.ts';
import { type Command, lazy } from './command.ts';

const MODEL = {
  type: 'string',
  value: 'FILE',
  help: 'a .rnw model file (default: the packaged ImageNet ResNet-50)',
} as const;

const OUTPUT = { type: 'string', short: 'o', value: 'FILE', help: 'where to write the result (required)' } as const;
const THREADS = {
  type: 'string',
  value: 'N|auto',
  default: 'auto',
  help: 'threads sharing each layer (auto: the cores, at most 4)',
} as const;

const DECODER = {
  type: 'string',
  value: 'auto|sharp|js',
  default: 'auto',
  help: 'which JPEG/PNG decoder reads the images',
} as const;

/** serve's and mqtt's: how many models run at once, and the threads of each (src/serve/sizing.ts). */
const WORKERS = {
  type: 'string',
  value: 'N',
  help: `worker threads, each with its own model (default: the cores / --threads; here ${availableParallelism()})`,
} as const;

const WORKER_THREADS = {
  ...THREADS,
  help: 'threads per worker (auto: the cores / --workers, at most 4); workers x threads stay within the cores unless both are given',
} as const;

export const COMMANDS: Command[] = [
  {
    name: 'classify',
    summary: 'Classify photos, or the frames of an MJPEG stream',
    usage: '<image...> [options]\n       resnet-wasm classify --stream <FILE|-> [options]',
    options: {
      model: MODEL,
      top: { type: 'string', value: 'K', default: String(DEFAULT_TOP), help: 'how many classes to print' },
      json: { type: 'boolean', help: 'one JSON object per image' },
      decoder: DECODER,
      threads: THREADS,
      stream: {
        type: 'string',
        value: 'FILE|-',
        help: 'MJPEG frames from a file, a FIFO or stdin (-): one JSON line per classified frame',
      },
    },
    details: [
      'With --stream, the newest frame is classified and older waiting ones are dropped; each line has the',
      'frame index, "t" (ms since the stream opened), "dropped", "top" and "ms"; a last line has the summary.',
    ].join('\n'),
    examples: [
      'resnet-wasm classify cat.jpg dog.png --top 3',
      'resnet-wasm classify photos/*.jpg --json --model resnet18.rnw',
      'resnet-wasm classify cat.jpg --threads 1',
      'rpicam-vid -t 0 --codec mjpeg -o - | resnet-wasm classify --stream -',
      'ffmpeg -i rtsp://camera/stream -f mjpeg - | resnet-wasm classify --stream - --top 1',
    ],
    run: lazy(() => import('./classify.ts')),
  },
  {
    name: 'teach',
    summary: 'Teach your own classes from folders of photos: the base model with a new head, as a .rnw',
    usage: '<DIR> -o <out.rnw> [options]',
    options: {
      output: OUTPUT,
      model: {
        ...MODEL,
        help: 'the base model whose embeddings the head learns from (default: the packaged ImageNet ResNet-50)',
      },
      force: { type: 'boolean', help: 'replace the output file if it exists' },
      decoder: DECODER,
      unknown: {
        type: 'boolean',
        help: 'answer "unknown" when the best score is below a threshold chosen from the photos',
      },
      augment: {
        type: 'boolean',
        help: "also learn from each photo's horizontal flip and a tighter centre crop (3 inferences a photo)",
      },
    },
    details: [
      'DIR holds one sub-folder of photos per class (the ImageFolder layout); the sub-folder names are the labels.',
      "Prints each class's photo count and a cross-validated balanced accuracy; files that are not photos are listed and skipped.",
    ].join('\n'),
    examples: ['resnet-wasm teach my-photos/ -o mine.rnw', 'resnet-wasm classify --model mine.rnw new-photo.jpg'],
    run: lazy(() => import('./teach.ts')),
  },
  {
    name: 'embed',
    summary: "Print each photo's embedding: the network's global-average-pool features",
    usage: '<image...> [options]',
    options: {
      model: MODEL,
      json: { type: 'boolean', help: 'one JSON object per photo: {file, embedding, ms}' },
      threads: THREADS,
    },
    examples: ['resnet-wasm embed cat.jpg --json'],
    run: lazy(() => import('./embed.ts')),
  },
  {
    name: 'bench',
    summary: 'Time inference (median, p10, p90, GMAC/s), per layer, or from a cold process start',
    usage: '[options]',
    options: {
      model: { ...MODEL, help: 'a .rnw model file (default: a seeded ResNet-18 built in memory)' },
      threads: {
        type: 'string',
        value: 'N',
        default: '1',
        help: 'threads sharing each layer: a number, auto (the cores, at most 4) or a list such as 1,2',
      },
      kernels: { type: 'string', value: 'auto|baseline|relaxed', default: 'auto', help: 'which kernel build runs' },
      runs: { type: 'string', value: 'N', default: '30', help: 'timed runs after the warm-up' },
      json: { type: 'boolean', help: 'one JSON object per configuration' },
      profile: { type: 'boolean', help: 'time and GMAC/s per layer' },
      cold: { type: 'boolean', help: 'process start to first top-5, in fresh processes (--json: cold_ms)' },
      photo: { type: 'string', value: 'FILE', help: 'the photo whose 1080p decode and preprocessing are timed' },
    },
    examples: [
      'resnet-wasm bench --threads 1,2 --runs 50',
      'resnet-wasm bench --model resnet18.rnw --profile',
      'resnet-wasm bench --cold --json',
    ],
    run: lazy(() => import('./bench.ts')),
  },
  {
    name: 'convert',
    summary: 'Convert an ONNX or TF.js/Keras ResNet into an int8 .rnw model',
    usage: '<model.onnx | model.json> -o <out.rnw> [options]',
    options: {
      output: OUTPUT,
      calibrate: { type: 'string', value: 'DIR', help: 'photos (JPEG/PNG) to calibrate the activation ranges on' },
      calibration: {
        type: 'string',
        value: 'minmax|percentile|entropy',
        default: 'minmax',
        help: 'how ranges are chosen from the photos',
      },
      ranges: { type: 'string', value: 'FILE', help: 'reuse ranges saved by --save-ranges instead of calibrating' },
      'save-ranges': { type: 'string', value: 'FILE', help: 'save the calibrated ranges' },
      preprocessing: {
        type: 'string',
        value: 'torch|caffe|tf',
        help: 'the input normalization (default: torch for ONNX, caffe for TF.js/Keras)',
      },
      labels: {
        type: 'string',
        value: 'FILE',
        help: 'class names: a JSON array or one per line (default: ImageNet for 1000 classes)',
      },
    },
    examples: ['resnet-wasm convert resnet50.onnx -o resnet50.rnw --calibrate photos/ --calibration percentile'],
    run: lazy(() => import('./convert.ts'), ['protobufjs']),
  },
  {
    name: 'serve',
    summary:
      'Classify over HTTP: /v1/classify, /v1/classify/batch, /v1/embed, the Open Inference Protocol (/v2), /metrics',
    usage: '[options]',
    options: {
      port: { type: 'string', value: 'N', default: '8080', help: 'TCP port (0: any free port)' },
      host: {
        type: 'string',
        value: 'ADDRESS',
        default: '127.0.0.1',
        help: 'address to listen on (0.0.0.0: every interface)',
      },
      model: MODEL,
      'model-name': {
        type: 'string',
        value: 'NAME',
        help: "the model's name in /v2 (default: the file's base name, default for the packaged one)",
      },
      workers: WORKERS,
      threads: WORKER_THREADS,
      queue: {
        type: 'string',
        value: 'N',
        default: String(DEFAULT_LIMITS.queueSize),
        help: 'images waiting for a worker; past it, 429',
      },
      timeout: {
        type: 'string',
        value: 'MS',
        default: String(DEFAULT_LIMITS.timeoutMs),
        help: 'longest wait for an answer once the body is in (504)',
      },
      'body-timeout': {
        type: 'string',
        value: 'MS',
        default: String(DEFAULT_LIMITS.bodyTimeoutMs),
        help: 'a body must arrive within this (408)',
      },
      'max-body': {
        type: 'string',
        value: 'BYTES',
        default: String(DEFAULT_LIMITS.maxBodyBytes),
        help: 'largest request body (413)',
      },
      'max-pixels': {
        type: 'string',
        value: 'N',
        default: String(DEFAULT_LIMITS.maxPixels),
        help: 'largest image, as its header announces it (413)',
      },
      'max-batch': {
        type: 'string',
        value: 'N',
        default: String(DEFAULT_LIMITS.maxBatch),
        help: 'images in one batch request',
      },
      'max-connections': {
        type: 'string',
        value: 'N',
        default: String(DEFAULT_LIMITS.maxConnections),
        help: 'open connections; past it, closed at once',
      },
    },
    examples: [
      'resnet-wasm serve --port 8080 --workers 2',
      'resnet-wasm serve --workers 1 --threads auto',
      'curl --data-binary @cat.jpg -H "content-type: image/jpeg" "http://127.0.0.1:8080/v1/classify?top=3"',
    ],
    run: lazy(() => import('./serve.ts'), ['fastify', '@fastify/multipart', 'prom-client', 'image-size']),
  },
  {
    name: 'mqtt',
    summary: 'Classify the images that cameras publish to an MQTT broker, answering on result topics',
    usage: '[options]',
    options: {
      broker: {
        type: 'string',
        value: 'URL',
        default: 'mqtt://127.0.0.1:1883',
        help: 'mqtt://, mqtts:// (TLS), ws://, wss://',
      },
      model: MODEL,
      top: { type: 'string', value: 'K', default: String(DEFAULT_TOP), help: 'classes in each result' },
      workers: { ...WORKERS, help: `frames classified at once: ${WORKERS.help}` },
      threads: WORKER_THREADS,
      qos: { type: 'string', value: '0|1|2', default: '1', help: 'of the subscription and of every answer' },
      retain: { type: 'boolean', help: 'results retained: the last result per camera' },
      topic: {
        type: 'string',
        value: 'FILTER',
        default: DEFAULT_TOPICS.images,
        help: 'where cameras publish images ({camera} is the + level)',
      },
      'result-topic': { type: 'string', value: 'T', default: DEFAULT_TOPICS.result, help: 'where results go' },
      'error-topic': { type: 'string', value: 'T', default: DEFAULT_TOPICS.error, help: 'where errors go' },
      'status-topic': {
        type: 'string',
        value: 'T',
        default: DEFAULT_TOPICS.status,
        help: 'online/offline (the Last Will)',
      },
      group: {
        type: 'string',
        value: 'NAME',
        help: 'scale out: gateways of one group share the frames (a shared subscription)',
      },
      'client-id': { type: 'string', value: 'ID', help: 'unique per gateway (default resnet-wasm-HOSTNAME)' },
      'session-expiry': {
        type: 'string',
        value: 'S',
        default: '300',
        help: 'how long the broker keeps the session while the gateway is away',
      },
      'max-bytes': {
        type: 'string',
        value: 'BYTES',
        default: String(DEFAULT_LIMITS.maxBodyBytes),
        help: 'largest image payload',
      },
      'max-pixels': {
        type: 'string',
        value: 'N',
        default: String(DEFAULT_LIMITS.maxPixels),
        help: 'largest image, as its header announces it',
      },
      timeout: {
        type: 'string',
        value: 'MS',
        default: String(DEFAULT_LIMITS.timeoutMs),
        help: 'longest a frame may take',
      },
      ca: { type: 'string', value: 'FILE', help: "TLS: the broker's CA certificate" },
      cert: { type: 'string', value: 'FILE', help: "TLS: this client's certificate" },
      key: { type: 'string', value: 'FILE', help: "TLS: this client's key" },
      username: { type: 'string', value: 'U', help: 'broker user name' },
      'password-file': {
        type: 'string',
        value: 'FILE',
        help: 'its first line is the password (else RESNET_WASM_MQTT_PASSWORD)',
      },
      homeassistant: { type: 'boolean', help: 'publish Home Assistant MQTT discovery, retained' },
      'discovery-prefix': {
        type: 'string',
        value: 'P',
        default: DEFAULT_DISCOVERY_PREFIX,
        help: "Home Assistant's discovery prefix",
      },
      'metrics-port': { type: 'string', value: 'N', help: 'serve Prometheus metrics on this port' },
      'metrics-host': { type: 'string', value: 'ADDRESS', default: '127.0.0.1', help: 'address of the metrics server' },
    },
    examples: [
      'resnet-wasm mqtt --broker mqtt://127.0.0.1:1883',
      'resnet-wasm mqtt --broker mqtt://broker.lan:1883 --group classifiers --client-id gateway-a',
    ],
    run: lazy(() => import('./mqtt.ts'), ['mqtt', 'prom-client', 'image-size']),
  },
  {
    name: 'lesion',
    summary: 'Remove residual blocks: the per-block lesion study, blocks to drop for a time budget, a shortened model',
    usage: '--photos DIR [options]\n       resnet-wasm lesion --drop BLOCK[,BLOCK...] -o <out.rnw> [--model FILE]',
    options: {
      model: MODEL,
      photos: {
        type: 'string',
        value: 'DIR',
        help: 'photos to measure on: ImageNet file names or one folder per class give labels',
      },
      limit: { type: 'string', value: 'N', help: 'use N of the photos, spread evenly' },
      budget: {
        type: 'string',
        value: 'F[,F...]',
        help: 'drop blocks until F of the full time is left (0.8 = 80%), chosen on half the photos',
      },
      shortlist: {
        type: 'string',
        value: 'N',
        default: '3',
        help: 'candidates measured after repair in each greedy step, the best by their lines alone',
      },
      drop: { type: 'string', value: 'BLOCKS', help: 'write a model without these blocks (with -o)' },
      output: { ...OUTPUT, help: 'where to write the shortened model' },
      plot: { type: 'string', value: 'FILE.svg', help: 'the study as a plot: time saved against agreement' },
      json: { type: 'boolean', help: 'the results as one JSON object' },
    },
    examples: [
      'resnet-wasm lesion --photos photos/ --limit 100 --plot lesion.svg',
      'resnet-wasm lesion --photos photos/ --budget 0.8 -o fast.rnw',
      'resnet-wasm lesion --drop res4c,res4d -o fast.rnw',
    ],
    run: lazy(() => import('./lesion.ts')),
  },
  {
    name: 'wasi-plan',
    summary: 'Record the plan that the WASI command (build/resnet-wasi.wasm) replays for a model',
    usage: '<model.rnw> -o <model.plan>',
    options: { output: OUTPUT },
    examples: ['resnet-wasm wasi-plan weights/default.rnw -o default.plan'],
    run: lazy(() => import('./wasi-plan.ts').then((m) => ({ run: m.wasiPlanCommand }))),
  },
  {
    name: 'preprocess',
    summary: "Write a photo as the model's quantized input tensor (for the WASI command)",
    usage: '<image> -o <input.u8> [options]',
    options: { model: MODEL, output: OUTPUT },
    examples: ['resnet-wasm preprocess cat.jpg -o cat.u8'],
    run: lazy(() => import('./wasi-plan.ts').then((m) => ({ run: m.preprocessCommand }))),
  },
];
