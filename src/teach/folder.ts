/**
 * The ImageFolder layout (torchvision's ImageFolder, Keras' image_dataset_from_directory): one
 * sub-folder of photos per class, named by the class. Sub-folders are taken in code-point order of
 * their names; photos are files with an image extension, in name order. Other files are skipped
 * and listed (a README or .DS_Store beside the photos is no reason to refuse); names starting with
 * a dot are ignored. A photo that then fails to decode is refused when it is embedded.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TeachError } from './errors.ts';

const IMAGE_EXTENSIONS = /\.(jpe?g|png|webp)$/i;

export interface ImageFolder {
  classes: { label: string; photos: string[] }[];
  /** Files that are not photos, skipped: in DIR itself or in a class folder. */
  skipped: string[];
}

export function readImageFolder(dir: string): ImageFolder {
  if (!statSync(dir).isDirectory())
    throw new TeachError(`${dir} is not a folder: teach reads one sub-folder of photos per class`);
  const skipped: string[] = [];
  const classes: ImageFolder['classes'] = [];
  for (const name of visible(dir)) {
    const path = join(dir, name);
    if (!statSync(path).isDirectory()) {
      skipped.push(path);
      continue;
    }
    const photos: string[] = [];
    for (const file of visible(path)) {
      const photo = join(path, file);
      (IMAGE_EXTENSIONS.test(file) && statSync(photo).isFile() ? photos : skipped).push(photo);
    }
    if (photos.length === 0)
      throw new TeachError(`${path}: no photos (JPEG, PNG or WebP) in the folder of class "${name}"`);
    classes.push({ label: name, photos });
  }
  if (classes.length < 2) {
    throw new TeachError(
      `${dir}: ${classes.length === 0 ? 'no class folders' : `only one class folder ("${classes[0].label}")`}: a head needs at least two, one sub-folder of photos each`,
    );
  }
  return { classes, skipped };
}

function visible(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => !name.startsWith('.'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
