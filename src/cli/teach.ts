import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { writeAtomically } from '../convert/convert.ts';
import { ImageDecodeError } from '../errors.ts';
import type { DecoderChoice } from '../image/decoders.ts';
import { checkDecoder } from '../options/validate.ts';
import { loadModel } from '../runtime/model.ts';
import { TeachError } from '../teach/errors.ts';
import { readImageFolder } from '../teach/folder.ts';
import { balancedAccuracy, crossValidate, labelExamples, teach } from '../teach/teach.ts';
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
  const folder = readImageFolder(positionals[0]);
  const photos = folder.classes.flatMap(({ label, photos }) => photos.map((file) => ({ label, file })));
  labelExamples(photos);
  for (const file of folder.skipped)
    process.stderr.write(`resnet-wasm: skipped ${file}: not a photo (JPEG, PNG or WebP)\n`);
  const model = await loadModel(values.model ?? existingDefaultModel());
  try {
    const examples = [];
    for (const [index, { label, file }] of photos.entries()) {
      process.stderr.write(`\rembedding ${index + 1}/${photos.length}`);
      examples.push({ label, embedding: await embedPhoto(model, file, decoder) });
    }
    process.stderr.write('\n');
    const head = await teach(model, examples, { unknown: flags.unknown });
    const set = { x: examples.map((e) => e.embedding), ...labelExamples(examples) };
    for (const { label, photos } of folder.classes)
      process.stdout.write(`${label}: ${photos.length} photo${photos.length === 1 ? '' : 's'}\n`);
    const { predicted } = crossValidate(set);
    const held = set.y.flatMap((c, i) => (predicted[i] === undefined ? [] : [{ c, p: predicted[i] }]));
    const estimate = held.length
      ? `${(
          100 *
            balancedAccuracy(
              held.map((h) => h.c),
              held.map((h) => h.p),
              set.classes,
            )
        ).toFixed(1)}%`
      : 'n/a (too few photos)';
    process.stdout.write(`head: logistic, cross-validated balanced accuracy (5 folds): ${estimate}\n`);
    await writeAtomically(output, model.withHead(head).toFile());
    process.stdout.write(`wrote ${output}\n`);
  } finally {
    model.dispose();
  }
}

async function embedPhoto(
  model: Awaited<ReturnType<typeof loadModel>>,
  file: string,
  decoder: DecoderChoice,
): Promise<Float32Array> {
  try {
    return await model.embed(new Uint8Array(await readFile(file)), { decoder });
  } catch (error) {
    if (error instanceof ImageDecodeError)
      throw new TeachError(`${file}: ${error.message}; nothing was written`, { cause: error });
    throw error;
  }
}
