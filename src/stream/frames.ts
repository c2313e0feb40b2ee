/**
 * `model.classifyStream(source)`: the frames of a live source, classified one at a time, newest
 * first. Live video comes faster than a model classifies it, and an answer about a frame from
 * seconds ago is useless: so only the newest frame is ever waiting, and each result says how many
 * frames were dropped unclassified since the one before. Frames go on arriving while a frame is
 * classified and while the caller handles its result.
 *
 * Sources: MJPEG bytes (a Node stream, a `fetch` body, any async iterable of Uint8Array), whose
 * frames are timed by their arrival; in browsers a <video> element or a MediaStream, whose frames
 * come from requestVideoFrameCallback and are timed by their media time.
 */
import { ImageDecodeError, ResnetWasmError } from '../errors.ts';
import type { ImageSource } from '../image/sources.ts';
import { checkDecoder, checkTop } from '../options/validate.ts';
import type { Classification, ClassifyOptions } from '../runtime/classification.ts';
import type { Frame } from './frame.ts';
import { JpegSplitter } from './mjpeg.ts';
import { isVideoSource, type VideoSource, videoFrames } from './video.ts';

/** MJPEG bytes, or (browsers) a video element or a MediaStream. */
export type FrameSource = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | VideoSource;

export interface StreamOptions extends ClassifyOptions {
  /** Stops the stream: the iteration ends (the source is cancelled). */
  signal?: AbortSignal;
}

export interface FrameClassification extends Classification {
  /** The frame's number in the source, from 1. */
  frame: number;
  /** Milliseconds: the frame's media time (video), else when its last byte arrived since the stream was opened. */
  t: number;
  /** Frames dropped unclassified since the previous result. */
  dropped: number;
}

export interface StreamSummary {
  /** Bytes read (MJPEG sources). */
  bytes: number;
  /** Complete frames received. */
  frames: number;
  classified: number;
  /** Frames replaced by a newer one before they could be classified. */
  dropped: number;
  /** Frames whose bytes broke a JPEG's structure or did not decode. */
  corrupt: number;
  /** Frames cut short: by the next frame's start, or by the end of the stream. */
  truncated: number;
}

/** What the stream needs of a model (Model has it). */
export interface FrameClassifier {
  classify(image: ImageSource, options: ClassifyOptions): Promise<Classification>;
}

/** The results as an async iterable, and the counts so far (final once the iteration has ended). */
export class FrameStream implements AsyncIterable<FrameClassification> {
  readonly summary: StreamSummary = { bytes: 0, frames: 0, classified: 0, dropped: 0, corrupt: 0, truncated: 0 };

  /** @internal */
  constructor(
    private readonly model: FrameClassifier,
    private readonly source: FrameSource,
    private readonly options: StreamOptions,
  ) {
    // Bad options fail at the call, as classify's do.
    checkTop(options.top);
    checkDecoder(options.decoder);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<FrameClassification> {
    const newest = new NewestFrame(this.summary);
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    this.options.signal?.addEventListener('abort', onAbort, { once: true });
    const frames = isVideoSource(this.source)
      ? videoFrames(this.source, stop.signal)
      : mjpegFrames(this.source, this.summary, stop.signal);
    const producing = produce(frames, newest);
    try {
      for (let next = await newest.take(); next !== null; next = await newest.take()) {
        const result = await this.classify(next.frame);
        if (result !== null) yield { ...result, frame: next.frame.index, t: next.frame.t, dropped: next.dropped };
      }
      await producing;
    } finally {
      stop.abort();
      newest.close();
      this.options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** A frame that does not decode is counted and skipped: the stream goes on. */
  private async classify(frame: Frame): Promise<Classification | null> {
    try {
      const result = await this.model.classify(frame.image, this.options);
      this.summary.classified++;
      return result;
    } catch (error) {
      if (!(error instanceof ImageDecodeError)) throw error;
      this.summary.corrupt++;
      return null;
    } finally {
      frame.release?.();
    }
  }
}

/** Feeds `newest` until the frames end, fail or are stopped. */
async function produce(frames: AsyncIterable<Frame>, newest: NewestFrame): Promise<void> {
  try {
    for await (const frame of frames) newest.put(frame);
    newest.end();
  } catch (error) {
    newest.end(error);
  }
}

/** The one frame waiting to be classified; a newer one replaces it, and the older counts as dropped. */
class NewestFrame {
  private frame: Frame | null = null;
  private droppedSince = 0;
  private ended = false;
  private failure: unknown = undefined;
  private wake: (() => void) | null = null;

  constructor(private readonly summary: StreamSummary) {}

  put(frame: Frame): void {
    this.summary.frames++;
    if (this.frame !== null) {
      this.frame.release?.();
      this.summary.dropped++;
      this.droppedSince++;
    }
    this.frame = frame;
    this.notify();
  }

  end(failure?: unknown): void {
    this.ended = true;
    this.failure = failure;
    this.notify();
  }

  /** The newest frame, once one is there (null at the end). Waits a turn first, so that a burst of frames leaves only its newest. */
  async take(): Promise<{ frame: Frame; dropped: number } | null> {
    while (this.frame === null && !this.ended) await new Promise<void>((resolve) => (this.wake = resolve));
    await nextTurn();
    if (this.failure !== undefined) throw this.failure;
    const frame = this.frame;
    if (frame === null) return null;
    const dropped = this.droppedSince;
    this.frame = null;
    this.droppedSince = 0;
    return { frame, dropped };
  }

  close(): void {
    this.frame?.release?.();
    this.frame = null;
  }

  private notify(): void {
    this.wake?.();
    this.wake = null;
  }
}

/** After the I/O already pending (setImmediate in Node), else after a task. */
function nextTurn(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (callback: () => void) => void }).setImmediate;
  return new Promise((resolve) => (immediate ?? ((callback: () => void) => setTimeout(callback, 0)))(resolve));
}

/** JPEG frames from MJPEG bytes, each timed on arrival (ms since the stream was opened). */
async function* mjpegFrames(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  summary: StreamSummary,
  signal: AbortSignal,
): AsyncGenerator<Frame> {
  const start = performance.now();
  const splitter = new JpegSplitter();
  let index = 0;
  for await (const chunk of byteChunks(source, signal)) {
    if (!(chunk instanceof Uint8Array))
      throw new ResnetWasmError(`the MJPEG stream yielded ${typeof chunk}, expected Uint8Array chunks`);
    summary.bytes += chunk.length;
    const frames = splitter.push(chunk);
    const t = Number((performance.now() - start).toFixed(1));
    summary.corrupt = splitter.corrupt;
    summary.truncated = splitter.truncated;
    for (const image of frames) yield { image, index: ++index, t };
  }
  summary.corrupt = splitter.corrupt;
  summary.truncated = splitter.truncated + (splitter.pendingBytes > 0 ? 1 : 0);
}

/** A stream's chunks until it ends or `signal` aborts; the source is cancelled when the caller stops early. */
async function* byteChunks(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<unknown> {
  if (!('getReader' in source)) {
    const iterator = source[Symbol.asyncIterator]();
    const onAbort = () => void iterator.return?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (let next = await iterator.next(); !next.done && !signal.aborted; next = await iterator.next())
        yield next.value;
    } finally {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) await iterator.return?.();
    }
    return;
  }
  const reader = source.getReader();
  const onAbort = () => void reader.cancel().catch(() => undefined);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (let next = await reader.read(); !next.done && !signal.aborted; next = await reader.read()) yield next.value;
  } finally {
    signal.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
}
