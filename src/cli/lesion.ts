import { readFile, writeFile } from 'node:fs/promises';
import { writeAtomically } from '../convert/convert.ts';
import { decodeModel, readModel } from '../format/reader.ts';
import { writeModel } from '../format/writer.ts';
import { budgetCurve } from '../lesion/budget.ts';
import { loadStudyPhotos } from '../lesion/photos.ts';
import { lesionPlot } from '../lesion/plot.ts';
import { budgetTable, studyTable } from '../lesion/report.ts';
import { lesionStudy } from '../lesion/study.ts';
import { withoutBlocks } from '../lesion/without.ts';
import type { QuantModel } from '../model/types.ts';
import { type CommandArgs, positiveInteger, UsageError } from './command.ts';
import { defaultModelPath } from './paths.ts';

/**
 * `resnet-wasm lesion`: the single-block lesion study (--photos), the blocks to drop for time
 * budgets (--budget), or a model without named blocks (--drop); -o writes the shortened model.
 * Options in commands.ts.
 */
export async function run({ values, flags }: CommandArgs): Promise<void> {
  const file = new Uint8Array(await readFile(values.model ?? defaultModelPath()));
  const model = decodeModel(file);
  const producer = readModel(file).header.producer;
  if (values.drop !== undefined) {
    if (!values.output) throw new UsageError('lesion --drop needs -o <out.rnw>');
    const names = values.drop.split(',').filter((name) => name !== '');
    return writeAtomically(values.output, writeModel(withoutBlocks(model, names), producer));
  }
  if (!values.photos) throw new UsageError('lesion needs --photos DIR (or --drop BLOCKS -o FILE)');
  const budgets = values.budget === undefined ? [] : values.budget.split(',').map(budgetFraction);
  if (values.output && budgets.length !== 1)
    throw new UsageError('lesion -o writes one model: give exactly one --budget');
  const progress = (message: string) => process.stderr.write(`lesion: ${message}\n`);
  const photos = await loadStudyPhotos(
    values.photos,
    model,
    values.limit === undefined ? Infinity : positiveInteger(values.limit, '--limit'),
  );
  progress(`${photos.length} photos, ${photos.filter((p) => p.classIndex !== undefined).length} labelled`);
  if (budgets.length === 0) return study(model, photos, { plot: values.plot, json: flags.json }, progress);
  const results = await budgetCurve(model, photos, budgets, {
    shortlist: positiveInteger(values.shortlist!, '--shortlist'),
    onStep: progress,
    onBudget: (result) => progress(`budget ${result.budget} measured:\n${budgetTable([result])}`),
  });
  if (values.output) await writeAtomically(values.output, writeModel(results[0].model, producer));
  const printable = results.map(({ model: _model, ...result }) => result);
  process.stdout.write(flags.json ? `${JSON.stringify(printable)}\n` : budgetTable(results));
}

async function study(
  model: QuantModel,
  photos: Awaited<ReturnType<typeof loadStudyPhotos>>,
  values: { plot?: string; json?: boolean },
  progress: (message: string) => void,
): Promise<void> {
  const result = await lesionStudy(model, photos, (row) =>
    progress(`${row.block}: agreement ${(100 * row.agreement).toFixed(1)}%, ${row.msSaved.toFixed(2)} ms`),
  );
  if (values.plot) await writeFile(values.plot, lesionPlot(result));
  process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : studyTable(result));
}

function budgetFraction(text: string): number {
  const value = Number(text);
  if (!(value > 0 && value < 1))
    throw new UsageError(`--budget takes fractions of the full time between 0 and 1 (0.8 = 80%), not "${text}"`);
  return value;
}
