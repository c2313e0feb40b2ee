/**
 * The workers that hold the model (worker.ts), fed from one bounded queue. A worker takes one job at
 * a time. A worker that dies fails only the job it was running and is replaced; a job that waits or
 * runs past the timeout is answered 504 (a running one finishes in its worker, unheard).
 */
import { Worker } from 'node:worker_threads';
import { ResnetWasmError } from '../errors.ts';
import { ServeError } from './errors.ts';
import type {
  ClassifyResult,
  EmbedResult,
  Job,
  JobOptions,
  JobReply,
  ModelSummary,
  WorkerConfig,
  WorkerMessage,
} from './protocol.ts';
import { BoundedQueue } from './queue.ts';

export interface PoolOptions {
  modelPath: string;
  workers: number;
  /** Threads each worker's model runs on (default 1). */
  threads?: number;
  queueSize: number;
  timeoutMs: number;
  maxPixels: number;
  /** Told of each finished inference (its milliseconds in the worker) and each replaced worker. */
  observer?: PoolObserver;
}

export interface PoolObserver {
  inferred(ms: number): void;
  workerReplaced(reason: string): void;
}

/** A request's image, from the moment it is queued until it is answered. */
interface Pending {
  job: Job;
  settled: boolean;
  resolve(result: ClassifyResult | EmbedResult): void;
  reject(error: ServeError): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  running: Pending | null;
}

/** A replacement that fails to load the model is tried again after this long. */
const RESPAWN_DELAY_MS = 1000;
/** Weight of the newest inference in the running mean that Retry-After is estimated from. */
const MEAN_WEIGHT = 0.1;

export class WorkerPool {
  private readonly queue: BoundedQueue<Pending>;
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private meanMs = 0;
  private closing = false;
  private summary: ModelSummary | null = null;

  private constructor(private readonly options: PoolOptions) {
    this.queue = new BoundedQueue(options.queueSize);
  }

