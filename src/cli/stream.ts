/**
 * `resnet-wasm classify --stream -`: classifies an MJPEG stream (concatenated JPEG frames, as
 * `rpicam-vid --codec mjpeg -o -` or `ffmpeg -f mjpeg -` write them) from stdin or a file, and prints
 * one JSON line per classified frame. Live video comes faster than a model classifies it, and an
 * answer about a frame from seconds ago is useless: so only the newest complete frame is ever
 * waiting, and each line says how many frames were dropped unclassified since the line before.
 *
 * One classification runs at a time. Frames go on being read while it runs (decoding is
 * asynchronous) and between classifications: everything that has arrived by the time the next
 * classification starts is read, and all but the newest frame of it are dropped.
 */
import { createReadStream } from 'node:fs';
import { ResnetWasmError } from '../errors.ts';
import type { Model } from '../runtime/model.ts';

export interface StreamSummary {
  /** Complete frames received. */
  frames: number;
  classified: number;
  /** Frames replaced by a newer one before they could be classified. */
  dropped: number;
  /** Frames whose bytes were not a JPEG's structure (skipped while splitting). */
  corrupt: number;
}

/** Reads frames from `source` ("-" for stdin, else a file or FIFO) until it ends; prints JSON lines. */
export async function classifyStream(model: Model, source: string, top: number): Promise<StreamSummary> {
  const input = source === '-' ? process.stdin : createReadStream(source);
  const splitter = new JpegSplitter();
  const summary: StreamSummary = { frames: 0, classified: 0, dropped: 0, corrupt: 0 };
  let newest: { frame: Uint8Array; index: number } | null = null;
  let droppedSince = 0;
  let running: Promise<void> | null = null;

  /** One classification at a time, each of the newest frame; frames arriving meanwhile wait or are dropped. */
  const classifyNewest = async () => {
    while (newest) {
      const { frame, index } = newest;
      newest = null;
      const line: Record<string, unknown> = { frame: index, dropped: droppedSince };
      droppedSince = 0;
      try {
        const result = await model.classify(frame, { top });
        Object.assign(line, { top: result.top, ms: Number(result.ms.toFixed(1)) });
        summary.classified++;
      } catch (error) {
        if (!(error instanceof ResnetWasmError)) throw error;
        line.error = error.message;
      }
      process.stdout.write(JSON.stringify(line) + '\n');
    }
    running = null;
  };

  const received = (frame: Uint8Array) => {
    summary.frames++;
    if (newest) {
      droppedSince++;
      summary.dropped++;
    }
    newest = { frame, index: summary.frames };
  };

  for await (const chunk of input) {
    splitter.push(chunk as Uint8Array).forEach(received);
    // After the reads already pending: a burst of frames leaves only its newest to classify.
    if (newest && !running) running = new Promise(setImmediate).then(classifyNewest);
  }
  await (running ?? classifyNewest());
  summary.corrupt = splitter.corrupt;
  if (splitter.pendingBytes > 0) process.stderr.write(`resnet-wasm: the stream ended inside a frame (${splitter.pendingBytes} bytes ignored)\n`);
  return summary;
}

/**
 * Cuts a byte stream into JPEG files: from SOI (FF D8) through EOI (FF D9), walking the marker
 * segments by their lengths (an EXIF thumbnail inside APP1 holds FF D9 too) and, after SOS, the
 * entropy-coded data, where FF is followed only by 00 (stuffing) or a restart marker. Bytes between
 * frames, and frames that break this structure, are skipped.
 */
export class JpegSplitter {
  private buffer = new Uint8Array(1 << 16);
  private length = 0;
  /** Where parsing resumes: the next marker of the current frame (0 before its SOI is found). */
  private pos = 0;
  private inFrame = false;
  private inScan = false;
  /** Frames skipped because their bytes were not a JPEG's structure. */
  corrupt = 0;

  get pendingBytes(): number {
    return this.inFrame ? this.length : 0;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    this.append(chunk);
    const frames: Uint8Array[] = [];
    for (let end = this.parse(); end > 0; end = this.parse()) {
      frames.push(this.buffer.slice(0, end));
      this.buffer.copyWithin(0, end, this.length);
      this.length -= end;
      this.pos = 0;
    }
    return frames;
  }

  private append(chunk: Uint8Array): void {
    if (this.length + chunk.length > this.buffer.length) {
      const grown = new Uint8Array(Math.max(2 * this.buffer.length, this.length + chunk.length));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(chunk, this.length);
    this.length += chunk.length;
  }

  /** The end of a complete frame at the buffer's start, or 0 until more bytes arrive. */
  private parse(): number {
    const b = this.buffer;
    if (!this.inFrame) {
      let soi = 0;
      while (soi + 1 < this.length && !(b[soi] === 0xff && b[soi + 1] === 0xd8)) soi++;
      // Drop what precedes the SOI (keeping a last FF that may start one).
      this.buffer.copyWithin(0, soi, this.length);
      this.length -= soi;
      if (this.length < 2) return 0;
      this.inFrame = true;
      this.inScan = false;
      this.pos = 2;
    }
    for (;;) {
      if (this.inScan) {
        // Entropy-coded data: skip to an FF that starts a marker other than RSTn.
        let p = this.pos;
        while (p + 1 < this.length && !(b[p] === 0xff && b[p + 1] !== 0x00 && (b[p + 1] < 0xd0 || b[p + 1] > 0xd7))) p++;
        this.pos = p;
        if (p + 1 >= this.length) return 0;
        this.inScan = false;
      }
      const p = this.pos;
      if (p + 1 >= this.length) return 0;
      if (b[p] !== 0xff) {
        // Not a JPEG after all (a damaged frame): skip it, look for the next SOI.
        this.corrupt++;
        this.inFrame = false;
        this.buffer.copyWithin(0, 1, this.length);
        this.length -= 1;
        return this.parse();
      }
      const marker = b[p + 1];
      if (marker === 0xff) {
        this.pos = p + 1; // fill byte
      } else if (marker === 0xd9) {
        this.inFrame = false;
        return p + 2;
      } else if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
        this.pos = p + 2; // markers without a length
      } else {
        if (p + 3 >= this.length) return 0;
        const segment = (b[p + 2] << 8) | b[p + 3];
        if (p + 2 + segment > this.length) return 0;
        this.pos = p + 2 + segment;
        this.inScan = marker === 0xda;
      }
    }
  }
}
