/**
 * Blocks to drop for a time budget. Every identity block is first fitted with a per-channel line
 * from its input to its output on the choosing photos (fit.ts). Greedily, each step then replaces
 * the identity block whose replacement by its line (with those already replaced) keeps the most
 * top-1 agreement with the full network on the choosing half, until the per-layer profile says
 * the rest takes at most `budget` of the full time. The first step measures every identity block;
 * later steps the `shortlist` best of that first ranking still kept (each candidate reruns only
 * the layers after its first change: evaluate.ts, variantTopOnes). The chosen blocks are then
 * dropped four ways, measured on the same half, and the best agreeing kept: dropped outright,
 * with the ranges after them recalibrated, replaced by their lines, or both. The other half,
 * never used to choose, judges the result; the full and shortened networks are timed in turns
 * in the same run.
 */

import { mulberry32 } from '../builder/random.ts';
import { BlockLesionError } from '../errors.ts';
import type { QuantModel } from '../model/types.ts';
import { type ResidualBlock, residualBlocks } from './blocks.ts';
import { accuracy, agreement, inferenceMs, layerMs, topOnes, variantTopOnes } from './evaluate.ts';
import { fitBlocks } from './fit.ts';
import type { StudyPhoto } from './photos.ts';
import { recalibrate } from './recalibrate.ts';
import { PROFILE_RUNS, removedMs } from './study.ts';
import { type BlockFit, withFittedBlocks, withoutBlocks } from './without.ts';

export interface BudgetResult {
  budget: number;
  dropped: string[];
  choosePhotos: number;
  /** The kept layers' per-layer medians over the full network's, summed: what the choice aimed at. */
  estimatedShare: number;
  /** Agreement with the full network on the choosing half. */
  chooseAgreement: number;
  /** How the layers after the dropped blocks were repaired. */
  repair: Repair;
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

export type Repair = 'none' | 'ranges' | 'fitted' | 'fitted, ranges';

const TIMING_RUNS = 21;
const SPLIT_SEED = 18;
/** Choosing photos the statistics and ranges are measured on: each costs a run with the convs sampled in JavaScript. */
const REPAIR_PHOTOS = 64;

/** The photos shuffled with a fixed seed and halved: one half chooses the blocks, the other (never used to choose) judges. */
export function splitPhotos(photos: StudyPhoto[]): { choose: StudyPhoto[]; heldOut: StudyPhoto[] } {
  const random = mulberry32(SPLIT_SEED);
  const order = photos
    .map((photo) => ({ photo, key: random() }))
    .sort((a, b) => a.key - b.key)
    .map(({ photo }) => photo);
  const half = Math.ceil(photos.length / 2);
  return { choose: order.slice(0, half), heldOut: order.slice(half) };
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
  const identity = residualBlocks(model).filter((b) => b.shortcut.length === 0);
  const fits = await fitBlocks(
    model,
    identity.map((b) => b.name),
    choose.slice(0, REPAIR_PHOTOS),
  );
  const path = await greedyPath(model, fits, choose, fullChoose, ms, Math.min(...budgets) * fullEstimate, options);
  const fullHeldOut = await topOnes(model, heldOut);
  const results: BudgetResult[] = [];
  for (const budget of budgets) {
    const steps = path.findIndex((step) => step.ms <= budget * fullEstimate) + 1;
    if (steps === 0)
      throw new BlockLesionError(
        `a budget of ${budget} is out of reach: dropping every identity block leaves ${(path[path.length - 1].ms / fullEstimate).toFixed(2)} of the time`,
      );
    const dropped = path.slice(0, steps).map((step) => step.block);
    const chosen = await repaired(model, dropped, fits, choose, fullChoose);
    const [answers] = await variantTopOnes(model, [chosen.model], heldOut);
    const [fullMs, shortenedMs] = await inferenceMs([model, chosen.model], choose[0].input, TIMING_RUNS);
    const fullAccuracy = accuracy(fullHeldOut, heldOut);
    results.push({
      budget,
      dropped,
      choosePhotos: choose.length,
      estimatedShare: path[steps - 1].ms / fullEstimate,
      chooseAgreement: chosen.agreement,
      repair: chosen.repair,
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
  fits: Map<string, BlockFit>,
  choose: StudyPhoto[],
  full: Int32Array,
  ms: number[],
  targetMs: number,
  options: BudgetOptions,
): Promise<Step[]> {
  const identity = residualBlocks(model).filter((b) => b.shortcut.length === 0);
  const path: Step[] = [];
  let ranking: ResidualBlock[] = [];
  let current = model;
  let left = ms.reduce((a, b) => a + b, 0);
  while (left > targetMs && path.length < identity.length) {
    const kept = (ranking.length ? ranking : identity).filter((b) => !path.some((s) => s.block === b.name));
    const candidates = ranking.length ? kept.slice(0, options.shortlist ?? 3) : kept;
    const variants = candidates.map((block) =>
      withFittedBlocks(model, only(fits, [...path.map((s) => s.block), block.name])),
    );
    const answers = await variantTopOnes(current, variants, choose);
    const measured = candidates.map((block, i) => ({
      block,
      variant: variants[i],
      agreement: agreement(answers[i], full),
      saves: removedMs(block, ms),
    }));
    measured.sort((a, b) => b.agreement - a.agreement || b.saves - a.saves);
    if (!ranking.length) ranking = measured.map((m) => m.block);
    const best = measured[0];
    current = best.variant;
    left -= best.saves;
    path.push({ block: best.block.name, ms: left, agreement: best.agreement });
    options.onStep?.(
      `drop ${best.block.name}: agreement ${(100 * best.agreement).toFixed(1)}% on ${choose.length} photos, ${((100 * left) / ms.reduce((a, b) => a + b, 0)).toFixed(1)}% of the time left`,
    );
  }
  return path;
}

/** The shortened model, repaired whichever way agrees best with the full one on the choosing photos (ties: the simpler). */
async function repaired(
  full: QuantModel,
  dropped: string[],
  fits: Map<string, BlockFit>,
  choose: StudyPhoto[],
  fullChoose: Int32Array,
): Promise<{ model: QuantModel; agreement: number; repair: Repair }> {
  const shortened = withoutBlocks(full, dropped);
  // Everything before the layer that writes the first dropped block's input is as it was.
  const first = residualBlocks(full).find((b) => dropped.includes(b.name))!;
  const writer = full.layers.find((layer) => layer.output === first.input)!;
  const from = shortened.layers.findIndex((layer) => layer.name === writer.name);
  const photos = choose.slice(0, REPAIR_PHOTOS);
  const fitted = withFittedBlocks(full, only(fits, dropped));
  const ways: { model: QuantModel; repair: Repair }[] = [
    { model: shortened, repair: 'none' },
    { model: await recalibrate(shortened, from, photos), repair: 'ranges' },
    { model: fitted, repair: 'fitted' },
    { model: await recalibrate(fitted, from, photos), repair: 'fitted, ranges' },
  ];
  const answers = await variantTopOnes(
    full,
    ways.map((w) => w.model),
    choose,
  );
  const agreements = answers.map((a) => agreement(a, fullChoose));
  const best = agreements.indexOf(Math.max(...agreements));
  return { ...ways[best], agreement: agreements[best] };
}

function only(fits: Map<string, BlockFit>, names: string[]): Map<string, BlockFit> {
  return new Map(names.map((name) => [name, fits.get(name)!]));
}
