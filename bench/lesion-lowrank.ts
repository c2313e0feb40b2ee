// Does a low-rank linear map in place of each dropped block's branch (lowrank.ts) repair a lesion
// better than the per-channel line (fit.ts)? Both fitted on the first photos of the choosing half
// (the budget search's split), judged by top-1 agreement with the full int8 network on the
// held-out half; the blocks dropped outright for comparison.
//   node --import tsx bench/lesion-lowrank.ts [--photos N] [--fit N] [--divisors 32,8] [BLOCK...]
//   (default: 100 photos, lines and maps fitted on 32, rank C/32, res4b res4e res5b res4c)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { positiveInteger } from '../src/cli/command.ts';
import { decodeModel } from '../src/format/reader.ts';
import { splitPhotos } from '../src/lesion/budget.ts';
import { agreement, topOnes, variantTopOnes } from '../src/lesion/evaluate.ts';
import { fitBlocks } from '../src/lesion/fit.ts';
import { fitLowRank } from '../src/lesion/lowrank.ts';
import { loadStudyPhotos } from '../src/lesion/photos.ts';
import { withFittedBlocks, withLowRankBranches, withoutBlocks } from '../src/lesion/without.ts';

const ROOT = join(import.meta.dirname, '..');
const { values, positionals } = parseArgs({
  options: {
    photos: { type: 'string', default: '100' },
    fit: { type: 'string', default: '32' },
    divisors: { type: 'string', default: '32' },
  },
  allowPositionals: true,
});
const names = positionals.length ? positionals : ['res4b', 'res4e', 'res5b', 'res4c'];
const model = decodeModel(new Uint8Array(readFileSync(join(ROOT, 'weights', 'default.rnw'))));
const photos = await loadStudyPhotos(
  join(ROOT, '..', 'shared', 'imagenet-sample', 'dev'),
  model,
  positiveInteger(values.photos, '--photos'),
);
const { choose, heldOut } = splitPhotos(photos);
const fitPhotos = choose.slice(0, positiveInteger(values.fit, '--fit'));
const variants = new Map([
  ['dropped outright', withoutBlocks(model, names)],
  ['per-channel lines', withFittedBlocks(model, await fitBlocks(model, names, fitPhotos))],
]);
for (const divisor of values.divisors.split(',').map((d) => positiveInteger(d, '--divisors'))) {
  const maps = await fitLowRank(model, names, fitPhotos, (c) => Math.round(c / divisor));
  variants.set(`rank C/${divisor} maps`, withLowRankBranches(model, maps));
}
const full = await topOnes(model, heldOut);
const answers = await variantTopOnes(model, [...variants.values()], heldOut);
console.log(`${names.join(', ')}: top-1 agreement with the full network on ${heldOut.length} held-out photos`);
[...variants.keys()].forEach((name, i) => console.log(`${name}: ${(100 * agreement(answers[i], full)).toFixed(1)}%`));
