// Real photos for tests and benches: the ImageNet sample beside the project when it is there
// (never copied into the repository), and the few CC0 photos in test/photos/ always.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
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
 * statistics and activation ranges, `test` to judge the result (never used for calibration).
 */
export function imagenetSplit(calibration: number, test: number): { calibration: Photo[]; test: Photo[] } | null {
  const files = imagenetFiles();
  if (files.length < calibration + test) return null;
  const n = calibration + test;
  const chosen = Array.from({ length: n }, (_, i) => files[Math.floor((i * files.length) / n)]);
  // Spread the test photos evenly among the chosen ones, so both sets span the class range.
  const isTest = (i: number) => Math.floor(((i + 1) * test) / n) > Math.floor((i * test) / n);
  const load = ({ file, classIndex }: { file: string; classIndex: number }): Photo => ({ file, classIndex, image: decodeImage(readFileSync(file)) });
  return {
    calibration: chosen.filter((_, i) => !isTest(i)).map(load),
    test: chosen.filter((_, i) => isTest(i)).map(load),
  };
}

export function repoPhotos(): Photo[] {
  return readdirSync(REPO_PHOTOS)
    .filter((f) => /\.(png|jpe?g)$/i.test(f))
    .sort()
    .map((f) => ({ file: join(REPO_PHOTOS, f), image: decodeImage(readFileSync(join(REPO_PHOTOS, f))) }));
}
