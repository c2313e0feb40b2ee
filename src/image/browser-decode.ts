/**
 * The browser's own decoder: createImageBitmap (in Chromium libjpeg-turbo, libpng, libwebp, ...)
 * with no colour management and no premultiplication, read back through a 2D canvas (an
 * OffscreenCanvas, in workers too). Faster than the JavaScript decoder, and in Chromium 156 the
 * same pixels as sharp's (PIL's) on every photo measured (docs/ARCHITECTURE.md, the input path);
 * other browsers' JPEG decoders may differ.
 */
import { ImageDecodeError } from '../errors.ts';
import { drawToPixels } from './canvas.ts';
import { checkDimensions, checkedSize, describeHead, sniffFormat } from './header.ts';
import { withoutExifOrientation } from './orientation.ts';
import type { RawImage } from './raw.ts';

const BITMAP_OPTIONS: ImageBitmapOptions = {
  colorSpaceConversion: 'none',
  premultiplyAlpha: 'none',
  // PIL ignores EXIF orientation, and so do the other decoders; Chromium 156 applies it even so,
  // hence withoutExifOrientation below.
  imageOrientation: 'none',
};

/** Whether this environment has what decodeInBrowser needs (browsers and their workers). */
export function browserCanDecode(): boolean {
  return (
    typeof createImageBitmap === 'function' && (typeof OffscreenCanvas === 'function' || typeof document === 'object')
  );
}

/** RGBA pixels of any format the browser reads; JPEG and PNG headers are checked by our reader first. */
export async function decodeInBrowser(bytes: Uint8Array, maxPixels: number): Promise<RawImage> {
  const sniffed = sniffFormat(bytes);
  if (sniffed === 'JPEG' || sniffed === 'PNG') checkedSize(sniffed, bytes, maxPixels);
  const unrotated = withoutExifOrientation(bytes) as Uint8Array<ArrayBuffer>;
  const bitmap = await createImageBitmap(new Blob([unrotated]), BITMAP_OPTIONS).catch((error: Error) => {
    throw new ImageDecodeError(
      `corrupt or truncated ${sniffed ?? 'image'} data, or a format this browser does not read (first bytes ${describeHead(bytes)}): ${error.message}`,
      { cause: error },
    );
  });
  try {
    checkDimensions(sniffed ?? 'image', bitmap, maxPixels);
    return drawToPixels(bitmap);
  } finally {
    bitmap.close();
  }
}
