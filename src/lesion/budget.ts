/**
 * Blocks to drop for a time budget: greedily, each step drops the identity block whose removal
 * (with those already dropped) keeps the most top-1 agreement with the full network on the
 * choosing half of the photos, until the per-layer profile says the rest takes at most `budget`
 * of the full time. The first step measures every identity block; later steps measure the
 * `shortlist` best of that first ranking still kept (each measurement runs the whole network on
 * every choosing photo). The ranges after the dropped blocks are then recalibrated on the same
 * photos, kept if they agree at least as well there. The other half, never used to choose, judges
 * the result; the full and shortened networks are timed in turns in the same run.
 */

import { BlockLesionError } from '../errors.ts';
import type { QuantModel } from '../model/types.ts';
import { type ResidualBlock, residualBlocks } from './blocks.ts';
import { accuracy, agreement, inferenceMs, layerMs, topOnes } from './evaluate.ts';
import type { StudyPhoto } from './photos.ts';
import { recalibrate } from './recalibrate.ts';
import { PROFILE_RUNS, removedMs } from './study.ts';
import { withoutBlocks } from './without.ts';

export interface BudgetResult {
  budget: number;
  dropped: string[];
  choosePhotos: number;
  /** The kept layers' per-layer medians over the full network's, summed: what the choice aimed at. */
  estimatedShare: number;
  /** Agreement with the full network on the choosing half. */
  chooseAgreement: number;
  recalibrated: boolean;
  fullMs: number;
  shortenedMs: number;
  heldOut: { photos: number; agreement: number; accuracy?: number; fullAccuracy?: number };
  model: QuantModel;
}

export interface BudgetOptions {
  /** Candidates measured at each step after the first (default 3). */
  shortlist?: number;
  onStep?: (message: string) => void;
  /** Each budget's result as soon as it is measured. */
  onBudget?: (result: BudgetResult) => void;
}

const TIMING_RUNS = 21;

/** Photos in their order, alternately to choose with and to judge with: both halves span the classes. */
export function splitPhotos(photos: StudyPhoto[]): { choose: StudyPhoto[]; heldOut: StudyPhoto[] } {
  return { choose: photos.filter((_, i) => i % 2 === 0), heldOut: photos.filter((_, i) => i % 2 === 1) };
}

/** One shortened model per budget (fractions of the full time, each in (0, 1]), all from one greedy path. */
export async function budgetCurve(
  model: QuantModel,
  photos: StudyPhoto[],
  budgets: number[],
  options: BudgetOptions = {},
): Promise<BudgetResult[]> {
  const { choose, heldOut } = splitPhotos(photos);
  const ms = await layerMs(model, PROFILE_RUNS);
  const fullEstimate = ms.reduce((a, b) => a + b, 0);
  const fullChoose = await topOnes(model, choose);
  const path = await greedyPath(model, choose, fullChoose, ms, Math.min(...budgets) * fullEstimate, options);
  const fullHeldOut = await topOnes(model, heldOut);
  const results: BudgetResult[] = [];
  for (const budget of budgets) {
    const steps = path.findIndex((step) => step.ms <= budget * fullEstimate) + 1;
    if (steps === 0)
      throw new BlockLesionError(
        `a budget of ${budget} is out of reach: dropping every identity block leaves ${(path[path.length - 1].ms / fullEstimate).toFixed(2)} of the time`,
      );
    const dropped = path.slice(0, steps).map((step) => step.block);
    const chosen = await bestRanges(model, dropped, choose, fullChoose, path[steps - 1].agreement);
    const answers = await topOnes(chosen.model, heldOut);
    const [fullMs, shortenedMs] = await inferenceMs([model, chosen.model], choose[0].input, TIMING_RUNS);
    const fullAccuracy = accuracy(fullHeldOut, heldOut);
    results.push({
      budget,
      dropped,
      choosePhotos: choose.length,
      estimatedShare: path[steps - 1].ms / fullEstimate,
      chooseAgreement: chosen.agreement,
      recalibrated: chosen.recalibrated,
      fullMs,
      shortenedMs,
      model: chosen.model,
      heldOut: {
        photos: heldOut.length,
        agreement: agreement(answers, fullHeldOut),
        ...(fullAccuracy === undefined ? {} : { fullAccuracy, accuracy: accuracy(answers, heldOut) }),
      },
    });
    options.onBudget?.(results[results.length - 1]);
  }
  return results;
}

interface Step {
  block: string;
  /** The estimated time of the network once this block (and the earlier ones) are dropped. */
  ms: number;
  agreement: number;
}

async function greedyPath(
  model: QuantModel,
  choose: StudyPhoto[],
  full: Int32Array,
  ms: number[],
  targetMs: number,
  options: BudgetOptions,
): Promise<Step[]> {
  const identity = residualBlocks(model).filter((b) => b.shortcut.length === 0);
  const path: Step[] = [];
  let ranking: ResidualBlock[] = [];
  let left = ms.reduce((a, b) => a + b, 0);
  while (left > targetMs && path.length < identity.length) {
    const kept = (ranking.length ? ranking : identity).filter((b) => !path.some((s) => s.block === b.name));
    const candidates = ranking.length ? kept.slice(0, options.shortlist ?? 3) : kept;
    const measured = [];
    for (const block of candidates) {
      const answers = await topOnes(withoutBlocks(model, [...path.map((s) => s.block), block.name]), choose);
      measured.push({ block, agreement: agreement(answers, full), saves: removedMs(block, ms) });
    }
    measured.sort((a, b) => b.agreement - a.agreement || b.saves - a.saves);
    if (!ranking.length) ranking = measured.map((m) => m.block);
    const best = measured[0];
    left -= best.saves;
    path.push({ block: best.block.name, ms: left, agreement: best.agreement });
    options.onStep?.(
      `drop ${best.block.name}: agreement ${(100 * best.agreement).toFixed(1)}% on ${choose.length} photos, ${((100 * left) / ms.reduce((a, b) => a + b, 0)).toFixed(1)}% of the time left`,
    );
  }
  return path;
}

/** The shortened model with its ranges as they are or recalibrated, whichever agrees better on the choosing photos. */
async function bestRanges(
  full: QuantModel,
  dropped: string[],
  choose: StudyPhoto[],
  fullChoose: Int32Array,
  keptAgreement: number,
): Promise<{ model: QuantModel; agreement: number; recalibrated: boolean }> {
  const shortened = withoutBlocks(full, dropped);
  // Everything before the layer that writes the first dropped block's input is as it was.
  const first = residualBlocks(full).find((b) => dropped.includes(b.name))!;
  const writer = full.layers.find((layer) => layer.output === first.input)!;
  const recalibrated = await recalibrate(
    shortened,
    shortened.layers.findIndex((layer) => layer.name === writer.name),
    choose,
  );
  const recalibratedAgreement = agreement(await topOnes(recalibrated, choose), fullChoose);
  return recalibratedAgreement >= keptAgreement
    ? { model: recalibrated, agreement: recalibratedAgreement, recalibrated: true }
    : { model: shortened, agreement: keptAgreement, recalibrated: false };
}
