/**
 * Browsers: the frames of a <video> element or a MediaStream (a camera from getUserMedia), as
 * requestVideoFrameCallback presents them, each timed by its media time and captured as an
 * ImageBitmap at once (the element moves on to the next frame while one is classified). The DOM
 * types are looked up at run time, so this module loads in Node.
 */
import type { Frame } from './frame.ts';

/** What the stream reads of a <video> element (HTMLVideoElement has it all). */
export interface VideoElementLike {
  requestVideoFrameCallback(
    callback: (now: number, metadata: { mediaTime: number; presentedFrames: number }) => void,
  ): number;
  cancelVideoFrameCallback(handle: number): void;
  addEventListener(type: 'ended', listener: () => void): void;
  removeEventListener(type: 'ended', listener: () => void): void;
  readonly ended: boolean;
}

/** A MediaStream (getUserMedia's camera): played through a muted <video> element of its own. */
export interface MediaStreamLike {
  getVideoTracks(): unknown[];
}

export type VideoSource = VideoElementLike | MediaStreamLike;

export function isVideoSource(source: unknown): source is VideoSource {
  const s = source as Partial<VideoElementLike & MediaStreamLike>;
  return typeof s?.requestVideoFrameCallback === 'function' || typeof s?.getVideoTracks === 'function';
}

/** Every presented frame until the video ends or `signal` aborts. */
export async function* videoFrames(source: VideoSource, signal: AbortSignal): AsyncGenerator<Frame> {
  const video = 'getVideoTracks' in source ? await playStream(source) : source;
  const queue: Frame[] = [];
  let wake: (() => void) | null = null;
  let done = video.ended;
  let handle = 0;
  const notify = () => {
    wake?.();
    wake = null;
  };
  const onEnded = () => {
    done = true;
    notify();
  };
  const onFrame = async (_now: number, metadata: { mediaTime: number; presentedFrames: number }) => {
    handle = video.requestVideoFrameCallback(onFrame);
    const bitmap = await createImageBitmap(video as unknown as ImageBitmapSource);
    queue.push({
      image: bitmap,
      index: metadata.presentedFrames,
      t: Number((1000 * metadata.mediaTime).toFixed(1)),
      release: () => bitmap.close(),
    });
    notify();
  };
  video.addEventListener('ended', onEnded);
  signal.addEventListener('abort', onEnded, { once: true });
  handle = video.requestVideoFrameCallback(onFrame);
  try {
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      if (done) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    video.cancelVideoFrameCallback(handle);
    video.removeEventListener('ended', onEnded);
    signal.removeEventListener('abort', onEnded);
    for (const frame of queue) frame.release?.();
  }
}

async function playStream(stream: MediaStreamLike): Promise<VideoElementLike> {
  const video = document.createElement('video');
  Object.assign(video, { srcObject: stream, muted: true, playsInline: true });
  await video.play();
  return video;
}
