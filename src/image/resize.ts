/**
 * torchvision's `Resize(size)` + `CenterCrop(crop)` on a PIL image, reproduced bit for bit: the
 * size and crop arithmetic here, the resampling in wasm (resample.ts). These return new images, from
 * a kernel instance of their own (standalone.ts); a network's input is written in place instead
 * (preprocess.ts).
 */
import type { RgbImage } from './decode.ts';
import { IDENTITY_MAP, type PixelMap, type Rect, resampleInto, resampleScratchBytes, type Size } from './resample.ts';
import { roundHalfToEven } from './rounding.ts';
import { standaloneSite } from './standalone.ts';

export type { Rect, Size } from './resample.ts';

/**
 * torchvision's output size for Resize(size) with an int: the shorter side becomes `size`, the
 * longer `int(size * long / short)` (truncated).
 */
export function shorterSideSize(width: number, height: number, size: number): Size {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/**
 * torchvision's CenterCrop window: offset `int(round((side - crop) / 2))` with Python's
 * half-to-even round. A crop larger than the image is zero-padded first, `floor(excess / 2)` on
 * the left/top, which here is a negative offset.
 */
export function centerCropRect(width: number, height: number, crop: number): Rect {
  return { left: cropOffset(width, crop), top: cropOffset(height, crop), width: crop, height: crop };
}

function cropOffset(side: number, crop: number): number {
  return crop > side ? -Math.floor((crop - side) / 2) : roundHalfToEven((side - crop) / 2);
}

/** What `CenterCrop(crop)(Resize(size)(img))` computes: the resized size and the window in it. */
export function resizeCropWindow(img: Size, size: number, crop: number): { out: Size; rect: Rect } {
  const out = shorterSideSize(img.width, img.height, size);
  return { out, rect: centerCropRect(out.width, out.height, crop) };
}

/** PIL's `img.resize((width, height), Image.BILINEAR)`. */
export function resize(img: RgbImage, width: number, height: number): RgbImage {
  const out = { width, height };
  return render(img, out, { left: 0, top: 0, ...out }, IDENTITY_MAP);
}

/** torchvision `Resize(size)`. */
export function resizeShorterSide(img: RgbImage, size: number): RgbImage {
  const out = shorterSideSize(img.width, img.height, size);
  return resize(img, out.width, out.height);
}

/** torchvision `CenterCrop(crop)`: a resample to the same size is an exact copy. */
export function centerCrop(img: RgbImage, crop: number): RgbImage {
  return render(img, img, centerCropRect(img.width, img.height, crop), IDENTITY_MAP);
}

/**
 * `CenterCrop(crop)(Resize(size)(img))`, computing only the pixels that survive the crop: a
 * panorama whose resized long side would be huge costs no more than a square photo.
 */
export function resizeAndCenterCrop(img: RgbImage, size: number, crop: number): RgbImage {
  const { out, rect } = resizeCropWindow(img, size, crop);
  return render(img, out, rect, IDENTITY_MAP);
}

/** The pixels of `rect` of `img` resampled to `out`, mapped through `map`, as a new image. */
export function render(img: RgbImage, out: Size, rect: Rect, map: PixelMap): RgbImage {
  const { site, output, read } = standaloneSite(resampleScratchBytes(img, out, rect), rect.width * rect.height * 3);
  resampleInto(site, img, out, rect, map, output);
  return { width: rect.width, height: rect.height, data: read() };
}
