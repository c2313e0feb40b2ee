/**
 * A JPEG's or PNG's EXIF orientation, set back to 1 (as stored) in a copy, for decoders that would
 * rotate the image: PIL's convert('RGB') ignores the tag, and Chromium's createImageBitmap applies
 * it even with `imageOrientation: 'none'`. Bytes without the tag are returned as they are.
 */
import { crc32 } from '../format/crc32.ts';
import { sniffFormat } from './header.ts';

const SOS = 0xda;
const APP1 = 0xe1;
const EXIF = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
const ORIENTATION_TAG = 0x0112;
const AS_STORED = 1;
const PNG_SIGNATURE_BYTES = 8;

/** Where the orientation's value is; for a PNG, the eXIf chunk whose CRC then changes. */
interface Orientation {
  offset: number;
  littleEndian: boolean;
  chunk?: { start: number; end: number };
}

export function withoutExifOrientation(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = sniffFormat(bytes);
  const at = format === 'PNG' ? pngOrientation(bytes, view) : format === 'JPEG' ? jpegOrientation(bytes, view) : null;
  if (at === null) return bytes;
  const copy = bytes.slice();
  const edit = new DataView(copy.buffer);
  edit.setUint16(at.offset, AS_STORED, at.littleEndian);
  if (at.chunk) edit.setUint32(at.chunk.end, crc32(copy.subarray(at.chunk.start, at.chunk.end)));
  return copy;
}

/** In the APP1 Exif segment, before the scan; null if absent or already 1. */
function jpegOrientation(bytes: Uint8Array, view: DataView): Orientation | null {
  for (let pos = 2; pos + 4 <= bytes.length && bytes[pos] === 0xff; ) {
    const marker = bytes[pos + 1];
    if (marker === SOS) return null;
    const length = view.getUint16(pos + 2);
    if (marker === APP1 && EXIF.every((b, i) => bytes[pos + 4 + i] === b)) {
      return orientationInTiff(view, pos + 10, Math.min(pos + 2 + length, bytes.length));
    }
    pos += 2 + length;
  }
  return null;
}

/** In the eXIf chunk; null if absent or already 1. The CRC covers the chunk's type and data. */
function pngOrientation(bytes: Uint8Array, view: DataView): Orientation | null {
  for (let pos = PNG_SIGNATURE_BYTES; pos + 12 <= bytes.length; ) {
    const length = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const end = pos + 8 + length;
    if (type === 'IEND' || end + 4 > bytes.length) return null;
    if (type === 'eXIf') {
      const found = orientationInTiff(view, pos + 8, end);
      return found && { ...found, chunk: { start: pos + 4, end } };
    }
    pos = end + 4;
  }
  return null;
}

/** The orientation entry of IFD0 in the TIFF structure at `tiff`, read within `end`. */
function orientationInTiff(view: DataView, tiff: number, end: number): Orientation | null {
  if (tiff + 8 > end) return null;
  const order = view.getUint16(tiff);
  if (order !== 0x4949 && order !== 0x4d4d) return null;
  const littleEndian = order === 0x4949;
  const ifd = tiff + view.getUint32(tiff + 4, littleEndian);
  if (ifd + 2 > end) return null;
  const entries = view.getUint16(ifd, littleEndian);
  for (let e = 0; e < entries; e++) {
    const entry = ifd + 2 + 12 * e;
    if (entry + 12 > end) return null;
    if (view.getUint16(entry, littleEndian) !== ORIENTATION_TAG) continue;
    const offset = entry + 8;
    return view.getUint16(offset, littleEndian) === AS_STORED ? null : { offset, littleEndian };
  }
  return null;
}
