/**
 * The single-block lesion study (Veit, Wilber and Belongie, NeurIPS 2016): each residual block
 * removed in turn, a downsampling block replaced by its shortcut alone, and measured against the
 * full network on the same photos: top-1 agreement, top-1 accuracy where labelled, and the time
 * the removed layers took in the full network's per-layer profile.
 */
import type { QuantModel } from '../model/types.ts';
import { type ResidualBlock, residualBlocks } from './blocks.ts';
import { accuracy, agreement, layerMs, topOnes, variantTopOnes } from './evaluate.ts';
import type { StudyPhoto } from './photos.ts';
import { withoutBlocks } from './without.ts';

export interface LesionRow {
  block: string;
  /** A projection shortcut: the block was replaced by its shortcut, not removed. */
  downsampling: boolean;
  /** The removed layers' median time in the full network, ms. */
  msSaved: number;
  agreement: number;
  accuracy?: number;
}

export interface StudyResult {
  architecture: string;
  photos: number;
  labelled: number;
  /** The full network's per-layer medians, summed. */
  fullMs: number;
  fullAccuracy?: number;
  rows: LesionRow[];
}

/** Runs of the whole network whose per-layer medians give the time figures. */
export const PROFILE_RUNS = 15;

export async function lesionStudy(
  model: QuantModel,
  photos: StudyPhoto[],
  onBlock?: (row: LesionRow) => void,
): Promise<StudyResult> {
  const ms = await layerMs(model, PROFILE_RUNS);
  const full = await topOnes(model, photos);
  const blocks = residualBlocks(model);
  const lesions = blocks.map((block) => withoutBlocks(model, [block.name], { downsampling: 'shortcut' }));
  const answered = await variantTopOnes(model, lesions, photos);
  const rows: LesionRow[] = [];
  for (const [b, block] of blocks.entries()) {
    const answers = answered[b];
    const row: LesionRow = {
      block: block.name,
      downsampling: block.shortcut.length > 0,
      msSaved: removedMs(block, ms),
      agreement: agreement(answers, full),
      ...labelledAccuracy(answers, photos),
    };
    rows.push(row);
    onBlock?.(row);
  }
  return {
    architecture: model.architecture,
    photos: photos.length,
    labelled: photos.filter((p) => p.classIndex !== undefined).length,
    fullMs: ms.reduce((a, b) => a + b, 0),
    ...(accuracy(full, photos) === undefined ? {} : { fullAccuracy: accuracy(full, photos) }),
    rows,
  };
}

/** The time of the layers a lesion removes: the whole block, or all but its shortcut. */
export function removedMs(block: ResidualBlock, ms: number[]): number {
  return block.layers.filter((i) => !block.shortcut.includes(i)).reduce((sum, i) => sum + ms[i], 0);
}

function labelledAccuracy(answers: Int32Array, photos: StudyPhoto[]): { accuracy?: number } {
  const value = accuracy(answers, photos);
  return value === undefined ? {} : { accuracy: value };
}
