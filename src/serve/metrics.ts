/**
 * What GET /metrics reports, in Prometheus' text format (prom-client): requests by route and
 * status, request and inference latency histograms, queue depth, workers, errors by kind, and the
 * process's own figures (resident memory, event-loop lag, GC). PoolMetrics is the part of every
 * service in front of the worker pool (serve's and the MQTT gateway's, src/mqtt/metrics.ts).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { SERVE_ERROR_KINDS, type ServeErrorKind } from './errors.ts';
import type { PoolObserver, WorkerPool } from './pool.ts';

export const LATENCY_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Inference, errors by kind, worker restarts, waiting images, workers, and the process's own figures. */
export class PoolMetrics implements PoolObserver {
  readonly registry = new Registry();
  private readonly inference = new Histogram({
    name: 'resnet_wasm_inference_duration_seconds',
    help: 'Decode, preprocessing and inference of one image in a worker',
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'resnet_wasm_errors_total',
    help: "Failed requests, by kind (the error JSON's kind)",
    labelNames: ['kind'],
    registers: [this.registry],
  });
  private readonly restarts = new Counter({
    name: 'resnet_wasm_worker_restarts_total',
    help: 'Workers replaced after they stopped',
    registers: [this.registry],
  });

  /** `waiting` counts the images waiting for a worker, where the service keeps them (default: the pool's queue). */
  constructor(pool: () => WorkerPool | undefined, waiting: (p: WorkerPool) => number = (p) => p.queueDepth) {
    const gauge = (name: string, help: string, read: (p: WorkerPool) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const p = pool();
          this.set(p === undefined ? 0 : read(p));
        },
      });
    gauge('resnet_wasm_queue_depth', 'Images waiting for a worker', waiting);
    gauge('resnet_wasm_workers_ready', 'Workers with the model loaded', (p) => p.readyWorkers);
    gauge('resnet_wasm_workers_busy', 'Workers classifying an image', (p) => p.busyWorkers);
    // Every kind from zero, so a rate() sees the first error of a kind.
    for (const kind of SERVE_ERROR_KINDS) this.errors.inc({ kind }, 0);
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  failed(kind: ServeErrorKind): void {
    this.errors.inc({ kind });
  }

  inferred(ms: number): void {
    this.inference.observe(ms / 1000);
  }

  workerReplaced(): void {
    this.restarts.inc();
  }
}

export class ServeMetrics extends PoolMetrics {
  private readonly requests = new Counter({
    name: 'resnet_wasm_http_requests_total',
    help: 'HTTP requests answered, by route and status',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'resnet_wasm_http_request_duration_seconds',
    help: 'Time from request to response, by route',
    labelNames: ['route'],
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });

  responded(route: string, status: number, ms: number): void {
    this.requests.inc({ route, status });
    this.latency.observe({ route }, ms / 1000);
  }
}
