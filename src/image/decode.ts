/**
 * Image files → 8-bit RGB pixels, the way torchvision's loader sees them: PIL's
 * `Image.open(f).convert('RGB')`. Alpha is dropped (not composited), grayscale is replicated,
 * 16-bit samples keep their high byte, palettes are expanded, EXIF orientation is ignored.
 */
import jpeg from 'jpeg-js';
import { decode as decodePngFile, type DecodedPng } from 'fast-png';
import { ImageDecodeError } from '../errors.ts';

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

export const DEFAULT_MAX_PIXELS = 40_000_000;

type ImageFormat = 'JPEG' | 'PNG';

interface Dimensions {
  width: number;
  height: number;
}

const SIGNATURES: [ImageFormat, number[]][] = [
  ['PNG', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ['JPEG', [0xff, 0xd8, 0xff]],
];

export function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): RgbImage {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const format = sniffFormat(bytes);
  const size = format === 'PNG' ? readPngDimensions(bytes) : readJpegDimensions(bytes);
  checkDimensions(format, size, maxPixels);
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

function sniffFormat(bytes: Uint8Array): ImageFormat {
  if (bytes.length === 0) throw new ImageDecodeError('empty input: expected JPEG or PNG data');
  for (const [format, signature] of SIGNATURES) {
    const compared = Math.min(bytes.length, signature.length);
    if (!signature.slice(0, compared).every((b, i) => bytes[i] === b)) continue;
    if (compared < signature.length) throw new ImageDecodeError(`truncated ${format}: the file ends inside its signature`);
    return format;
  }
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new ImageDecodeError(`unsupported image format (first bytes ${head}): only JPEG and PNG are supported`);
}

function checkDimensions(format: ImageFormat, { width, height }: Dimensions, maxPixels: number): void {
  if (width === 0 || height === 0) {
    throw new ImageDecodeError(`${format} header declares an empty image (${width}x${height})`);
  }
  if (width * height > maxPixels) {
    const megapixels = ((width * height) / 1e6).toFixed(1);
    throw new ImageDecodeError(
      `${format} image is ${width}x${height} (${megapixels} megapixels), over the limit of ${maxPixels} pixels`,
    );
  }
}

/** The IHDR chunk must come first, right after the signature. */
function readPngDimensions(bytes: Uint8Array): Dimensions {
  const IHDR_END = 24;
  if (bytes.length < IHDR_END) throw new ImageDecodeError('truncated PNG: the file ends inside its header');
  const chunkType = String.fromCharCode(...bytes.subarray(12, 16));
  if (chunkType !== 'IHDR') throw new ImageDecodeError(`corrupt PNG: first chunk is "${chunkType}", not IHDR`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/**
 * Walks the marker segments up to the frame header (SOFn). Stray bytes between segments are
 * skipped, as libjpeg does, so files that PIL opens are not refused here.
 */
function readJpegDimensions(bytes: Uint8Array): Dimensions {
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) {
      pos++;
      continue;
    }
    const marker = bytes[pos + 1];
    if (marker === 0xff || marker === 0x00) {
      pos++;
      continue;
    }
    if (isStandaloneMarker(marker)) {
      pos += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break;
    if (isStartOfFrame(marker)) {
      if (pos + 9 > bytes.length) break;
      return {
        height: (bytes[pos + 5] << 8) | bytes[pos + 6],
        width: (bytes[pos + 7] << 8) | bytes[pos + 8],
      };
    }
    pos += 2 + ((bytes[pos + 2] << 8) | bytes[pos + 3]);
  }
  throw new ImageDecodeError('truncated or corrupt JPEG: no frame header before the image data');
}

/** SOI, TEM and RSTn carry no length field. */
function isStandaloneMarker(marker: number): boolean {
  return marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7);
}

/** SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
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
