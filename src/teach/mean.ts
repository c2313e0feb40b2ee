/**
 * Nearest class mean by centred cosine, as a linear head: the score of class c is
 * s · m̂_c · (e − μ), with μ the mean of all examples and m̂_c the unit direction of class c's mean
 * from μ. Dividing by |e − μ| would not change the order of the classes, so the rule is linear and
 * runs as an fc. `sharpness` s is set so that the softmax of the scores reads as a probability.
 */
import type { FloatHead } from './head.ts';
import type { Examples } from './regression.ts';

export function fitClassMeans({ x, y, classes }: Examples, sharpness = 12): FloatHead {
  const d = x[0].length;
  const centre = new Float64Array(d);
  const classMeans = Array.from({ length: classes }, () => new Float64Array(d));
  const counts = new Array<number>(classes).fill(0);
  x.forEach((row, i) => {
    counts[y[i]]++;
    for (let j = 0; j < d; j++) classMeans[y[i]][j] += row[j];
  });
  // The centre weighs every class the same, whatever its count of examples.
  classMeans.forEach((mean, c) => {
    for (let j = 0; j < d; j++) {
      mean[j] /= counts[c];
      centre[j] += mean[j] / classes;
    }
  });
  const spread = Math.sqrt(
    x.reduce((s, row) => s + row.reduce((t, v, j) => t + (v - centre[j]) ** 2, 0), 0) / x.length,
  );
  const weight = new Float64Array(classes * d);
  const bias = new Float64Array(classes);
  classMeans.forEach((mean, c) => {
    const length = Math.sqrt(mean.reduce((s, v, j) => s + (v - centre[j]) ** 2, 0)) || 1;
    for (let j = 0; j < d; j++) {
      weight[c * d + j] = (sharpness * (mean[j] - centre[j])) / (length * (spread || 1));
      bias[c] -= weight[c * d + j] * centre[j];
    }
  });
  return { weight, bias };
}
