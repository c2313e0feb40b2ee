/**
 * `resnet-wasm serve`: classification over HTTP (fastify) for the devices around a gateway. The main
 * thread only does HTTP; images go through a bounded queue to workers that hold the model
 * (pool.ts). Every failure is a JSON error with a stable kind (errors.ts), counted in /metrics.
 */

import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { checkTop, fromText } from '../options/validate.ts';
import { bodyDeadline, readImages, registerBodyParsers } from './body.ts';
import { clientErrorHandler } from './client-errors.ts';
import { ServeError, toServeError } from './errors.ts';
import { DEFAULT_LIMITS, idleTimeoutMs, type ServeLimits } from './limits.ts';
import { ServeMetrics } from './metrics.ts';
import { modelNameOf, registerOip } from './oip.ts';
import { WorkerPool } from './pool.ts';
import type { ClassifyResult } from './protocol.ts';

export interface ServeOptions extends Partial<ServeLimits> {
  modelPath: string;
  /** The model's name in /v2 (default: the file's base name). */
  modelName?: string;
  workers: number;
  /** Threads each worker's model runs on (default 1; serveSizing chooses them for the CLI). */
  threads?: number;
  /** Default 127.0.0.1: only this machine, until the gateway's owner decides otherwise. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Where worker restarts and internal errors are told (default: nowhere). */
  log?: (line: string) => void;
}

export interface ServeHandle {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  pool: WorkerPool;
  /** Graceful shutdown: refuses new requests (503), answers those in flight, then stops the workers. */
  close(): Promise<void>;
}

/** One image's answer in a batch: what /v1/classify would have answered for it. */
export type BatchItem = ClassifyResult | ReturnType<ServeError['toJSON']>;

const TOP_QUERY = {
  querystring: {
    type: 'object',
    // Checked by checkTop (src/options/validate.ts), for the library's message.
    properties: { top: { type: 'string' } },
    additionalProperties: false,
  },
} as const;

export async function startServer(options: ServeOptions): Promise<ServeHandle> {
  const limits: ServeLimits = { ...DEFAULT_LIMITS, ...definedLimits(options) };
  const log = options.log ?? (() => {});
  let pool: WorkerPool | undefined;
  const metrics = new ServeMetrics(() => pool);
  pool = await WorkerPool.start({
    modelPath: options.modelPath,
    workers: options.workers,
    threads: options.threads,
    queueSize: limits.queueSize,
    timeoutMs: limits.timeoutMs,
    maxPixels: limits.maxPixels,
    observer: {
      inferred: (ms) => metrics.inferred(ms),
      workerReplaced: (reason) => {
        metrics.workerReplaced();
        log(`worker replaced (${reason})`);
      },
    },
  });
  const state = { draining: false };
  const app = fastify({
    return503OnClosing: false,
    requestTimeout: 2 * limits.bodyTimeoutMs,
    connectionTimeout: idleTimeoutMs(limits),
    clientErrorHandler: clientErrorHandler((kind) => metrics.failed(kind)),
  });
  app.server.maxConnections = limits.maxConnections;
  app.server.on('drop', () => metrics.failed('too-many-connections'));
  await registerBodyParsers(app, limits);
  addHooks(app, metrics, state, log);
  addRoutes(app, pool, metrics, limits, state);
  await registerOip(app, {
    pool,
    limits,
    state,
    modelName: options.modelName ?? modelNameOf(options.modelPath),
    modelFile: basename(options.modelPath),
    whenClientLeaves,
  });
  try {
    await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 8080 });
  } catch (error) {
    await pool.close();
    throw error;
  }
  const { address, port } = app.server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  const running = pool;
  return {
    url: `http://${host}:${port}`,
    pool: running,
    async close() {
      state.draining = true;
      await app.close();
      await running.close();
    },
  };
}

