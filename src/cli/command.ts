/**
 * What a `resnet-wasm` command is: its name, one line for the overview, its options with their
 * help, examples, and the code that runs it, loaded only when the command runs (so that `classify`
 * never loads the HTTP server's or the converter's dependencies). main.ts parses every command's
 * options the same way (util.parseArgs, strict), prints its --help, and suggests the nearest name
 * for a misspelled command or option.
 */
import { parseArgs } from 'node:util';
import { ResnetWasmError } from '../errors.ts';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  default?: string;
  /** The value's placeholder in the help: `FILE`, `K`. */
  value?: string;
  help: string;
}

/** A command's parsed arguments: string options by name, boolean flags by name, the positionals. */
export interface CommandArgs {
  values: Record<string, string | undefined>;
  flags: Record<string, boolean>;
  positionals: string[];
}

export interface Command {
  name: string;
  /** One line in `resnet-wasm help`. */
  summary: string;
  /** The arguments after the command's name, e.g. `<image...> [options]`. */
  usage: string;
  options: Record<string, OptionSpec>;
  /** Whole command lines, each one that works as written. */
  examples: string[];
  /** More lines for `--help` (what it prints, what it answers). */
  details?: string;
  run(args: CommandArgs): Promise<void>;
}

/** Bad arguments: exit code 2, with a pointer to the command's help. */
export class UsageError extends ResnetWasmError {
  override name = 'UsageError';
}

/** A positive integer option of the command line (--workers, --runs): a usage error otherwise. */
export function positiveInteger(text: string | undefined, option: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${option} must be a positive integer, got "${text}"`);
  return n;
}

/** The exit codes, as README.md documents them. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export function parseCommandArgs(command: Command, args: string[]): CommandArgs | 'help' {
  const options = Object.fromEntries(
    Object.entries(command.options).map(([name, { type, short, default: fallback }]) => {
      return [
        name,
        { type, ...(short === undefined ? {} : { short }), ...(fallback === undefined ? {} : { default: fallback }) },
      ];
    }),
  );
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    throw toUsageError(error, command);
  }
  if (parsed.values.help) return 'help';
  const values: CommandArgs['values'] = {};
  const flags: CommandArgs['flags'] = {};
  for (const [name, spec] of Object.entries(command.options)) {
    const value = (parsed.values as Record<string, string | boolean | undefined>)[name];
    if (spec.type === 'boolean') flags[name] = value === true;
    else values[name] = value as string | undefined;
  }
  return { values, flags, positionals: parsed.positionals };
}

/** parseArgs' complaint as one line, with the nearest option's name when one is close. */
function toUsageError(error: unknown, command: Command): unknown {
  const code = (error as { code?: string }).code ?? '';
  if (!code.startsWith('ERR_PARSE_ARGS')) return error;
  const unknown = /Unknown option '(-{1,2}[^'=]+)/.exec((error as Error).message)?.[1];
  if (unknown === undefined) return new UsageError(`${command.name}: ${(error as Error).message}`);
  const near = nearest(unknown.replace(/^-+/, ''), [...Object.keys(command.options), 'help']);
  return new UsageError(
    `${command.name}: unknown option ${unknown}${near === undefined ? '' : `; did you mean --${near}?`}`,
  );
}

/** The candidate closest to `word` (edit distance at most 2, or a prefix of it), if any. */
export function nearest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = candidate.startsWith(word) && word.length >= 2 ? 1 : editDistance(word, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return bestDistance <= Math.min(2, Math.max(1, word.length - 1)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row.push(Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    }
    previous = row;
  }
  return previous[b.length];
}

/** `resnet-wasm <command> --help`: usage, what it does, its options with their defaults, examples. */
export function commandHelp(command: Command): string {
  const rows = Object.entries(command.options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` ${spec.value}` : ''}`;
    const fallback = spec.default === undefined ? '' : ` (default ${spec.default})`;
    return [flag, spec.help + fallback];
  });
  rows.push(['-h, --help', 'this help']);
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return [
    `Usage: resnet-wasm ${command.name} ${command.usage}`,
    '',
    `${command.summary}.`,
    ...(command.details ? ['', command.details] : []),
    '',
    'Options:',
    ...rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`),
    '',
    'Examples:',
    ...command.examples.map((line) => `  ${line}`),
    '',
  ].join('\n');
}

/** A command's code, loaded when it runs; a missing optional package is named with how to install it. */
export function lazy(
  load: () => Promise<{ run(args: CommandArgs): Promise<void> }>,
  packages: string[] = [],
): Command['run'] {
  return async (args) => {
    let module: Awaited<ReturnType<typeof load>>;
    try {
      module = await load();
    } catch (error) {
      const missing = packages.find((name) => isMissingPackage(error, name));
      if (missing === undefined) throw error;
      throw new ResnetWasmError(
        `this command needs the package "${missing}", which is not installed: npm install ${packages.join(' ')}`,
      );
    }
    return module.run(args);
  };
}

function isMissingPackage(error: unknown, name: string): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String(message).includes(`'${name}'`);
}
