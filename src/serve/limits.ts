/**
 * The bounds that keep one client from taking the service down: how many connections it may hold,
 * how much it may send, how slowly, how large an image it may announce, how many may wait, and how
 * long an answer may take.
 */
import { imageSize } from 'image-size';
import { ServeError } from './errors.ts';

// The numbers alone, without this file's image-size: the command line's help shows them.
export { DEFAULT_LIMITS, type ServeLimits } from './default-limits.ts';

import type { ServeLimits } from './default-limits.ts';

/**
 * The longest silence of a legitimate connection: its request's headers and body (each within the
 * body timeout), then the wait for its answer (within the timeout). Longer, it is closed.
 */
export function idleTimeoutMs(limits: ServeLimits): number {
  return 2 * limits.bodyTimeoutMs + limits.timeoutMs;
}

/** What the service decodes: the formats of cameras and phones, not every format a decoder may read. */
const SERVED_FORMATS = new Set(['jpg', 'png', 'webp']);

/**
 * Refuses, from its header alone, what is not a JPEG, PNG or WebP image, and an image that announces
 * more than maxPixels: a decompression bomb (a few KB that decode to gigabytes) never reaches a
 * decoder, nor does a format (SVG, TIFF, ...) the service was not meant to parse.
 */
export function checkImageHeader(bytes: Uint8Array, maxPixels: number): void {
  const { width, height, type } = announcedSize(bytes);
  if (!SERVED_FORMATS.has(type))
    throw new ServeError('bad-image', `a ${type.toUpperCase()} image: the server takes JPEG, PNG and WebP`);
  const pixels = width * height;
  if (pixels > maxPixels) {
    throw new ServeError(
      'too-many-pixels',
      `the image announces ${width}x${height} pixels (${pixels}), more than the ${maxPixels} allowed (--max-pixels)`,
    );
  }
}

function announcedSize(bytes: Uint8Array): { width: number; height: number; type: string } {
  try {
    const { width, height, type } = imageSize(bytes);
    return { width, height, type: type ?? 'unknown' };
  } catch (error) {
    throw new ServeError('bad-image', `not a readable JPEG, PNG or WebP image: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