function definedLimits(options: Partial<ServeLimits>): Partial<ServeLimits> {
  return Object.fromEntries(
    Object.keys(DEFAULT_LIMITS).flatMap((key) => {
      const value = options[key as keyof ServeLimits];
      return value === undefined ? [] : [[key, value]];
    }),
  );
}

function addHooks(
  app: FastifyInstance,
  metrics: ServeMetrics,
  state: { draining: boolean },
  log: (line: string) => void,
): void {
  app.addHook('onRequest', async () => {
    if (state.draining) throw new ServeError('shutting-down', 'the server is shutting down: it takes no new requests');
  });
  // While draining, each answered connection closes, so that shutdown does not wait on idle clients.
  app.addHook('onSend', async (_request, reply) => {
    if (state.draining) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.responded(request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime);
  });
  app.setNotFoundHandler(async (request) => {
    throw new ServeError(
      'not-found',
      `no route ${request.method} ${request.url}: POST /v1/classify, POST /v1/classify/batch, POST /v1/embed, GET /healthz, /readyz, /metrics`,
    );
  });
  app.setErrorHandler(async (error, request, reply) => {
    const failure = clientGone(request, reply)
      ? new ServeError('client-closed', 'the client hung up')
      : toServeError(error);
    metrics.failed(failure.kind);
    // Our own faults are told; the rest (timeouts and refusals included) only counted.
    if (failure.kind === 'internal' || failure.kind === 'worker-crashed')
      log(`${request.method} ${request.url}: ${failure.message}`);
    if (failure.retryAfter !== undefined) reply.header('retry-after', String(failure.retryAfter));
    return reply.code(failure.statusCode).send(failure.toJSON());
  });
}

function addRoutes(
  app: FastifyInstance,
  pool: WorkerPool,
  metrics: ServeMetrics,
  limits: ServeLimits,
  state: { draining: boolean },
): void {
  const preParsing = bodyDeadline(limits);
  app.post('/v1/classify', { schema: TOP_QUERY, preParsing }, async (request, reply) => {
    const [image] = await readImages(request, limits, 1);
    return pool.classify(image, topOf(request), whenClientLeaves(reply));
  });
  app.post('/v1/classify/batch', { schema: TOP_QUERY, preParsing }, async (request, reply) => {
    const images = await readImages(request, limits, limits.maxBatch);
    pool.checkRoom(images.length);
    const signal = whenClientLeaves(reply);
    const results = await Promise.all(
      images.map((image) => classifyItem(pool, metrics, image, topOf(request), signal)),
    );
    return { results };
  });
  app.post('/v1/embed', { preParsing }, async (request, reply) => {
    const [image] = await readImages(request, limits, 1);
    return pool.embed(image, whenClientLeaves(reply));
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async () => {
    if (state.draining) throw new ServeError('shutting-down', 'the server is shutting down');
    if (pool.readyWorkers === 0) throw new ServeError('not-ready', 'no worker has the model loaded yet');
    return { status: 'ready', workers: pool.readyWorkers, queue: pool.queueDepth };
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.text()));
}

/** A batch answers every image: an image that fails gets its error in its place. */
async function classifyItem(
  pool: WorkerPool,
  metrics: ServeMetrics,
  image: Uint8Array,
  top: number,
  signal: AbortSignal,
): Promise<BatchItem> {
  try {
    return await pool.classify(image, top, signal);
  } catch (error) {
    const failure = toServeError(error);
    metrics.failed(failure.kind);
    return failure.toJSON();
  }
}

/** `?top=K`, checked as the library and the command line check it: a bad one is a 400 with their message. */
function topOf(request: FastifyRequest): number {
  const { top } = request.query as { top?: string };
  return checkTop(top === undefined ? undefined : fromText(top));
}

/** Aborts when the client closes the connection before its answer was sent. */
export function whenClientLeaves(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => reply.raw.writableFinished || controller.abort());
  return controller.signal;
}

function clientGone(request: FastifyRequest, reply: FastifyReply): boolean {
  return request.raw.socket.destroyed && !reply.raw.writableFinished;
}
