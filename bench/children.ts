// The benchmark's child processes (one per configuration, the neighbours of --contention): forked
// here so that every one of them is stopped when the benchmark ends, however it ends: done, an
// error, Ctrl-C or a kill signal.
import { type ChildProcess, fork } from 'node:child_process';
import { constants } from 'node:os';

const running = new Set<ChildProcess>();
let guarded = false;

/** `module` (TypeScript, run through tsx) in a child with an IPC channel. */
export function forkChild(module: string, args: string[]): ChildProcess {
  guardExit();
  const child = fork(module, args, { execArgv: ['--import', 'tsx'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** The process ids of the children still running. */
export function childPids(): number[] {
  return [...running].flatMap((child) => (child.pid === undefined ? [] : [child.pid]));
}

/** The child's next message; rejects if it exits first. */
export function nextMessage<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      child.off('exit', onExit);
      resolve(m as T);
    };
    const onExit = (code: number | null, signal: string | null) => {
      child.off('message', onMessage);
      reject(new Error(`${what}: the child process exited (${signal ?? code}) without an answer`));
    };
    if (child.exitCode !== null || child.signalCode !== null) return onExit(child.exitCode, child.signalCode);
    child.once('message', onMessage);
    child.once('exit', onExit);
  });
}

function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}

function guardExit(): void {
  if (guarded) return;
  guarded = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.once(signal, () => {
      killAll();
      process.exit(128 + constants.signals[signal]);
    });
}
