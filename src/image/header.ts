/**
 * What an encoded image says about itself before any pixel is decoded: its format (from the
 * signature) and, for JPEG and PNG, its size (from the frame header or IHDR). The pixel limit is
 * enforced here, whichever decoder then runs, so a file announcing 50000x50000 costs nothing.
 */
import { ImageDecodeError } from '../errors.ts';

/** Formats recognised by their signature; others are left to sharp, when it is loaded. */
export type SniffedFormat = 'JPEG' | 'PNG' | 'WebP';

export interface Dimensions {
  width: number;
  height: number;
}

export const DEFAULT_MAX_PIXELS = 40_000_000;

const SIGNATURES: [SniffedFormat, (number | null)[]][] = [
  ['PNG', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ['JPEG', [0xff, 0xd8, 0xff]],
  // "RIFF", a little-endian size (any), "WEBP"
  ['WebP', [0x52, 0x49, 0x46, 0x46, null, null, null, null, 0x57, 0x45, 0x42, 0x50]],
];

/** The format whose signature `bytes` starts with, or null; a file cut inside a signature is refused. */
export function sniffFormat(bytes: Uint8Array): SniffedFormat | null {
  if (bytes.length === 0) throw new ImageDecodeError('empty input: expected an encoded image (JPEG, PNG, ...)');
  for (const [format, signature] of SIGNATURES) {
    const compared = Math.min(bytes.length, signature.length);
    if (!signature.slice(0, compared).every((b, i) => b === null || bytes[i] === b)) continue;
    if (compared < signature.length)
      throw new ImageDecodeError(`truncated ${format}: the file ends inside its signature`);
    return format;
  }
  return null;
}

/** The first bytes in hex, to name what an unknown file starts with. */
export function describeHead(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** A JPEG's or PNG's declared size, checked against `maxPixels` before anything is decoded. */
export function checkedSize(format: 'JPEG' | 'PNG', bytes: Uint8Array, maxPixels: number): Dimensions {
  const size = format === 'PNG' ? readPngDimensions(bytes) : readJpegDimensions(bytes);
  checkDimensions(format, size, maxPixels);
  return size;
}

export function checkDimensions(format: string, { width, height }: Dimensions, maxPixels: number): void {
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
