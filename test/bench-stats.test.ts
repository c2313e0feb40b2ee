// The arithmetic `npm run bench` reports with: /proc/stat's steal and busy shares, and the median
// of per-round ratios. Oracles: figures worked out by hand from the inputs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpuShare, parseCpuTimes, parseProcessTicks } from '../bench/host.ts';
import { roundRatios, spread } from '../bench/rounds.ts';
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
