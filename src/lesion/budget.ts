/**
 * Blocks to drop for a time budget. Every identity block is first fitted with a per-channel line
 * from its input to its output on the choosing photos (fit.ts) and ranked by the top-1 agreement
 * with the full network on the choosing half when it alone is replaced by its line. Greedily, each
 * step then measures the `shortlist` best-ranked blocks still kept after repair (replaced by their
 * lines with those already chosen, the later convs' statistics corrected: correct.ts) and keeps
 * the best agreeing, until the per-layer profile says the rest takes at most `budget` of the full
 * time (each candidate reruns only the layers after its first change: evaluate.ts; the search
 * measures on part of the choosing half). Each budget is measured as the path reaches it: its
 * blocks dropped outright and repaired, and the better agreeing on the choosing half kept. The
 * other half, never used to choose, judges the result (and, for the report, both); the full and
 * shortened networks are timed in turns in the same run.
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
  /** Candidates measured after repair at each step, the best by their lines alone (default 3). */
  shortlist?: number;
  onStep?: (message: string) => void;
  /** Each budget's result as soon as it is measured. */
  onBudget?: (result: BudgetResult) => void;
}

export type Repair = 'none' | 'fitted, corrected';

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
/**
 * Photos the statistics are corrected on for each candidate of the greedy search (the first of the
 * repair photos): a correction costs a layer-by-layer pass over them, one per candidate.
 */
const SEARCH_REPAIR_PHOTOS = 16;
const DEFAULT_SHORTLIST = 3;
/** Choosing photos the greedy search measures agreement on: each candidate runs its tail on each. */
const SEARCH_PHOTOS = 125;

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
  const searchPhotos = choose.slice(0, SEARCH_REPAIR_PHOTOS);
  const searchTargets = await convStatistics(model, searchPhotos, 'mean, scale');
  const searchRepair = (fitted: QuantModel) => corrected(model, fitted, searchTargets, searchPhotos, 'mean, scale');
  const searched = choose.slice(0, SEARCH_PHOTOS);
  const steps = greedySteps(model, fits, searchRepair, searched, fullChoose.slice(0, searched.length), ms, options);
  const fullHeldOut = await topOnes(model, heldOut);
  const fullAccuracy = accuracy(fullHeldOut, heldOut);
  const judged = (answers: Int32Array): HeldOut => ({
    photos: heldOut.length,
    agreement: agreement(answers, fullHeldOut),
    ...(fullAccuracy === undefined ? {} : { fullAccuracy, accuracy: accuracy(answers, heldOut) }),
  });
  const measure = async (budget: number, path: Step[]): Promise<BudgetResult> => {
    const dropped = path.map((step) => step.block);
    const ways = await repairs(model, dropped, fits, targets, repairPhotos);
    const variants = ways.map((w) => w.model);
    const [chosen, heldOutAnswers] = [
      await variantTopOnes(model, variants, choose),
      await variantTopOnes(model, variants, heldOut),
    ];
    const tried = ways.map(({ repair }, i) => ({
      repair,
      chooseAgreement: agreement(chosen[i], fullChoose),
      heldOut: judged(heldOutAnswers[i]),
    }));
    // The best agreeing on the choosing half (ties: the simpler, listed first).
    const best = tried.reduce((b, t, i) => (t.chooseAgreement > tried[b].chooseAgreement ? i : b), 0);
    const [fullMs, shortenedMs] = await inferenceMs([model, ways[best].model], choose[0].input, TIMING_RUNS);
    const result = {
      budget,
      dropped,
      choosePhotos: choose.length,
      estimatedShare: path[path.length - 1].ms / fullEstimate,
      chooseAgreement: tried[best].chooseAgreement,
      repair: tried[best].repair,
      repairs: tried,
      fullMs,
      shortenedMs,
      model: ways[best].model,
      heldOut: tried[best].heldOut,
    };
    options.onBudget?.(result);
    return result;
  };
  // Each budget is measured as soon as the path reaches it, the largest first.
  const pending = [...new Set(budgets)].sort((a, b) => b - a);
  const results = new Map<number, BudgetResult>();
  const path: Step[] = [];
  for await (const step of steps) {
    path.push(step);
    while (pending.length > 0 && step.ms <= pending[0] * fullEstimate) {
      const budget = pending.shift()!;
      results.set(budget, await measure(budget, [...path]));
    }
    if (pending.length === 0) break;
  }
  if (pending.length > 0)
    throw new BlockLesionError(
      `a budget of ${pending[0]} is out of reach: dropping every identity block leaves ${(path[path.length - 1].ms / fullEstimate).toFixed(2)} of the time`,
    );
  return budgets.map((budget) => results.get(budget)!);
}

