/**
 * The photos a lesion study runs on, preprocessed once into the network's quantized input, with
 * their class where the names say it: an ImageNet-style file name (`n01440764_tench.JPEG`: the
 * words after the WordNet id) or an ImageFolder (`tench/0001.jpg`), matched against the model's
 * labels. A name that matches no label, or two (ImageNet has two "crane"s), leaves the photo
 * unlabelled: it still counts for agreement, not for accuracy.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { ResnetWasmError } from '../errors.ts';
import { preprocessQuantized } from '../image/preprocess.ts';
import { toRgbImage } from '../image/sources.ts';
import type { NetworkHeader } from '../model/types.ts';

export interface StudyPhoto {
  file: string;
  /** Tensor 0 of the network. */
  input: Uint8Array;
  classIndex?: number;
}

const IMAGE = /\.(jpe?g|png|webp)$/i;

/** The images under `dir` (one level of class folders at most), sorted by path; `limit` of them spread evenly over the list. */
export async function loadStudyPhotos(dir: string, header: NetworkHeader, limit = Infinity): Promise<StudyPhoto[]> {
  const all = imageFiles(dir);
  const files =
    all.length <= limit ? all : Array.from({ length: limit }, (_, i) => all[Math.floor((i * all.length) / limit)]);
  if (files.length < 2)
    throw new ResnetWasmError(
      `${dir}: a lesion study needs at least 2 photos (JPEG, PNG or WebP), found ${files.length}`,
    );
  const classOf = labelMatcher(header.labels);
  const photos: StudyPhoto[] = [];
  for (const file of files) {
    const image = await toRgbImage(new Uint8Array(readFileSync(file)));
    const name = basename(file, extname(file)).replace(/^n\d{8}_/, '');
    const classIndex = classOf(name) ?? (dirname(file) === dir ? undefined : classOf(basename(dirname(file))));
    photos.push({
      file,
      input: preprocessQuantized(image, header.preprocessing, header.tensors[0]),
      ...(classIndex === undefined ? {} : { classIndex }),
    });
  }
  return photos;
}

function imageFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      if (statSync(path).isDirectory())
        return readdirSync(path)
          .sort()
          .filter((f) => IMAGE.test(f))
          .map((f) => join(path, f));
      return IMAGE.test(entry) ? [path] : [];
    });
}

/** A label written with `_` or spaces, any case → its class index, if exactly one label reads so. */
function labelMatcher(labels: string[]): (name: string) => number | undefined {
  const key = (text: string) =>
    text
      .toLowerCase()
      .replace(/[_\s]+/g, ' ')
      .trim();
  const index = new Map<string, number | undefined>();
  labels.forEach((label, i) => index.set(key(label), index.has(key(label)) ? undefined : i));
  return (name) => index.get(key(name));
}
