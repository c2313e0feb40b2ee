/**
 * Blocks to drop for a time budget. Every identity block is first fitted with a per-channel line
 * from its input to its output on the choosing photos (fit.ts). Greedily, each step then replaces
 * the identity block whose replacement by its line (with those already replaced) keeps the most
 * top-1 agreement with the full network on the choosing half, until the per-layer profile says
 * the rest takes at most `budget` of the full time. The first step measures every identity block;
 * later steps the `shortlist` best of that first ranking still kept (each candidate reruns only
 * the layers after its first change: evaluate.ts, variantTopOnes). The chosen blocks are then
 * repaired four ways, measured on the same half, and the best agreeing kept: dropped outright,
 * replaced by their lines, and either with the later convs' statistics corrected to the full
 * network's (correct.ts). The other half, never used to choose, judges the result (and, for the
 * report, every repair); the full and shortened networks are timed in turns in the same run.
 */

import { mulberry32 } from '../builder/random.ts';
import { BlockLesionError } from '../errors.ts';
import type { QuantModel } from '../model/types.ts';
import { type ResidualBlock, residualBlocks } from './blocks.ts';
import { type ChannelStats, convStatistics, corrected } from './correct.ts';
import { accuracy, agreement, inferenceMs, layerMs, topOnes, variantTopOnes } from './evaluate.ts';
import { fitBlocks } from './fit.ts';
import type { StudyPhoto } from './photos.ts';
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
  /** Every repair tried, the kept one among them: agreement on the choosing half, and the held-out figures. */
  repairs: RepairResult[];
  fullMs: number;
  shortenedMs: number;
  heldOut: HeldOut;
  model: QuantModel;
}

export interface BudgetOptions {
  /** Candidates measured at each step after the first (default 3). */
  shortlist?: number;
  onStep?: (message: string) => void;
  /** Each budget's result as soon as it is measured. */
  onBudget?: (result: BudgetResult) => void;
}

export type Repair = 'none' | 'fitted' | 'corrected' | 'fitted, corrected';

export interface HeldOut {
  photos: number;
  agreement: number;
  accuracy?: number;
  fullAccuracy?: number;
}

export interface RepairResult {
  repair: Repair;
  chooseAgreement: number;
  heldOut: HeldOut;
}

const TIMING_RUNS = 21;
const SPLIT_SEED = 18;
/** Choosing photos the lines and statistics are measured on: each costs a run with the convs sampled in JavaScript. */
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
  const repairPhotos = choose.slice(0, REPAIR_PHOTOS);
  const fits = await fitBlocks(
    model,
    identity.map((b) => b.name),
    repairPhotos,
  );
  const targets = await convStatistics(model, repairPhotos, 'mean, scale');
  const path = await greedyPath(model, fits, choose, fullChoose, ms, Math.min(...budgets) * fullEstimate, options);
  const fullHeldOut = await topOnes(model, heldOut);
  const fullAccuracy = accuracy(fullHeldOut, heldOut);
  const judged = (answers: Int32Array): HeldOut => ({
    photos: heldOut.length,
    agreement: agreement(answers, fullHeldOut),
    ...(fullAccuracy === undefined ? {} : { fullAccuracy, accuracy: accuracy(answers, heldOut) }),
  });
  const results: BudgetResult[] = [];
  for (const budget of budgets) {
    const steps = path.findIndex((step) => step.ms <= budget * fullEstimate) + 1;
    if (steps === 0)
      throw new BlockLesionError(
        `a budget of ${budget} is out of reach: dropping every identity block leaves ${(path[path.length - 1].ms / fullEstimate).toFixed(2)} of the time`,
      );
    const dropped = path.slice(0, steps).map((step) => step.block);
    const ways = await repairs(model, dropped, fits, targets, repairPhotos);
    const chosen = await variantTopOnes(
      model,
      ways.map((w) => w.model),
      choose,
    );
    const heldOutAnswers = await variantTopOnes(
      model,
      ways.map((w) => w.model),
      heldOut,
    );
    const tried = ways.map(({ repair }, i) => ({
      repair,
      chooseAgreement: agreement(chosen[i], fullChoose),
      heldOut: judged(heldOutAnswers[i]),
    }));
    // The best agreeing on the choosing half (ties: the simpler, listed first).
    const best = tried.reduce((b, t, i) => (t.chooseAgreement > tried[b].chooseAgreement ? i : b), 0);
    const [fullMs, shortenedMs] = await inferenceMs([model, ways[best].model], choose[0].input, TIMING_RUNS);
    results.push({
      budget,
      dropped,
      choosePhotos: choose.length,
      estimatedShare: path[steps - 1].ms / fullEstimate,
      chooseAgreement: tried[best].chooseAgreement,
      repair: tried[best].repair,
      repairs: tried,
      fullMs,
      shortenedMs,
      model: ways[best].model,
      heldOut: tried[best].heldOut,
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

/** The shortened model repaired each way, the simplest first. */
async function repairs(
  full: QuantModel,
  dropped: string[],
  fits: Map<string, BlockFit>,
  targets: Map<string, ChannelStats>,
  photos: StudyPhoto[],
): Promise<{ model: QuantModel; repair: Repair }[]> {
  const shortened = withoutBlocks(full, dropped);
  const fitted = withFittedBlocks(full, only(fits, dropped));
  return [
    { model: shortened, repair: 'none' },
    { model: fitted, repair: 'fitted' },
    { model: await corrected(full, shortened, targets, photos, 'mean, scale'), repair: 'corrected' },
    { model: await corrected(full, fitted, targets, photos, 'mean, scale'), repair: 'fitted, corrected' },
  ];
}

function only(fits: Map<string, BlockFit>, names: string[]): Map<string, BlockFit> {
  return new Map(names.map((name) => [name, fits.get(name)!]));
}
