/**
 * Browser images (HTMLImageElement, ImageBitmap, VideoFrame, HTMLVideoElement, HTMLCanvasElement,
 * OffscreenCanvas) read back as RGBA pixels through a 2D canvas. The DOM types are only looked up
 * at run time, so this module loads in Node.
 */
import { ImageDecodeError } from '../errors.ts';
import type { RawImage } from './raw.ts';

/**
 * What a canvas can draw, checked by feature detection. Typed from the DOM library where the
 * program has it: without it (a Node project) each is `never`, so the types need no DOM.
 */
export type DrawableImage =
  | DomInstance<'HTMLImageElement'>
  | DomInstance<'HTMLVideoElement'>
  | DomInstance<'HTMLCanvasElement'>
  | DomInstance<'ImageBitmap'>
  | DomInstance<'OffscreenCanvas'>
  | DomInstance<'VideoFrame'>;

/** The instances of the global class `Name` where the program's libraries declare it, else never. */
type DomInstance<Name extends string> = typeof globalThis extends Record<Name, { prototype: infer T }> ? T : never;

/** The DOM classes that exist in this environment. */
function drawableClasses(): (abstract new (...args: never[]) => object)[] {
  const names = [
    'HTMLImageElement',
    'HTMLVideoElement',
    'HTMLCanvasElement',
    'ImageBitmap',
    'OffscreenCanvas',
    'VideoFrame',
  ];
  const scope = globalThis as unknown as Record<string, unknown>;
  return names
    .map((name) => scope[name])
    .filter((c): c is abstract new (...args: never[]) => object => typeof c === 'function');
}

export function isDrawable(source: object): source is DrawableImage {
  return drawableClasses().some((c) => source instanceof c);
}

/** Intrinsic size: an <img> or <video> is drawn at its natural size, a VideoFrame at its display size. */
function drawableSize(source: DrawableImage): { width: number; height: number } {
  if ('naturalWidth' in source) return { width: source.naturalWidth, height: source.naturalHeight };
  if ('videoWidth' in source) return { width: source.videoWidth, height: source.videoHeight };
  if ('displayWidth' in source) return { width: source.displayWidth, height: source.displayHeight };
  return { width: source.width, height: source.height };
}

/** Draws the image on a canvas of its own size and reads the RGBA pixels back. */
export function drawToPixels(source: DrawableImage): RawImage {
  const { width, height } = drawableSize(source);
  if (!(width > 0 && height > 0)) {
    throw new ImageDecodeError(
      `the ${describe(source)} has no pixels yet (${width}x${height}): wait until it has loaded`,
    );
  }
  const context = canvas2d(width, height);
  context.drawImage(source as CanvasImageSource, 0, 0);
  const { data } = context.getImageData(0, 0, width, height);
  return { data, width, height };
}

type Context2d = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D;

/** An OffscreenCanvas where there is one (workers too), else a detached <canvas>. */
function canvas2d(width: number, height: number): Context2d {
  const settings: CanvasRenderingContext2DSettings = { willReadFrequently: true };
  let context: Context2d | null = null;
  if (typeof OffscreenCanvas === 'function') context = new OffscreenCanvas(width, height).getContext('2d', settings);
  else if (typeof document === 'object') {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    context = canvas.getContext('2d', settings);
  }
  if (context === null) throw new ImageDecodeError('no 2D canvas is available here to read the image');
  return context;
}

export function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  return value.constructor?.name ?? 'object';
}
