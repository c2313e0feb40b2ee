/**
 * MJPEG (concatenated JPEG files, as `rpicam-vid --codec mjpeg -o -` or `ffmpeg -f mjpeg -` write
 * them, and as an HTTP multipart camera stream carries them between its part headers) cut into
 * frames.
 *
 * JpegSplitter cuts a byte stream into JPEG files: from SOI (FF D8) through EOI (FF D9), walking the marker
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
  /** Frames cut short: a new frame's SOI came before their EOI (the end of the stream is `pendingBytes`). */
  truncated = 0;

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
        while (p + 1 < this.length && !(b[p] === 0xff && b[p + 1] !== 0x00 && (b[p + 1] < 0xd0 || b[p + 1] > 0xd7)))
          p++;
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
      } else if (marker === 0xd8) {
        // A new frame starts inside this one (a camera restarted, bytes were lost): drop the cut one.
        this.truncated++;
        this.buffer.copyWithin(0, p, this.length);
        this.length -= p;
        this.pos = 2;
        this.inScan = false;
      } else if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
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
