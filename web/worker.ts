// The classification worker: loads the model once (streamed, kept in the Cache API for offline
// use), then classifies what the page sends, so the page never freezes during an inference. On a
// cross-origin isolated page the model runs on every core (up to 4): Web Workers share its memory.
// Photos are decoded here by the browser (createImageBitmap, then an OffscreenCanvas).
import { loadModel, type Model } from '../src/index.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import { Teacher } from './teacher.ts';

const MODEL_CACHE = 'resnet-wasm-models';
/** A photo's size: the warm-up then also meets a canvas of a photo's size and a downscaling resampler. */
const WARM_UP = { width: 1024, height: 768 };
/**
 * Warm-up inferences. After one, the first photo still ran the worker's first major GC (of what
 * loading the model left) and compiled more of the JavaScript around the kernels: 2-4 ms more CPU
 * in the inference's threads than the second photo. After two, neither.
 */
const WARM_UPS = 2;

const post = (message: FromWorker) => postMessage(message);
let model: Promise<Model> | undefined;
let teacher: Promise<Teacher> | undefined;

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === 'load') {
    model = load(message.url);
    model.catch((error: Error) => post({ type: 'error', message: `the model did not load: ${error.message}` }));
    teacher = model.then(restoreTeacher);
    teacher.catch(() => undefined); // a model that did not load is reported above
    return;
  }
  if (message.type !== 'classify')
    return teachMessage(message).catch((error: Error) => post({ type: 'error', message: error.message }));
  try {
    const current = (await teacher!).taught ?? (await model!);
    const result = await current.classify(message.image);
    post({ type: 'result', id: message.id, ...result });
  } catch (error) {
    post({ type: 'error', id: message.id, message: (error as Error).message });
  } finally {
    closeBitmap(message.image);
  }
};

async function restoreTeacher(base: Model): Promise<Teacher> {
  const restored = new Teacher(base);
  const start = performance.now();
  try {
    if (await restored.restore()) post({ type: 'taught', classes: restored.classes(), ms: performance.now() - start });
  } catch (error) {
    // Classification goes on without the kept classes (no Cache API here, or a damaged entry).
    post({ type: 'error', message: `the taught classes could not be restored: ${(error as Error).message}` });
  }
  return restored;
}

async function teachMessage(message: Exclude<ToWorker, { type: 'load' | 'classify' }>): Promise<void> {
  const current = await teacher!;
  const start = performance.now();
  if (message.type === 'download') {
    const bytes = (current.taught ?? (await model!)).toFile().buffer as ArrayBuffer;
    return (postMessage as (message: FromWorker, transfer: Transferable[]) => void)({ type: 'file', bytes }, [bytes]);
  }
  if (message.type === 'forget') await current.forget();
  else {
    const base = await model!;
    const embedding = await base.embed(message.image).finally(() => closeBitmap(message.image));
    await current.add(message.label, embedding);
  }
  post({ type: 'taught', classes: current.classes(), ms: performance.now() - start });
}

async function load(url: string): Promise<Model> {
  const start = performance.now();
  const loaded = await loadModel(url, {
    cache: MODEL_CACHE,
    threads: 'auto',
    onProgress: (progress) => post({ type: 'progress', ...progress }),
  });
  await warmUp(loaded);
  post({
    type: 'ready',
    threads: loaded.layers.threads,
    isolated: crossOriginIsolated,
    loadMs: performance.now() - start,
  });
  return loaded;
}

/**
 * Inferences of a photo-sized JPEG made here, decoded as photos are, before the app says it is
 * ready: the first photo then finds the decoder, a canvas of its size, the resampler, the kernels
 * and the garbage collector warm. (What else slowed the app's first photo was the page decoding it
 * for display at the same time: app.ts shows it with the answer.)
 */
async function warmUp(model: Model): Promise<void> {
  const { width, height } = WARM_UP;
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d')!;
  const gradient = context.createLinearGradient(0, 0, width, height);
  gradient.addColorStop(0, 'rgb(120, 140, 90)');
  gradient.addColorStop(1, 'rgb(40, 60, 150)');
  context.fillStyle = gradient;
  context.fillRect(0, 0, width, height);
  const jpeg = await (await canvas.convertToBlob({ type: 'image/jpeg' })).arrayBuffer();
  for (let run = 0; run < WARM_UPS; run++) await model.classify(jpeg);
}

function closeBitmap(image: ArrayBuffer | ImageBitmap): void {
  if (image instanceof ImageBitmap) image.close();
}
