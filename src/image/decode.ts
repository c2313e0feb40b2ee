/**
 * Image files → 8-bit RGB pixels, the way torchvision's loader sees them: PIL's
 * `Image.open(f).convert('RGB')`. Alpha is dropped (not composited), grayscale is replicated,
 * 16-bit samples keep their high byte, palettes are expanded, EXIF orientation is ignored.
 */

import { type DecodedPng, decode as decodePngFile } from 'fast-png';
import jpeg from 'jpeg-js';
import { ImageDecodeError } from '../errors.ts';
import {
  checkedSize,
  DEFAULT_MAX_PIXELS,
  type Dimensions,
  describeHead,
  type SniffedFormat,
  sniffFormat,
} from './header.ts';

export { DEFAULT_MAX_PIXELS } from './header.ts';

export interface RgbImage {
  width: number;
  height: number;
  /** RGB interleaved, 8 bits a sample, rows top to bottom. */
  data: Uint8Array;
}

export interface DecodeOptions {
  /** Refuse images with more pixels than this (default 40 megapixels). */
  maxPixels?: number;
}

/**
 * The pure-JavaScript decoder: what browsers use, and Node when sharp is not installed. Reads
 * JPEG and PNG; WebP and other formats need sharp (src/image/native.ts).
 */
export function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): RgbImage {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const format = sniffFormat(bytes);
  if (format === null || format === 'WebP') throw unsupported(format, bytes);
  const size = checkedSize(format, bytes, maxPixels);
  let image: RgbImage;
  try {
    image = format === 'PNG' ? decodePng(bytes) : decodeJpeg(bytes, size, maxPixels);
  } catch (error) {
    if (error instanceof ImageDecodeError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ImageDecodeError(`corrupt or truncated ${format} data: ${reason}`, { cause: error });
  }
  // A decoder that disagrees with its own header has misread the file.
  if (image.width !== size.width || image.height !== size.height) {
    throw new ImageDecodeError(
      `corrupt ${format} data: header says ${size.width}x${size.height}, decoder produced ${image.width}x${image.height}`,
    );
  }
  return image;
}

function unsupported(format: SniffedFormat | null, bytes: Uint8Array): ImageDecodeError {
  const what = format ?? `unsupported image format (first bytes ${describeHead(bytes)})`;
  return new ImageDecodeError(
    `${what}: only JPEG and PNG are supported by the JavaScript decoder (Node with sharp installed reads WebP and more). ` +
      'Decode it first and pass the pixels as { data, width, height } (RGB or RGBA), or, in a browser, an HTMLImageElement or ImageBitmap',
  );
}

/**
 * What jpeg-js will ask for, per pixel and component: 4 bytes of DCT blocks, 1 of component
 * plane, 1 of colour conversion; plus 3 of output. That is 27 bytes a pixel for CMYK. Blocks
 * are padded to whole MCUs (at most 32 pixels per axis), and tables need a little more.
 */
function jpegMemoryBudgetMB({ width, height }: Dimensions): number {
  const BYTES_PER_PIXEL = 28;
  const MCU_PADDING = 32;
  return Math.ceil(((width + MCU_PADDING) * (height + MCU_PADDING) * BYTES_PER_PIXEL) / 2 ** 20) + 1;
}

function decodeJpeg(bytes: Uint8Array, size: Dimensions, maxPixels: number): RgbImage {
  const decoded = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    // Refuse damaged files rather than hand back an image with missing blocks, like PIL.
    tolerantDecoding: false,
    // jpeg-js multiplies this back by 1e6; the +1 keeps float rounding from refusing an image of
    // exactly maxPixels.
    maxResolutionInMP: (maxPixels + 1) / 1e6,
    maxMemoryUsageInMB: jpegMemoryBudgetMB(size),
  });
  return { width: decoded.width, height: decoded.height, data: decoded.data };
}

function decodePng(bytes: Uint8Array): RgbImage {
  const png = decodePngFile(bytes, { checkCrc: true });
  const { width, height, channels, palette } = png;
  const isIndexed = palette !== undefined && channels === 1;
  const samples = eightBitSamples(png, isIndexed);
  const data = isIndexed ? expandPalette(samples, palette) : samplesToRgb(samples, width * height, channels);
  return { width, height, data };
}

/** One byte a sample, whatever the bit depth; palette indices stay indices. */
function eightBitSamples(png: DecodedPng, isIndexed: boolean): Uint8Array {
  if (png.depth === 16) return highBytes(png.data);
  if (png.depth === 8) return png.data as Uint8Array;
  // Grayscale at 1, 2 or 4 bits stretches to the full range (x255, x85, x17), as PIL's L;1/L;2/L;4.
  const scale = isIndexed ? 1 : 255 / ((1 << png.depth) - 1);
  return unpackBits(png.data, png.width, png.height, png.depth, scale);
}

function highBytes(data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] >> 8;
  return out;
}

/** Rows of sub-byte samples are packed most significant bits first and padded to whole bytes. */
function unpackBits(data: ArrayLike<number>, width: number, height: number, depth: number, scale: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const bytesPerRow = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    const row = y * bytesPerRow;
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const shift = 8 - depth - (bit & 7);
      out[y * width + x] = ((data[row + (bit >> 3)] >> shift) & mask) * scale;
    }
  }
  return out;
}

/** Gray (+alpha) is replicated; alpha is dropped, as PIL's convert('RGB') does. */
function samplesToRgb(samples: Uint8Array, pixels: number, channels: number): Uint8Array {
  if (channels === 3) return samples;
  const rgb = new Uint8Array(pixels * 3);
  const isColor = channels >= 3;
  for (let i = 0, src = 0, dst = 0; i < pixels; i++, src += channels, dst += 3) {
    rgb[dst] = samples[src];
    rgb[dst + 1] = samples[isColor ? src + 1 : src];
    rgb[dst + 2] = samples[isColor ? src + 2 : src];
  }
  return rgb;
}

/** Indices past the end of the palette read as black, as in PIL's zero-filled palettes. */
function expandPalette(indices: Uint8Array, palette: number[][]): Uint8Array {
  const rgb = new Uint8Array(indices.length * 3);
  for (let i = 0; i < indices.length; i++) {
    const color = palette[indices[i]];
    if (color === undefined) continue;
    rgb[i * 3] = color[0];
    rgb[i * 3 + 1] = color[1];
    rgb[i * 3 + 2] = color[2];
  }
  return rgb;
}
