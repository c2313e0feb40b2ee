// The page: picks, drops or films a photo, hands it to the worker, shows the top-5 and the latency.
// The worker does all the work; the page only draws. A chosen photo is shown with its answer, not
// before: decoding and painting it meanwhile took a core from the inference (the app's first photo
// ran 1.4x as long as the same photo given as an ImageBitmap). State for people and tests alike is in the
// DOM: body[data-state] is loading | ready | classified | error, #results[data-top] and
// [data-logits] (base64 of the f32 bytes) the last answer.
import type { Prediction } from '../src/index.ts';
import type { FromWorker, ToWorker } from './protocol.ts';
import { setUpTeach, teachAnswer } from './teach-page.ts';

const MODEL_URL = 'default.rnw';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const progress = $<HTMLProgressElement>('progress');
const fileInput = $<HTMLInputElement>('file');
const cameraButton = $<HTMLButtonElement>('camera');
const preview = $<HTMLImageElement>('preview');
const video = $<HTMLVideoElement>('video');
const results = $('results');

const worker = new Worker('worker.js');
const send = (message: ToWorker, transfer: Transferable[] = []) => worker.postMessage(message, transfer);

/** The last image sent: older results are not shown. */
let latest = 0;
let source: 'photo' | 'camera' = 'photo';
/** The photo being classified, shown when its answer arrives. */
let photo: { id: number; file: File } | null = null;
let camera: MediaStream | null = null;
let busy = false;

worker.onmessage = ({ data }: MessageEvent<FromWorker>) => {
  switch (data.type) {
    case 'progress': {
      const { bytesLoaded, totalBytes, layersReady, layerCount } = data;
      if (totalBytes) progress.value = bytesLoaded / totalBytes;
      $('loading-text').textContent =
        `Loading the model: ${megabytes(bytesLoaded)}${totalBytes ? ` of ${megabytes(totalBytes)}` : ''} MB, ${layersReady} of ${layerCount || '?'} layers ready`;
      return;
    }
    case 'ready':
      progress.value = 1;
      $('loading-text').textContent = `Model ready in ${(data.loadMs / 1000).toFixed(1)} s`;
      $('status').textContent = data.isolated
        ? `${data.threads} threads (cross-origin isolated)`
        : '1 thread (this page is not cross-origin isolated, so memory cannot be shared with workers)';
      $('status').dataset.threads = String(data.threads);
      cameraButton.disabled = !navigator.mediaDevices?.getUserMedia;
      setState('ready');
      return;
    case 'result':
      busy = false;
      if (data.id === photo?.id) showPhoto(photo.file);
      if (data.id === latest) show(data.top, data.logits, data.ms);
      if (camera) nextFrame();
      return;
    case 'taught':
    case 'file':
      return teachAnswer(data);
    case 'error':
      busy = false;
      $('status').textContent = data.message;
      setState('error');
  }
};

send({ type: 'load', url: MODEL_URL });
setUpTeach(send, video);
navigator.serviceWorker?.register('sw.js').catch(() => undefined);

fileInput.onchange = () => {
  if (fileInput.files?.[0]) classifyFile(fileInput.files[0]);
};

const drop = $('drop');
drop.ondragover = (event) => {
  event.preventDefault();
  drop.classList.add('over');
};
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) classifyFile(file);
};

cameraButton.onclick = async () => {
  if (camera) return stopCamera();
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
  } catch (error) {
    $('status').textContent = `No camera: ${(error as Error).message}`;
    return;
  }
  video.srcObject = camera;
  cameraButton.textContent = 'Stop the camera';
  showView('camera');
  video.onplaying = () => nextFrame();
};

async function classifyFile(file: File): Promise<void> {
  stopCamera();
  const bytes = await file.arrayBuffer();
  busy = true;
  photo = { id: ++latest, file };
  send({ type: 'classify', id: latest, image: bytes }, [bytes]);
}

function showPhoto(file: File): void {
  showView('photo');
  preview.src = URL.createObjectURL(file);
  preview.onload = () => URL.revokeObjectURL(preview.src);
}

/** One camera frame at a time: the next is grabbed when the last answer is in, so none queue up. */
async function nextFrame(): Promise<void> {
  if (!camera || busy || video.videoWidth === 0) return;
  busy = true;
  const frame = await createImageBitmap(video);
  send({ type: 'classify', id: ++latest, image: frame }, [frame]);
}

function stopCamera(): void {
  if (!camera) return;
  camera.getTracks().forEach((track) => track.stop());
  camera = null;
  video.srcObject = null;
  cameraButton.textContent = 'Use the camera';
}

function showView(kind: 'photo' | 'camera'): void {
  source = kind;
  $('view').hidden = false;
  preview.hidden = kind !== 'photo';
  video.hidden = kind !== 'camera';
}

function show(top: Prediction[], logits: Float32Array, ms: number): void {
  const rows = top.map(({ label, score }) => {
    const row = document.createElement('div');
    row.className = 'row';
    const name = Object.assign(document.createElement('span'), { className: 'label', textContent: label });
    const percent = Object.assign(document.createElement('span'), {
      className: 'score',
      textContent: `${(100 * score).toFixed(1)}%`,
    });
    const bar = Object.assign(document.createElement('div'), { className: 'bar' });
    bar.append(Object.assign(document.createElement('div'), { style: `width: ${(100 * score).toFixed(1)}%` }));
    row.append(name, percent, bar);
    return row;
  });
  $('top').replaceChildren(...rows);
  $('latency').textContent = `${ms.toFixed(0)} ms on this device (${source === 'camera' ? 'camera frame' : 'photo'})`;
  results.dataset.source = source;
  results.dataset.top = JSON.stringify(top);
  results.dataset.logits = base64(new Uint8Array(logits.buffer));
  setState('classified');
}

function setState(state: string): void {
  document.body.dataset.state = state;
}

function base64(bytes: Uint8Array): string {
  return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));
}

function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
