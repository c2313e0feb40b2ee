/**
 * Extra views of a decoded photo for teaching (augmentation): the photo mirrored left to right,
 * and a tighter centre crop. Both only move pixels, none is computed, so a view is the same bits
 * everywhere; the network's usual preprocessing (preprocess.ts) then resizes and crops the view
 * like any photo.
 */
import type { RgbImage } from './decode.ts';
import { IDENTITY_MAP } from './resample.ts';
import { render } from './resize.ts';
import { roundHalfToEven } from './rounding.ts';

export type View = 'flip' | 'crop';
export const VIEWS: readonly View[] = ['flip', 'crop'];

/** The share of each side the `crop` view keeps: 0.8 of the photo before the usual resize and crop. */
const CROP_SHARE = 0.8;

export function photoView(img: RgbImage, view: View): RgbImage {
  return view === 'flip' ? mirrored(img) : centralShare(img, CROP_SHARE);
}

/** The photo mirrored left to right. */
export function mirrored({ width, height, data }: RgbImage): RgbImage {
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) out.set(data.subarray(row + x * 3, row + x * 3 + 3), row + (width - 1 - x) * 3);
  }
  return { width, height, data: out };
}

/** The central `share` of each side, copied (a resample to the same size is an exact copy). */
function centralShare(img: RgbImage, share: number): RgbImage {
  const width = Math.max(1, roundHalfToEven(img.width * share));
  const height = Math.max(1, roundHalfToEven(img.height * share));
  const rect = {
    left: roundHalfToEven((img.width - width) / 2),
    top: roundHalfToEven((img.height - height) / 2),
    width,
    height,
  };
  return render(img, img, rect, IDENTITY_MAP);
}
