/**
 * A classification worker (a worker_thread): loads its own copy of the model (on `threads` threads), then
 * decodes, preprocesses and classifies one job at a time, so the main thread only does HTTP.
 * Bundled as dist/serve-worker.js (scripts/build.js).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ImageDecodeError } from '../errors.ts';
import { quantizingMap } from '../image/preprocess.ts';
import { type Classification, loadModel, type Model } from '../runtime/model.ts';
import { topK } from '../runtime/topk.ts';
import { ServeError } from './errors.ts';
import { checkImageHeader } from './limits.ts';
import type {
  ClassifyResult,
  EmbedResult,
  Job,
  JobReply,
  ModelSummary,
  WorkerConfig,
  WorkerMessage,
} from './protocol.ts';
import { tensorToInput } from './tensor-input.ts';

const port = parentPort!;
const config = workerData as WorkerConfig;
const model = await loadModel(config.modelPath, { threads: config.threads });
const { architecture, preprocessing, tensors, labels } = model.header;
const inputMap = quantizingMap(preprocessing, tensors[0]);
const summary: ModelSummary = { architecture, input: { h: tensors[0].h, w: tensors[0].w, c: tensors[0].c }, labels };
port.on('message', async (job: Job) => port.postMessage((await classifyJob(model, job)) satisfies WorkerMessage));
port.postMessage({ ready: true, model: summary } satisfies WorkerMessage);

async function classifyJob(model: Model, job: Job): Promise<JobReply> {
  try {
    if (job.embed) {
      checkImageHeader(job.bytes, job.maxPixels);
      return { id: job.id, result: await embedResult(model, job.bytes) };
    }
    const { top, logits, ms, unknown } = job.tensor ? runTensor(model, job) : await classifyImage(model, job);
    const result: ClassifyResult = { top, ms: Number(ms.toFixed(1)), ...(unknown === undefined ? {} : { unknown }) };
    if (job.logits) result.logits = logits;
    return { id: job.id, result };
  } catch (error) {
    return { id: job.id, error: describe(error) };
  }
}

function classifyImage(model: Model, job: Job) {
  checkImageHeader(job.bytes, job.maxPixels);
  return model.classify(job.bytes, { top: job.top });
}

function runTensor(model: Model, job: Job): Classification {
  const start = performance.now();
  const logits = model.run(tensorToInput(job.bytes, job.tensor!, tensors[0], inputMap, tensors[0]));
  return { top: topK(logits, model.labels, job.top), logits, ms: performance.now() - start };
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
