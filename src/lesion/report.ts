// The terminal tables of `resnet-wasm lesion`: the study and the budget curve.

import type { BudgetResult, HeldOut } from './budget.ts';
import type { StudyResult } from './study.ts';

export function studyTable(study: StudyResult): string {
  const full = study.fullAccuracy;
  return [
    `${study.architecture} on ${study.photos} photos (${study.labelled} labelled), 1 thread: full network ${study.fullMs.toFixed(1)} ms (each layer's fastest of 15 runs, summed), top-1 ${percent(full)}`,
    '',
    '| block | lesion | ms saved | of the time | top-1 agreement | top-1 accuracy (change) |',
    '|---|---|--:|--:|--:|--:|',
    ...study.rows.map((r) => {
      const change = r.accuracy === undefined || full === undefined ? '' : ` (${signed(100 * (r.accuracy - full))})`;
      return `| ${r.block} | ${r.downsampling ? 'shortcut only' : 'removed'} | ${r.msSaved.toFixed(2)} | ${percent(r.msSaved / study.fullMs)} | ${percent(r.agreement)} | ${percent(r.accuracy)}${change} |`;
    }),
    '',
  ].join('\n');
}

export function budgetTable(results: BudgetResult[]): string {
  const first = results[0];
  return [
    `budgets: blocks chosen on ${first.choosePhotos} photos, judged on the other ${first.heldOut.photos} (held out); time: the fastest of 21 whole inferences of each, measured in turns`,
    '',
    '| budget | blocks dropped | time left (profile) | ms (full → shortened) | speed-up | agreement, held out | top-1 held out (full → shortened) | repair |',
    '|--:|---|--:|--:|--:|--:|--:|---|',
    ...results.map(
      (r) =>
        `| ${r.budget} | ${r.dropped.join(', ')} | ${percent(r.estimatedShare)} | ${r.fullMs.toFixed(1)} → ${r.shortenedMs.toFixed(1)} | ${(r.fullMs / r.shortenedMs).toFixed(2)}x | ${percent(r.heldOut.agreement)} | ${topOne(r.heldOut)} | ${r.repair} |`,
    ),
    '',
    'every repair tried (the kept one agrees best on the choosing half):',
    '',
    '| budget | repair | agreement, choosing half | agreement, held out | top-1 held out |',
    '|--:|---|--:|--:|--:|',
    ...results.flatMap((r) =>
      r.repairs.map(
        (t) =>
          `| ${r.budget} | ${t.repair} | ${percent(t.chooseAgreement)} | ${percent(t.heldOut.agreement)} | ${topOne(t.heldOut)} |`,
      ),
    ),
    '',
  ].join('\n');
}

function topOne(h: HeldOut): string {
  return h.fullAccuracy === undefined
    ? ''
    : `${percent(h.fullAccuracy)} → ${percent(h.accuracy)} (${signed(100 * (h.accuracy! - h.fullAccuracy))})`;
}

function percent(v: number | undefined): string {
  return v === undefined ? '' : `${(100 * v).toFixed(1)}%`;
}

function signed(points: number): string {
  return `${points >= 0 ? '+' : '−'}${Math.abs(points).toFixed(1)}`;
}
