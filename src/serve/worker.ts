/**
 * A classification worker (a worker_thread): loads its own copy of the model on one thread, then
 * decodes, preprocesses and classifies one job at a time, so the main thread only does HTTP.
 * Bundled as dist/serve-worker.js (scripts/build.js).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadModel, type Model } from '../runtime/model.ts';
import { ImageDecodeError } from '../errors.ts';
import { ServeError } from './errors.ts';
import { checkImageHeader } from './limits.ts';
import type { EmbedResult, Job, JobReply, WorkerConfig, WorkerMessage } from './protocol.ts';

const port = parentPort!;
const config = workerData as WorkerConfig;
const model = await loadModel(config.modelPath, { threads: 1 });
port.on('message', async (job: Job) => port.postMessage((await classifyJob(model, job)) satisfies WorkerMessage));
port.postMessage({ ready: true } satisfies WorkerMessage);

async function classifyJob(model: Model, job: Job): Promise<JobReply> {
  try {
    checkImageHeader(job.bytes, job.maxPixels);
    if (job.embed) return { id: job.id, result: await embedResult(model, job.bytes) };
    const { top, ms, unknown } = await model.classify(job.bytes, { top: job.top });
    return { id: job.id, result: { top, ms: Number(ms.toFixed(1)), ...(unknown === undefined ? {} : { unknown }) } };
  } catch (error) {
    return { id: job.id, error: describe(error) };
  }
}

async function embedResult(model: Model, bytes: Uint8Array): Promise<EmbedResult> {
  const start = performance.now();
  const embedding = Array.from(await model.embed(bytes));
  return { embedding, ms: Number((performance.now() - start).toFixed(1)) };
}

/** A refused or undecodable image is the client's fault; anything else is ours, and says so. */
function describe(error: unknown): { kind: ServeError['kind']; message: string } {
  if (error instanceof ServeError) return { kind: error.kind, message: error.message };
  if (error instanceof ImageDecodeError) return { kind: 'bad-image', message: error.message };
  return { kind: 'internal', message: `internal error: ${error instanceof Error ? error.message : String(error)}` };
}