interface Step {
  block: string;
  /** The estimated time of the network once this block (and the earlier ones) are dropped. */
  ms: number;
  agreement: number;
}

/**
 * The greedy path, a step at a time: every identity block ranked once by the agreement of its
 * replacement by its line alone; then each step measures the `shortlist` best-ranked blocks still
 * kept, each replaced by its line with those already chosen and the whole repaired (`repaired`:
 * the statistics corrected), and keeps the one agreeing best after repair.
 */
async function* greedySteps(
  model: QuantModel,
  fits: Map<string, BlockFit>,
  repaired: (fitted: QuantModel) => Promise<QuantModel>,
  choose: StudyPhoto[],
  full: Int32Array,
  ms: number[],
  options: BudgetOptions,
): AsyncGenerator<Step> {
  const identity = residualBlocks(model).filter((b) => b.shortcut.length === 0);
  const ranking = await rankedByLine(model, identity, fits, choose, full, ms);
  const fullMs = ms.reduce((a, b) => a + b, 0);
  const path: Step[] = [];
  let left = fullMs;
  while (path.length < identity.length) {
    const candidates = ranking
      .filter((b) => !path.some((s) => s.block === b.name))
      .slice(0, options.shortlist ?? DEFAULT_SHORTLIST);
    const variants: QuantModel[] = [];
    for (const block of candidates)
      variants.push(await repaired(withFittedBlocks(model, only(fits, [...path.map((s) => s.block), block.name]))));
    const answers = await variantTopOnes(model, variants, choose);
    const measured = candidates.map((block, i) => ({
      block,
      agreement: agreement(answers[i], full),
      saves: removedMs(block, ms),
    }));
    measured.sort((a, b) => b.agreement - a.agreement || b.saves - a.saves);
    const best = measured[0];
    left -= best.saves;
    path.push({ block: best.block.name, ms: left, agreement: best.agreement });
    options.onStep?.(
      `drop ${best.block.name}: agreement after repair ${(100 * best.agreement).toFixed(1)}% on ${choose.length} photos (of ${measured.map((m) => `${m.block.name} ${(100 * m.agreement).toFixed(1)}%`).join(', ')}), ${((100 * left) / fullMs).toFixed(1)}% of the time left`,
    );
    yield path[path.length - 1];
  }
}

/** Identity blocks by the agreement of each alone replaced by its line (ties: the one saving more first). */
async function rankedByLine(
  model: QuantModel,
  identity: ResidualBlock[],
  fits: Map<string, BlockFit>,
  choose: StudyPhoto[],
  full: Int32Array,
  ms: number[],
): Promise<ResidualBlock[]> {
  const variants = identity.map((block) => withFittedBlocks(model, only(fits, [block.name])));
  const answers = await variantTopOnes(model, variants, choose);
  return identity
    .map((block, i) => ({ block, agreement: agreement(answers[i], full), saves: removedMs(block, ms) }))
    .sort((a, b) => b.agreement - a.agreement || b.saves - a.saves)
    .map(({ block }) => block);
}

/**
 * The shortened model dropped outright (the baseline) and repaired: lines in place of the blocks,
 * every later conv's statistics corrected. (Lines alone and dropping with correction alone did
 * no better at any budget on the 500 photos: docs/ARCHITECTURE.md, "Lesions".)
 */
async function repairs(
  full: QuantModel,
  dropped: string[],
  fits: Map<string, BlockFit>,
  targets: Map<string, ChannelStats>,
  photos: StudyPhoto[],
): Promise<{ model: QuantModel; repair: Repair }[]> {
  const fitted = withFittedBlocks(full, only(fits, dropped));
  return [
    { model: withoutBlocks(full, dropped), repair: 'none' },
    { model: await corrected(full, fitted, targets, photos, 'mean, scale'), repair: 'fitted, corrected' },
  ];
}

function only(fits: Map<string, BlockFit>, names: string[]): Map<string, BlockFit> {
  return new Map(names.map((name) => [name, fits.get(name)!]));
}
