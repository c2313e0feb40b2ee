/**
 * The native decoder: sharp (libvips, libjpeg-turbo, libspng, libwebp), an optional dependency
 * loaded on first use in Node, never in browsers. It reads what PIL's
 * `Image.open(f).convert('RGB')` reads, the same way: embedded ICC profiles are ignored (PIL
 * ignores them), EXIF orientation is ignored, alpha is dropped, grey is replicated, 16-bit samples
 * keep their high byte, and CMYK goes through PIL's own formula rather than a colour profile.
 */
import type { Sharp, SharpOptions } from 'sharp';
import { ImageDecodeError } from '../errors.ts';
import type { RgbImage } from './decode.ts';
import { checkDimensions, checkedSize, describeHead, sniffFormat } from './header.ts';

type SharpFactory = (input: Uint8Array, options: SharpOptions) => Sharp;

/** Formats without pixels of their own: rendering them is no photo's decoding. */
const VECTOR_FORMATS = new Set(['svg', 'pdf']);

let loading: Promise<SharpFactory | null> | undefined;

/** sharp, if this is Node and it is installed (and loads on this platform); else null. */
export function loadSharp(): Promise<SharpFactory | null> {
  loading ??= Promise.resolve().then(requireSharp);
  return loading;
}

/**
 * Through require, not import: sharp's ES module imports its package.json as a JSON module, which
 * Node before 20.18 reports with an ExperimentalWarning on every run; its CommonJS build does not.
 */
function requireSharp(): SharpFactory | null {
  const module = globalThis.process?.getBuiltinModule?.('node:module') as typeof import('node:module') | undefined;
  try {
    return module === undefined ? null : (module.createRequire(import.meta.url)('sharp') as SharpFactory);
  } catch {
    return null;
  }
}

/** Decodes with sharp; JPEG and PNG headers are checked by our own reader first (header.ts). */
export async function decodeNative(sharp: SharpFactory, bytes: Uint8Array, maxPixels: number): Promise<RgbImage> {
  const sniffed = sniffFormat(bytes);
  if (sniffed === 'JPEG' || sniffed === 'PNG') checkedSize(sniffed, bytes, maxPixels);
  // The limit is checked below on the size the header declares, which is what libvips's own
  // limitInputPixels reads too: disabled there so that the refusal says what was too big.
  const image = sharp(bytes, { ignoreIcc: true, limitInputPixels: false, autoOrient: false });
  const metadata = await image.metadata().catch((error: Error) => {
    throw new ImageDecodeError(
      `not a supported image, or a corrupt one (first bytes ${describeHead(bytes)}): ${error.message}`,
      { cause: error },
    );
  });
  const format = metadata.format.toUpperCase();
  if (VECTOR_FORMATS.has(metadata.format))
    throw new ImageDecodeError(`${format} is a vector format: rasterize it first`);
  checkDimensions(format, metadata, maxPixels);
  try {
    return metadata.space === 'cmyk' ? await cmykToRgb(image) : await rgbPixels(image);
  } catch (error) {
    throw new ImageDecodeError(`corrupt or truncated ${format} data: ${(error as Error).message}`, { cause: error });
  }
}

async function rgbPixels(image: Sharp): Promise<RgbImage> {
  const { data, info } = await image.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** PIL's cmyk2rgb: each of R, G, B is (255 - K) - round((255 - K) * ink / 255). */
async function cmykToRgb(image: Sharp): Promise<RgbImage> {
  const { data, info } = await image
    .pipelineColourspace('cmyk')
    .toColourspace('cmyk')
    .raw()
    .toBuffer({ resolveWithObject: true });
  const rgb = new Uint8Array(info.width * info.height * 3);
  for (let i = 0, o = 0; o < rgb.length; i += 4, o += 3) {
    const paper = 255 - data[i + 3];
    for (let c = 0; c < 3; c++) rgb[o + c] = paper - divideBy255(data[i + c] * paper);
  }
  return { width: info.width, height: info.height, data: rgb };
}

/** PIL's MULDIV255 rounding of x / 255, exact for x up to 255 * 255. */
function divideBy255(x: number): number {
  const t = x + 128;
  return ((t >> 8) + t) >> 8;
}
