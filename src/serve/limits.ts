/**
 * The bounds that keep one client from taking the service down: how much it may send, how slowly,
 * how large an image it may announce, how many may wait, and how long an answer may take.
 */
import { imageSize } from 'image-size';
import { ServeError } from './errors.ts';

export interface ServeLimits {
  /** Largest request body in bytes (a multipart form counts whole). */
  maxBodyBytes: number;
  /** Largest image, width x height as its header announces it, checked before any decoding. */
  maxPixels: number;
  /** A body must have arrived this many milliseconds after its headers (408 otherwise). */
  bodyTimeoutMs: number;
  /** The longest a request waits for its answer once its body is in, queue included (504). */
  timeoutMs: number;
  /** Images waiting for a worker; past it, 429 with Retry-After. */
  queueSize: number;
  /** Images in one /v1/classify/batch form. */
  maxBatch: number;
}

export const DEFAULT_LIMITS: ServeLimits = {
  maxBodyBytes: 16 * 2 ** 20,
  // A 16 MP photo: jpeg-js needs about 28 bytes a pixel to decode (450 MB), and every worker may be
  // decoding at once.
  maxPixels: 16_000_000,
  bodyTimeoutMs: 10_000,
  timeoutMs: 30_000,
  queueSize: 64,
  maxBatch: 16,
};

/**
 * Refuses an image whose header announces more than maxPixels: a decompression bomb (a few KB that
 * decode to gigabytes) never reaches a decoder. Bytes whose size cannot be read go on to the
 * decoder, whose error says what is wrong with them.
 */
export function checkAnnouncedPixels(bytes: Uint8Array, maxPixels: number): void {
  let size: { width: number; height: number };
  try {
    size = imageSize(bytes);
  } catch {
    return;
  }
  const pixels = size.width * size.height;
  if (pixels > maxPixels) {
    throw new ServeError('too-many-pixels', `the image announces ${size.width}x${size.height} pixels (${pixels}), more than the ${maxPixels} allowed (--max-pixels)`);
  }
}
