/**
 * The Open Inference Protocol (KServe v2, as Triton speaks it over HTTP) beside /v1: health,
 * server and model metadata, and infer, through the same worker pool, queue, limits and error
 * kinds, and Triton's model configuration. One model, named after its file (`default`) or
 * --model-name, version "1", described in oip-model.ts. Its inputs: `image` (BYTES: encoded images,
 * one per element) or `input` (FP32 normalized values or UINT8 pixels of the network's crop, NCHW
 * or NHWC, told apart by the shape); any input name is taken by its datatype. Its outputs: `logits`
 * (FP32 [N, classes]) and `top` (BYTES [N, k]: "score:index:label", softmax scores), and Triton's
 * classification extension on either.
 * Errors are {"error": "message"}, as Triton's and KServe's clients read them.
 */

import { basename } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import packageJson from '../../package.json' with { type: 'json' };
import { topK } from '../runtime/topk.ts';
import { bodyDeadline } from './body.ts';
import { ServeError } from './errors.ts';
import type { ServeLimits } from './limits.ts';
import type { InferRequest, InputTensor, OutputTensor } from './oip-codec.ts';
import { badRequest, encodeInferResponse, HEADER_LENGTH, parseInferRequest } from './oip-codec.ts';
import { describeModel, modelConfig, modelMetadata, PLATFORM, VERSION } from './oip-model.ts';
import type { WorkerPool } from './pool.ts';
import type { ClassifyResult, JobOptions, ModelSummary } from './protocol.ts';

export interface OipOptions {
  pool: WorkerPool;
  limits: ServeLimits;
  modelName: string;
  /** The .rnw file's base name: it holds the labels. */
  modelFile: string;
  state: { draining: boolean };
  whenClientLeaves(reply: FastifyReply): AbortSignal;
}

const DEFAULT_TOP = 5;
const OUTPUTS = ['logits', 'top'];

interface ModelParams {
  name: string;
  version?: string;
}

/** One batch item: an image's bytes, or one image's slice of a tensor. */
interface Item {
  bytes: Uint8Array;
  options: JobOptions;
}

/** A model's name: its file's base name (`default` for default.rnw). */
export function modelNameOf(path: string): string {
  return basename(path).replace(/\.[^.]*$/, '');
}

export async function registerOip(app: FastifyInstance, options: OipOptions): Promise<void> {
  await app.register(async (v2) => oipRoutes(v2, options), { prefix: '/v2' });
}

function oipRoutes(
  v2: FastifyInstance,
  { pool, limits, modelName, modelFile, state, whenClientLeaves }: OipOptions,
): void {
  // Triton's client sends its JSON and binary tensors with no content type (KServe's says JSON).
  v2.removeAllContentTypeParsers();
  v2.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limits.maxBodyBytes }, (_request, body, done) =>
    done(null, body),
  );
  v2.addHook('onSend', async (_request, reply, payload) => (reply.statusCode >= 400 ? flatError(payload) : payload));
  v2.setNotFoundHandler(async (request) => {
    throw new ServeError(
      'not-found',
      `no route ${request.method} ${request.url}: GET /v2, /v2/health/live, /v2/health/ready, /v2/models/${modelName}[/ready, /config], POST /v2/models/${modelName}/infer`,
    );
  });

  const ready = () => {
    if (state.draining) throw new ServeError('shutting-down', 'the server is shutting down');
    if (pool.readyWorkers === 0) throw new ServeError('not-ready', 'no worker has the model loaded yet');
  };
  const model = (params: ModelParams): ModelSummary => {
    if (params.name !== modelName || (params.version !== undefined && params.version !== VERSION)) {
      const version = params.version === undefined ? '' : ` version "${params.version}"`;
      throw new ServeError(
        'not-found',
        `unknown model "${params.name}"${version}: this server has "${modelName}" version "${VERSION}"`,
      );
    }
    return pool.model;
  };
  const describe = (params: ModelParams) => describeModel(modelName, model(params), limits.maxBatch, modelFile);

  v2.get('/', async () => ({
    name: PLATFORM,
    version: packageJson.version,
    extensions: ['binary_tensor_data', 'classification', 'model_configuration'],
  }));
  v2.get('/health/live', async () => ({ live: true }));
  v2.get('/health/ready', async () => {
    ready();
    return { ready: true };
  });
  for (const path of ['/models/:name', '/models/:name/versions/:version']) {
    v2.get(path, async (request) => modelMetadata(describe(request.params as ModelParams)));
    v2.get(`${path}/config`, async (request) => modelConfig(describe(request.params as ModelParams)));
    v2.get(`${path}/ready`, async (request) => {
      model(request.params as ModelParams);
      ready();
      return { name: modelName, ready: true };
    });
    v2.post(`${path}/infer`, { preParsing: bodyDeadline(limits) }, async (request, reply) => {
      const summary = model(request.params as ModelParams);
      return infer(request, reply, summary, { pool, limits, modelName, whenClientLeaves });
    });
  }
}

