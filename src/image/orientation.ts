/**
 * A JPEG's EXIF orientation, set back to 1 (as stored) in a copy, for decoders that would rotate
 * the image: PIL's convert('RGB') ignores the tag, and Chromium's createImageBitmap applies it even
 * with `imageOrientation: 'none'`. Bytes without the tag, or not a JPEG, are returned as they are.
 */
const SOI = 0xd8;
const SOS = 0xda;
const APP1 = 0xe1;
const EXIF = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
const ORIENTATION_TAG = 0x0112;
const AS_STORED = 1;

export function withoutExifOrientation(bytes: Uint8Array): Uint8Array {
  const at = orientationOffset(bytes);
  if (at === null) return bytes;
  const copy = bytes.slice();
  const view = new DataView(copy.buffer, at.offset, 2);
  view.setUint16(0, AS_STORED, at.littleEndian);
  return copy;
}

/** Where the orientation's value is (ignoring it if it is already 1), or null. */
function orientationOffset(bytes: Uint8Array): { offset: number; littleEndian: boolean } | null {
  if (bytes[0] !== 0xff || bytes[1] !== SOI) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
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

/** The orientation entry of IFD0 in the TIFF structure at `tiff`, read within `end`. */
function orientationInTiff(
  view: DataView,
  tiff: number,
  end: number,
): { offset: number; littleEndian: boolean } | null {
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