  /** Starts the workers; resolves once every one has loaded the model, rejects if one cannot. */
  static async start(options: PoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(options);
    const loads = Array.from({ length: options.workers }, () => pool.spawn());
    try {
      await Promise.all(loads);
    } catch (error) {
      await pool.close();
      throw new ResnetWasmError(
        `a serve worker could not load the model ${options.modelPath}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return pool;
  }

  /** The model the workers hold, as the first one to load it described it. */
  get model(): ModelSummary {
    return this.summary!;
  }

  get size(): number {
    return this.slots.length;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  get readyWorkers(): number {
    return this.slots.filter((slot) => slot.ready).length;
  }

  get busyWorkers(): number {
    return this.slots.filter((slot) => slot.running !== null).length;
  }

  /**
   * Throws queue-full (with the seconds to wait) unless `count` images would be taken now, by idle
   * workers or the queue: a batch is taken whole or not at all.
   */
  checkRoom(count: number): void {
    const idle = this.slots.filter((slot) => slot.ready && slot.running === null).length;
    if (this.queue.hasRoom(Math.max(0, count - idle))) return;
    const waitSeconds = Math.ceil(((this.queue.length / Math.max(1, this.readyWorkers)) * this.meanMs) / 1000);
    throw new ServeError(
      'queue-full',
      `${this.queue.length} images are waiting, the most the server queues (--queue): try again later`,
      {
        retryAfter: Math.max(1, waitSeconds),
      },
    );
  }

  /**
   * Queues one image. Rejects with a ServeError: queue-full (with retryAfter), timeout,
   * worker-crashed, client-closed when `signal` aborts while it waits, shutting-down, or what the
   * worker found wrong with the image. `options` make it a preprocessed tensor, or ask for the logits.
   */
  classify(bytes: Uint8Array, top: number, signal?: AbortSignal, options: JobOptions = {}): Promise<ClassifyResult> {
    return this.submit({ ...options, bytes, top }, signal) as Promise<ClassifyResult>;
  }

  /** Queues one image to embed, with classify's queue, timeout and errors. */
  embed(bytes: Uint8Array, signal?: AbortSignal): Promise<EmbedResult> {
    return this.submit({ bytes, top: 1, embed: true }, signal) as Promise<EmbedResult>;
  }

  private submit(work: Omit<Job, 'id' | 'maxPixels'>, signal?: AbortSignal): Promise<ClassifyResult | EmbedResult> {
    return new Promise((resolve, reject) => {
      if (this.closing) throw new ServeError('shutting-down', 'the server is shutting down');
      if (signal?.aborted) throw clientClosed();
      this.checkRoom(1);
      const job: Job = { ...work, id: this.nextId++, bytes: ownBuffer(work.bytes), maxPixels: this.options.maxPixels };
      this.queue.offer(this.track(job, resolve, reject, signal));
      this.dispatch();
    });
  }

  /** Ends worker `index` at once, as a crash would: its job fails, a new worker takes its place. */
  async terminateWorker(index: number): Promise<void> {
    await this.slots[index].worker.terminate();
  }

  /** Refuses new jobs, fails the queued ones and stops every worker. */
  async close(): Promise<void> {
    this.closing = true;
    for (const pending of this.queue.drain())
      pending.reject(new ServeError('shutting-down', 'the server is shutting down'));
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }

  /**
   * Wraps a job with its timeout and its client's signal; settling it once clears both. A job that
   * is given up while queued leaves the queue, so no worker spends time on it.
   */
  private track(
    job: Job,
    resolve: (r: ClassifyResult | EmbedResult) => void,
    reject: (e: ServeError) => void,
    signal?: AbortSignal,
  ): Pending {
    const giveUp = (error: ServeError) => {
      this.queue.remove(pending);
      pending.reject(error);
    };
    const onAbort = () => giveUp(clientClosed());
    const timer = setTimeout(
      () => giveUp(new ServeError('timeout', `no answer within ${this.options.timeoutMs} ms (--timeout)`)),
      this.options.timeoutMs,
    );
    const settle = () => {
      pending.settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const pending: Pending = {
      job,
      settled: false,
      resolve: (result) => {
        if (pending.settled) return;
        settle();
        resolve(result);
      },
      reject: (error) => {
        if (pending.settled) return;
        settle();
        reject(error);
      },
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    return pending;
  }

  /** Hands queued jobs to idle workers. */
  private dispatch(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.running !== null) continue;
      const pending = this.queue.take();
      if (pending === undefined) return;
      slot.running = pending;
      slot.worker.postMessage(pending.job, [pending.job.bytes.buffer as ArrayBuffer]);
    }
  }

  /** Starts a worker in a new slot; resolves when its model has loaded. */
  private spawn(): Promise<void> {
    const slot: Slot = { worker: startWorker(this.workerConfig()), ready: false, running: null };
    this.slots.push(slot);
    return this.watch(slot);
  }

  private watch(slot: Slot): Promise<void> {
    return new Promise((resolve, reject) => {
      slot.worker.on('message', (message: WorkerMessage) => {
        if ('ready' in message) {
          slot.ready = true;
          this.summary ??= message.model;
          resolve();
        } else {
          this.answer(slot, message);
        }
        this.dispatch();
      });
      slot.worker.on('error', reject);
      slot.worker.on('exit', (code) => {
        // A worker that dies loading is its starter's to handle (start() fails, replace() retries).
        if (!slot.ready) return reject(new Error(`the worker stopped while loading (exit code ${code})`));
        if (!this.closing) this.replace(slot, code);
      });
    });
  }

  private answer(slot: Slot, reply: JobReply): void {
    const pending = slot.running;
    slot.running = null;
    if (pending === null || pending.job.id !== reply.id) return;
    if ('error' in reply) return pending.reject(new ServeError(reply.error.kind, reply.error.message));
    this.meanMs = this.meanMs === 0 ? reply.result.ms : this.meanMs + MEAN_WEIGHT * (reply.result.ms - this.meanMs);
    this.options.observer?.inferred(reply.result.ms);
    pending.resolve(reply.result);
  }

  private workerConfig(): WorkerConfig {
    return { modelPath: this.options.modelPath, threads: this.options.threads ?? 1 };
  }

  /** A worker has died: its job fails, a fresh worker takes the slot (again later if it cannot load). */
  private replace(slot: Slot, code: number): void {
    slot.running?.reject(
      new ServeError(
        'worker-crashed',
        `the worker classifying this image stopped (exit code ${code}); it has been replaced`,
      ),
    );
    slot.running = null;
    slot.ready = false;
    slot.worker = startWorker(this.workerConfig());
    this.options.observer?.workerReplaced(`exit code ${code}`);
    this.watch(slot).catch(() => setTimeout(() => this.closing || this.replace(slot, code), RESPAWN_DELAY_MS).unref());
  }
}

/**
 * The worker's entry: dist/serve-worker.js beside the bundled CLI (scripts/build.js), or
 * src/serve/worker.ts when this module runs from source under tsx, which registers its loader on
 * the main thread only: there the worker registers it before importing its entry.
 */
function startWorker(workerData: WorkerConfig): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL('./serve-worker.js', import.meta.url), { workerData });
  const entry = JSON.stringify(new URL('./worker.ts', import.meta.url).href);
  return new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${entry}); });`, {
    eval: true,
    workerData,
  });
}

function clientClosed(): ServeError {
  return new ServeError('client-closed', 'the client closed the connection before the answer');
}

/** A copy in an ArrayBuffer of its own: a body may view a pooled buffer, which must not be transferred. */
function ownBuffer(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
