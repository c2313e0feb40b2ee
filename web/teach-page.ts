// Teach mode, on the page: name a class, then add photos (chosen or dropped on the Teach card) or
// hold the capture button while the camera runs (a frame every CAPTURE_MS). The worker teaches
// after each example; #classes[data-classes] holds the taught classes and their counts.
import type { FromWorker, ToWorker } from './protocol.ts';

const CAPTURE_MS = 250;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export function setUpTeach(
  send: (message: ToWorker, transfer?: Transferable[]) => void,
  video: HTMLVideoElement,
): void {
  const name = $<HTMLInputElement>('class-name');
  const label = () => name.value.trim();
  const addFiles = async (files: FileList | null | undefined) => {
    if (!label()) return status('Name the class first');
    for (const file of Array.from(files ?? [])) {
      const bytes = await file.arrayBuffer();
      send({ type: 'teach', label: label(), image: bytes }, [bytes]);
    }
  };
  const files = $<HTMLInputElement>('teach-files');
  files.onchange = () => addFiles(files.files).then(() => (files.value = ''));
  const card = $('teach');
  card.ondragover = (event) => event.preventDefault();
  card.ondrop = (event) => {
    event.preventDefault();
    addFiles(event.dataTransfer?.files);
  };
  let capturing: ReturnType<typeof setInterval> | undefined;
  const capture = $<HTMLButtonElement>('capture');
  capture.onpointerdown = () => {
    if (!label() || !video.srcObject) return status(label() ? 'Start the camera first' : 'Name the class first');
    capturing = setInterval(async () => {
      if (video.videoWidth === 0) return;
      const frame = await createImageBitmap(video);
      send({ type: 'teach', label: label(), image: frame }, [frame]);
    }, CAPTURE_MS);
  };
  capture.onpointerup = capture.onpointerleave = () => clearInterval(capturing);
  $('download').onclick = () => send({ type: 'download' });
  $('forget').onclick = () => send({ type: 'forget' });
}

/** The worker's Teach mode answers. */
export function teachAnswer(data: Extract<FromWorker, { type: 'taught' | 'file' }>): void {
  if (data.type === 'file') {
    const link = Object.assign(document.createElement('a'), {
      href: URL.createObjectURL(new Blob([data.bytes])),
      download: 'taught.rnw',
    });
    link.click();
    return URL.revokeObjectURL(link.href);
  }
  const list = $('classes');
  list.replaceChildren(
    ...data.classes.map(({ label, count }) =>
      Object.assign(document.createElement('div'), {
        textContent: `${label}: ${count} example${count === 1 ? '' : 's'}`,
      }),
    ),
  );
  list.dataset.classes = JSON.stringify(data.classes);
  const taught = data.classes.length >= 2;
  status(
    taught
      ? `Taught ${data.classes.length} classes in ${data.ms.toFixed(0)} ms: photos and the camera now answer with them`
      : 'Add examples of a second class to teach',
  );
  ($('download') as HTMLButtonElement).disabled = !taught;
  ($('forget') as HTMLButtonElement).disabled = data.classes.length === 0;
}

function status(text: string): void {
  $('teach-status').textContent = text;
}
