/** Pixels already decoded ({data, width, height}, which ImageData is too), turned into RGB. */
import { ImageDecodeError } from '../errors.ts';
import type { RgbImage } from './decode.ts';
import { checkDimensions, DEFAULT_MAX_PIXELS } from './header.ts';

/** Pixels already decoded: `data` is RGB or RGBA, rows top to bottom, no row padding. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export function isRawImage(source: object): source is RawImage {
  const s = source as Partial<RawImage>;
  return (
    (s.data instanceof Uint8Array || s.data instanceof Uint8ClampedArray) &&
    typeof s.width === 'number' &&
    typeof s.height === 'number'
  );
}

/**
 * RGB is returned as is (a view, no copy); RGBA loses its alpha, as PIL's convert('RGB') does.
 * Frames over 40 megapixels are refused, as encoded images are.
 */
export function rawToRgb({ data, width, height }: RawImage): RgbImage {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new ImageDecodeError(`an image of ${width}x${height} pixels is empty or malformed`);
  }
  const pixels = width * height;
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length !== 3 * pixels && bytes.length !== 4 * pixels) {
    throw new ImageDecodeError(
      `a ${width}x${height} frame needs ${3 * pixels} (RGB) or ${4 * pixels} (RGBA) bytes, got ${bytes.length}`,
    );
  }
  // The decoders' limit, which preprocessing's scratch memory is sized for.
  checkDimensions('RGB(A) frame', { width, height }, DEFAULT_MAX_PIXELS);
  if (bytes.length === 3 * pixels) return { width, height, data: bytes };
  const rgb = new Uint8Array(3 * pixels);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = bytes[j];
    rgb[i + 1] = bytes[j + 1];
    rgb[i + 2] = bytes[j + 2];
  }
  return { width, height, data: rgb };
}

/** Whether every pixel of RGBA data is opaque. */
export function isOpaque(rgba: Uint8Array | Uint8ClampedArray): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 255) return false;
  return true;
}
