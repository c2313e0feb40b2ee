// Real photos for tests and benches: the ImageNet sample beside the project when it is there
// (never copied into the repository), and the freely licensed photos in test/photos/ always.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeImage, type RgbImage } from '../../src/image/decode.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const IMAGENET_DIR = join(ROOT, '..', 'shared', 'imagenet-sample', 'dev');
export const REPO_PHOTOS = join(ROOT, 'test', 'photos');

export interface Photo {
  file: string;
  image: RgbImage;
  /** ImageNet class index when known. */
  classIndex?: number;
}

/** The labelled ImageNet sample files, in their listed order, or [] where the sample is absent. */
export function imagenetFiles(): { file: string; classIndex: number }[] {
  const labels = join(IMAGENET_DIR, '..', 'labels-dev.tsv');
  if (!existsSync(labels)) return [];
  return readFileSync(labels, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => line.split('\t'))
    .map(([file, index]) => ({ file: join(IMAGENET_DIR, file), classIndex: Number(index) }));
}

/**
 * Two disjoint sets of ImageNet photos, spread over the classes: `calibration` to set BN
 * statistics and activation ranges, `test` to judge the result (never used for calibration);
 * null where the sample is absent.
 */
export function imagenetSplit(calibration: number, test: number): { calibration: Photo[]; test: Photo[] } | null {
  const files = imagenetFiles();
  if (files.length < calibration + test) return null;
  const n = calibration + test;
  const chosen = Array.from({ length: n }, (_, i) => files[Math.floor((i * files.length) / n)]);
  // Spread the test photos evenly among the chosen ones, so both sets span the class range.
  const isTest = (i: number) => Math.floor(((i + 1) * test) / n) > Math.floor((i * test) / n);
  const load = ({ file, classIndex }: { file: string; classIndex: number }): Photo => ({
    file,
    classIndex,
    image: decodeImage(readFileSync(file)),
  });
  return {
    calibration: chosen.filter((_, i) => !isTest(i)).map(load),
    test: chosen.filter((_, i) => isTest(i)).map(load),
  };
}

/**
 * Inputs for the whole-network tests, from the photos kept in the repository (so those tests run in
 * every clone, on the same inputs): `calibration` to set BN statistics and activation ranges, `test`
 * to judge the result, cut from disjoint photos. Each photo gives several views (crops at three
 * scales and places, some mirrored) to reach the counts; the views are taken in rounds, one per
 * photo, so every photo contributes before any gives a second view.
 */
export function photoSplit(calibration: number, test: number): { calibration: Photo[]; test: Photo[] } {
  const photos = allRepoPhotos();
  const isCalibration = (i: number) => i % 3 === 0;
  return {
    calibration: views(
      photos.filter((_, i) => isCalibration(i)),
      calibration,
    ),
    test: views(
      photos.filter((_, i) => !isCalibration(i)),
      test,
    ),
  };
}

const VIEWS = [
  { scale: 1, x: 0.5, y: 0.5, mirror: false },
  { scale: 0.6, x: 0.2, y: 0.3, mirror: true },
  { scale: 0.6, x: 0.8, y: 0.7, mirror: false },
  { scale: 0.75, x: 0.5, y: 0.5, mirror: true },
  { scale: 0.45, x: 0.7, y: 0.2, mirror: false },
  { scale: 0.45, x: 0.3, y: 0.8, mirror: true },
];

function views(photos: Photo[], count: number): Photo[] {
  if (count > photos.length * VIEWS.length) throw new Error(`${count} views asked of ${photos.length} photos`);
  return Array.from({ length: count }, (_, n) => {
    const photo = photos[n % photos.length];
    const view = VIEWS[Math.floor(n / photos.length)];
    return { file: `${photo.file} (view ${Math.floor(n / photos.length)})`, image: crop(photo.image, view) };
  });
}

/** A square crop of `scale` times the shorter side, centred at (x, y) of the room left, maybe mirrored. */
function crop(image: RgbImage, view: (typeof VIEWS)[number]): RgbImage {
  const side = Math.round(Math.min(image.width, image.height) * view.scale);
  const left = Math.round((image.width - side) * view.x);
  const top = Math.round((image.height - side) * view.y);
  const data = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const from = ((top + y) * image.width + left + (view.mirror ? side - 1 - x : x)) * 3;
      data.set(image.data.subarray(from, from + 3), (y * side + x) * 3);
    }
  }
  return { width: side, height: side, data };
}

/** Every photo kept in the repository for tests: test/photos/ then test/photos/more/, each in name order. */
export function allRepoPhotos(): Photo[] {
  return [...repoPhotos(), ...repoPhotos(join(REPO_PHOTOS, 'more'))];
}

/** The photos in test/photos/ (or another folder of it), in name order. */
export function repoPhotos(dir = REPO_PHOTOS): Photo[] {
  return readdirSync(dir)
    .filter((f) => /\.(png|jpe?g)$/i.test(f))
    .sort()
    .map((f) => ({ file: join(dir, f), image: decodeImage(readFileSync(join(dir, f))) }));
}
