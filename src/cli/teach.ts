import { existsSync } from 'node:fs';
import { writeAtomically } from '../convert/convert.ts';
import { ImageDecodeError } from '../errors.ts';
import { checkDecoder } from '../options/validate.ts';
import { loadModel } from '../runtime/model.ts';
import { TeachError } from '../teach/errors.ts';
import { readImageFolder } from '../teach/folder.ts';
import {
  balancedAccuracy,
  crossValidate,
  embedExamples,
  headFromSet,
  type LabelledSet,
  labelExamples,
} from '../teach/teach.ts';
import { existingDefaultModel } from './classify.ts';
import { type CommandArgs, UsageError } from './command.ts';

/**
 * `resnet-wasm teach DIR -o mine.rnw`: embeds every photo of an ImageFolder, teaches a head and
 * writes the base model with it as a complete .rnw. Every check (output, folders, labels, photos)
 * happens before anything is written; the file is written whole or not at all. Options in commands.ts.
 */
export async function run({ values, flags, positionals }: CommandArgs): Promise<void> {
  if (positionals.length !== 1 || !values.output)
    throw new UsageError('teach needs one folder (a sub-folder of photos per class) and -o <out.rnw>');
  const output = values.output;
  if (existsSync(output) && !flags.force) throw new TeachError(`${output} exists: pass --force to replace it`);
  const decoder = checkDecoder(values.decoder);
  const augment = flags.augment === true;
  const folder = readImageFolder(positionals[0]);
  const photos = folder.classes.flatMap(({ label, photos }) => photos.map((file) => ({ label, file })));
  labelExamples(photos);
  for (const file of folder.skipped)
    process.stderr.write(`resnet-wasm: skipped ${file}: not a photo (JPEG, PNG or WebP)\n`);
  const model = await loadModel(values.model ?? existingDefaultModel());
  try {
    let embedding = 0;
    const set = await embedExamples(
      model,
      photos.map(({ label, file }) => ({ label, image: file })),
      {
        augment,
        decoder,
        onProgress: (done, total) => {
          embedding = done;
          process.stderr.write(`\rembedding ${done}/${total}${augment ? ' (with flip and crop views)' : ''}`);
        },
      },
    ).catch((error) => {
      if (!(error instanceof ImageDecodeError)) throw error;
      throw new TeachError(`${photos[embedding].file}: ${error.message}; nothing was written`, { cause: error });
    });
    process.stderr.write('\n');
    const head = headFromSet(model, set, { unknown: flags.unknown });
    for (const { label, photos } of folder.classes)
      process.stdout.write(`${label}: ${photos.length} photo${photos.length === 1 ? '' : 's'}\n`);
    process.stdout.write(`head: discriminant, cross-validated balanced accuracy (5 folds): ${estimate(set)}\n`);
    await writeAtomically(output, model.withHead(head).toFile());
    process.stdout.write(`wrote ${output}\n`);
  } finally {
    model.dispose();
  }
}

/** Balanced accuracy of the held-out photos (their views share their fold, and are not scored). */
function estimate(set: LabelledSet): string {
  const { predicted } = crossValidate(set);
  const isPhoto = (i: number) => i === 0 || set.photo[i] !== set.photo[i - 1];
  const held = set.y.flatMap((c, i) => (predicted[i] === undefined || !isPhoto(i) ? [] : [{ c, p: predicted[i] }]));
  if (held.length === 0) return 'n/a (too few photos)';
  const accuracy = balancedAccuracy(
    held.map((h) => h.c),
    held.map((h) => h.p),
    set.classes,
  );
  return `${(100 * accuracy).toFixed(1)}%`;
}