async function infer(
  request: FastifyRequest,
  reply: FastifyReply,
  summary: ModelSummary,
  options: Omit<OipOptions, 'state' | 'modelFile'>,
): Promise<unknown> {
  const body = request.body as Uint8Array | undefined;
  if (body === undefined || body.length === 0) throw new ServeError('empty-body', 'the inference request is empty');
  const { request: inferRequest, inputs } = parseInferRequest(
    body,
    request.headers[HEADER_LENGTH] as string | undefined,
  );
  if (inputs.length !== 1)
    throw badRequest(`the request has ${inputs.length} inputs; send one: "image" (BYTES) or "input" (FP32 or UINT8)`);
  const items = batchItems(inputs[0], summary);
  if (items.length > options.limits.maxBatch) {
    throw new ServeError(
      'too-many-files',
      `the request holds ${items.length} images; the server takes at most ${options.limits.maxBatch} at once (--max-batch)`,
    );
  }
  const outputs = requestedOutputs(inferRequest, summary);
  options.pool.checkRoom(items.length);
  const signal = options.whenClientLeaves(reply);
  const results = await Promise.all(
    items.map(({ bytes, options: job }) => options.pool.classify(bytes, 1, signal, { ...job, logits: true })),
  );
  const header = {
    model_name: options.modelName,
    model_version: VERSION,
    ...(inferRequest.id === undefined ? {} : { id: inferRequest.id }),
  };
  const { body: answer, headerLength } = encodeInferResponse(
    header,
    outputs.map((output) => output.make(results)),
  );
  if (headerLength === undefined) return answer;
  return reply.type('application/octet-stream').header(HEADER_LENGTH, headerLength).send(answer);
}

/** BYTES: one encoded image per element; FP32 or UINT8: [N,] 3 x crop x crop (NCHW) or crop x crop x 3 (NHWC). */
function batchItems(input: InputTensor, { input: size }: ModelSummary): Item[] {
  if (input.datatype === 'BYTES') {
    const images = input.data as Uint8Array[];
    if (images.length === 0) throw badRequest(`input "${input.name}" holds no image`);
    return images.map((bytes) => ({ bytes, options: {} }));
  }
  const shape = input.shape.length === 3 ? [1, ...input.shape] : input.shape;
  const [n, ...item] = shape;
  const nchw = [size.c, size.h, size.w];
  const nhwc = [size.h, size.w, size.c];
  const layout = sameShape(item, nchw) ? 'NCHW' : sameShape(item, nhwc) ? 'NHWC' : null;
  if (shape.length !== 4 || layout === null || n < 1) {
    throw badRequest(
      `input "${input.name}" has shape [${input.shape}]; expected [N, ${nchw.join(', ')}] (NCHW) or [N, ${nhwc.join(', ')}] (NHWC), N ≥ 1`,
    );
  }
  const bytes = input.data as Uint8Array;
  const stride = bytes.length / n;
  const tensor = { datatype: input.datatype as 'FP32' | 'UINT8', layout } as const;
  return Array.from({ length: n }, (_, i) => ({
    bytes: bytes.subarray(i * stride, (i + 1) * stride),
    options: { tensor },
  }));
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Each output the request asks for (both by default), as JSON or binary, plain or as classes. */
function requestedOutputs(
  request: InferRequest,
  { labels }: ModelSummary,
): { make(results: ClassifyResult[]): OutputTensor }[] {
  const asked = request.outputs ?? OUTPUTS.map((name) => ({ name, parameters: undefined }));
  const binaryByDefault = request.parameters?.binary_data_output === true;
  return asked.map(({ name, parameters }) => {
    if (!OUTPUTS.includes(name)) throw badRequest(`unknown output "${name}": this model has "logits" and "top"`);
    const binary = typeof parameters?.binary_data === 'boolean' ? parameters.binary_data : binaryByDefault;
    const classes = parameters?.classification;
    if (
      classes !== undefined &&
      !(Number.isInteger(classes) && (classes as number) >= 1 && (classes as number) <= labels.length)
    ) {
      throw badRequest(
        `output "${name}": parameters.classification must be an integer from 1 to ${labels.length}, got ${JSON.stringify(classes)}`,
      );
    }
    return {
      make: (results: ClassifyResult[]): OutputTensor => {
        const n = results.length;
        if (name === 'logits' && classes === undefined) {
          const data = new Float32Array(n * labels.length);
          results.forEach((r, i) => data.set(r.logits!, i * labels.length));
          return { name, datatype: 'FP32', shape: [n, labels.length], data, binary };
        }
        const k = (classes as number | undefined) ?? Math.min(DEFAULT_TOP, labels.length);
        const data = results.flatMap((r) => classStrings(r.logits!, labels, k, name === 'top'));
        return { name, datatype: 'BYTES', shape: [n, k], data, binary };
      },
    };
  });
}

/** Triton's classification strings, "value:index:label", best first: the softmax score for `top`, the logit for `logits`. */
function classStrings(logits: Float32Array, labels: string[], k: number, scores: boolean): string[] {
  return topK(logits, labels, k).map(
    ({ index, label, score }) => `${(scores ? score : logits[index]).toFixed(6)}:${index}:${label}`,
  );
}

/** Our error body {error: {kind, message}} as the protocol's {error: message}. */
function flatError(payload: unknown): unknown {
  if (typeof payload !== 'string') return payload;
  try {
    const body = JSON.parse(payload) as { error?: { message?: unknown } };
    return typeof body.error?.message === 'string' ? JSON.stringify({ error: body.error.message }) : payload;
  } catch {
    return payload;
  }
}
