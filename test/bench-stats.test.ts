// The arithmetic `npm run bench` reports with: /proc/stat's steal and busy shares, the median
// of per-round ratios, and bench:teach's class folds and pooled transfer scores. Oracles: figures
// worked out by hand from the inputs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuShare, parseCpuTimes, parseProcessTicks } from '../bench/host.ts';
import { roundRatios, spread } from '../bench/rounds.ts';
import { classFolds, estimate, transfer } from '../bench/teach/transfer.ts';
import { percentile } from '../src/cli/statistics.ts';

// A 2-CPU guest's /proc/stat (abridged): the aggregate line first, then per CPU.
const stat = (user: number, idle: number, iowait: number, steal: number, guest: number) =>
  [`cpu  ${user} 10 200 ${idle} ${iowait} 0 5 ${steal} ${guest} 0`, 'cpu0 1 2 3 4 5 6 7 8 9 10', 'intr 12345'].join(
    '\n',
  );

test('parseCpuTimes takes the aggregate line, counting iowait as idle and guest once', () => {
  assert.equal(parseCpuTimes(stat(1000, 5000, 40, 300, 700)), {
    total: 1000 + 10 + 200 + 5000 + 40 + 0 + 5 + 300,
    idle: 5040,
    steal: 300,
  });
});

test('parseCpuTimes reads old kernels without a steal column, and refuses what is not /proc/stat', () => {
  assert.equal(parseCpuTimes('cpu  10 0 10 80\n'), { total: 100, idle: 80, steal: 0 });
  assert.throws(() => parseCpuTimes('cpu0 1 2 3 4\n'), /no aggregate "cpu" line/);
});

test('cpuShare: steal and busy as percentages of all CPU time in the interval', () => {
  const from = parseCpuTimes(stat(1000, 5000, 0, 300, 0));
  // +400 user, +500 idle, +100 steal: 1000 ticks.
  const to = parseCpuTimes(stat(1400, 5500, 0, 400, 0));
  assert.equal(cpuShare(from, to), { stealPercent: 10, busyPercent: 40, othersPercent: 40 });
  // 250 of the 400 busy ticks were the benchmark's own.
  assert.equal(cpuShare(from, to, 250), { stealPercent: 10, busyPercent: 40, othersPercent: 15 });
  assert.equal(cpuShare(to, to), { stealPercent: 0, busyPercent: 0, othersPercent: 0 });
});

test('parseProcessTicks adds utime, stime, cutime and cstime, whatever the process is called', () => {
  // proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
  const line = '4242 (node (a) b) S 1 4242 4242 0 -1 4194304 900 0 0 0 120 30 7 3 20 0 11 0 5000 1000000 2000';
  assert.is(parseProcessTicks(line), 120 + 30 + 7 + 3);
  assert.throws(() => parseProcessTicks('4242 (node) S 1'), /no CPU times/);
});

test('percentile interpolates between ranks; spread gives median, extremes and quartiles', () => {
  assert.is(percentile([1, 2, 3, 4], 0.5), 2.5);
  assert.is(percentile([10, 20, 30, 40, 50], 0.25), 20);
  assert.ok(Number.isNaN(percentile([], 0.5)));
  assert.equal(spread([5, 1, 4, 2, 3]), { median: 3, min: 1, max: 5, q1: 2, q3: 4, n: 5 });
});

test('roundRatios: the median of per-round ratios, not the ratio of medians', () => {
  // Rounds 2 and 3 ran while a neighbour slowed both, round 4 while it slowed theirs only. Per
  // round ours takes 0.4x their time but in round 4; the ratio of the medians, 20 / 100, says 0.2x.
  const ours = [20, 40, 40, 20, 20];
  const theirs = [50, 100, 100, 100, 50];
  const r = roundRatios(ours, theirs)!;
  assert.is(r.median, 0.4);
  assert.is(r.min, 0.2);
  assert.is(r.max, 0.4);
  assert.is(r.n, 5);
});

test('roundRatios skips rounds where either side is missing, and is null when none has both', () => {
  assert.equal(roundRatios([10, null, 30], [20, 40, null]), spread([0.5]));
  assert.is(roundRatios([null, 1], [1, null]), null);
});

test.run();

// Two groups: group 0 has classes 0, 2, 4, 6, 8 (class 4 twice), group 1 has classes 1, 3, 5.
const labelled = [0, 2, 4, 4, 6, 8, 1, 3, 5].map((classIndex) => ({ classIndex, group: classIndex % 2 }));

test("classFolds deals every group's classes into k folds in turn, a class's photos together", () => {
  assert.equal(classFolds(labelled, 2), [
    [0, 2, 3, 5, 6, 8],
    [1, 4, 7],
  ]);
  assert.equal(classFolds(labelled, 3), [
    [0, 4, 6],
    [1, 5, 7],
    [2, 3, 8],
  ]);
  // A random order still puts every photo in exactly one fold, class 4's two photos in the same one.
  for (const folds of estimate(labelled, 2, 1, 8).partitions) {
    assert.equal(folds.flat().sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.ok(folds.some((fold) => fold.includes(2) && fold.includes(3)));
  }
});

test("transfer pools every fold's predictions into one balanced accuracy, heads never taught on their fold", () => {
  // One feature, the photo's class index; the head answers group 1 above the mean of what it was taught.
  const x = labelled.map((p) => Float32Array.of(p.classIndex));
  const y = labelled.map((p) => p.group);
  const taught: number[][] = [];
  const fit = ({ x: rows }: { x: Float32Array[] }) => {
    taught.push(rows.map((r) => r[0]));
    return {
      weight: Float64Array.of(0, 1),
      bias: Float64Array.of(0, -rows.reduce((s, r) => s + r[0], 0) / rows.length),
    };
  };
  // Both folds' heads split at 11/3. Group 0: classes 0, 2 right, 4, 4, 6, 8 wrong (2/6); group 1:
  // class 5 right, 1 and 3 wrong (1/3). Pooled 1/3; the mean of the folds' scores would be 5/16.
  assert.is(transfer({ x, y, classes: 2 }, fit, classFolds(labelled, 2)), 1 / 3);
  assert.equal(taught, [
    [2, 6, 3],
    [0, 4, 4, 8, 1, 5],
  ]);
});
