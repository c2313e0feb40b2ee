// The host's state while a benchmark runs: on a shared VM, how much CPU time the hypervisor gave to
// other guests (steal), how busy the machine was, how much of that was not the benchmark's own
// processes, and its load average, so that a table says how noisy its run was. Linux only
// (/proc/stat, /proc/PID/stat); elsewhere the figures are null.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { type Spread, spread } from './rounds.ts';

/** The aggregate `cpu` line of /proc/stat, in clock ticks since boot. */
export interface CpuTimes {
  total: number;
  /** idle + iowait */
  idle: number;
  steal: number;
}

/** Over an interval: percentages of all CPU time (every core's) in it. */
export interface CpuShare {
  /** Taken by the hypervisor for other guests while this guest wanted to run. */
  stealPercent: number;
  /** Neither idle nor stolen: this benchmark, its neighbours and everything else on the guest. */
  busyPercent: number;
  /** Busy, but not in this benchmark's processes (its children and neighbours included). */
  othersPercent: number;
}

export interface HostSample {
  cpu: CpuTimes | null;
  /** CPU time of this process and its children, living and ended, in clock ticks. */
  ownTicks: number;
  loadAverage1: number;
}

/**
 * Parses /proc/stat's first line: user nice system idle iowait irq softirq steal [guest guest_nice].
 * guest time is already counted in user (and guest_nice in nice), so it is left out of the total.
 */
export function parseCpuTimes(stat: string): CpuTimes {
  const line = /^cpu\s+([\d\s]+)$/m.exec(stat);
  if (!line) throw new Error('/proc/stat: no aggregate "cpu" line');
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0, steal = 0] = line[1]
    .trim()
    .split(/\s+/)
    .map(Number);
  return {
    total: user + nice + system + idle + iowait + irq + softirq + steal,
    idle: idle + iowait,
    steal,
  };
}

/**
 * A process's CPU time from /proc/PID/stat: utime + stime, and cutime + cstime, the time of its
 * children that ended and were waited for. The name field may hold spaces and parentheses, so the
 * fields are counted from its last ')'.
 */
export function parseProcessTicks(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is the state, field 3 of proc(5); utime is field 14.
  const [utime, stime, cutime, cstime] = fields.slice(11, 15).map(Number);
  if (![utime, stime, cutime, cstime].every(Number.isFinite))
    throw new Error(`/proc/PID/stat: no CPU times in "${stat.slice(0, 80)}"`);
  return utime + stime + cutime + cstime;
}

/** `ownTicks`: the benchmark's own CPU time in the interval, in the same clock ticks. */
export function cpuShare(from: CpuTimes, to: CpuTimes, ownTicks = 0): CpuShare {
  const total = to.total - from.total;
  if (total <= 0) return { stealPercent: 0, busyPercent: 0, othersPercent: 0 };
  const steal = to.steal - from.steal;
  const busy = total - (to.idle - from.idle) - steal;
  return {
    stealPercent: (100 * steal) / total,
    busyPercent: (100 * busy) / total,
    othersPercent: (100 * Math.max(0, busy - ownTicks)) / total,
  };
}

/** `children`: the benchmark's living child processes. */
export function sampleHost(children: readonly number[]): HostSample {
  const cpu = existsSync('/proc/stat') ? parseCpuTimes(readFileSync('/proc/stat', 'utf8')) : null;
  const ticks = (pid: number | 'self') => {
    try {
      return parseProcessTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return 0; // ended since the list was made: its time is now in our cutime
    }
  };
  const ownTicks = children.reduce((sum, pid) => sum + ticks(pid), ticks('self'));
  return { cpu, ownTicks, loadAverage1: loadavg()[0] };
}

/** Between two samples; null where /proc/stat is missing. */
function shareBetween(from: HostSample, to: HostSample): CpuShare | null {
  return from.cpu && to.cpu ? cpuShare(from.cpu, to.cpu, to.ownTicks - from.ownTicks) : null;
}

/** One round's share of CPU time and the 1-minute load average at its end. */
export interface RoundHost {
  stealPercent: number | null;
  busyPercent: number | null;
  othersPercent: number | null;
  loadAverage1: number;
}

export interface HostSummary {
  /** Over the whole run, from before the floor to after the last round. */
  stealPercent: number | null;
  busyPercent: number | null;
  othersPercent: number | null;
  loadAverage: { start: number; end: number };
  perRound: Record<keyof RoundHost, Spread | null>;
  rounds: RoundHost[];
}

export function roundHost(before: HostSample, after: HostSample): RoundHost {
  const share = shareBetween(before, after);
  return {
    stealPercent: share?.stealPercent ?? null,
    busyPercent: share?.busyPercent ?? null,
    othersPercent: share?.othersPercent ?? null,
    loadAverage1: after.loadAverage1,
  };
}

export function summarizeHost(start: HostSample, end: HostSample, rounds: RoundHost[]): HostSummary {
  const share = shareBetween(start, end);
  const perRound = (key: keyof RoundHost) => {
    const values = rounds.map((r) => r[key]).filter((v): v is number => v !== null);
    return values.length ? spread(values) : null;
  };
  return {
    stealPercent: share?.stealPercent ?? null,
    busyPercent: share?.busyPercent ?? null,
    othersPercent: share?.othersPercent ?? null,
    loadAverage: { start: start.loadAverage1, end: end.loadAverage1 },
    perRound: {
      stealPercent: perRound('stealPercent'),
      busyPercent: perRound('busyPercent'),
      othersPercent: perRound('othersPercent'),
      loadAverage1: perRound('loadAverage1'),
    },
    rounds,
  };
}

export type Machine = ReturnType<typeof describeMachine>;

export function describeMachine() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(' ') ?? [];
  return {
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0].model,
    /** What the native peer can use that wasm cannot. */
    simd: ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni'].filter((f) => flags.includes(f)),
    /** A hypervisor shows itself in cpuinfo's flags. */
    virtual: flags.includes('hypervisor'),
    cores: availableParallelism(),
    node: process.versions.node,
  };
}
