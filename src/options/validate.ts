/**
 * The options that the library, the command line and `serve` share (`top`, `decoder`, `threads`,
 * teach's `augment`),
 * checked in one place so that a bad value gets the same message from all three: `top must be a
 * positive integer, got 0`. The command line and HTTP query strings hand their text to
 * `fromText` first, so that `--top 0` and `?top=0` read as the number 0, as `{ top: 0 }` does.
 */
import { ResnetWasmError } from '../errors.ts';
import type { DecoderChoice } from '../image/decoders.ts';
import { VIEWS, type View } from '../image/views.ts';

/** An option with a value it cannot take. `option` is its name as the API spells it (`top`). */
export class OptionError extends ResnetWasmError {
  readonly option: string;

  constructor(option: string, expected: string, value: unknown) {
    super(`${option} must be ${expected}, got ${describeValue(value)}`);
    this.name = 'OptionError';
    this.option = option;
  }
}

export const DEFAULT_TOP = 5;
const DECODERS: readonly DecoderChoice[] = ['auto', 'sharp', 'browser', 'js'];

/** How many classes to return: a positive integer (more than the model has gives them all). */
export function checkTop(value: unknown = DEFAULT_TOP): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
    throw new OptionError('top', 'a positive integer', value);
  return value;
}

export function checkDecoder(value: unknown = 'auto'): DecoderChoice {
  if (!DECODERS.includes(value as DecoderChoice))
    throw new OptionError('decoder', `one of ${DECODERS.join(', ')}`, value);
  return value as DecoderChoice;
}

/** Threads sharing each layer: a count, or `auto` (the cores, at most 4, where threads can run). */
export type ThreadsChoice = number | 'auto';

export function checkThreads(value: unknown = 'auto'): ThreadsChoice {
  if (value !== 'auto' && (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1))
    throw new OptionError('threads', 'a positive integer or "auto"', value);
  return value;
}

/**
 * The extra views teach adds of each training photo: `true` for all of them (flip and crop),
 * `false` for none, or a list of distinct views.
 */
export function checkAugment(value: unknown = false): View[] {
  if (value === true) return [...VIEWS];
  if (value === false) return [];
  if (!Array.isArray(value) || !value.every((view) => VIEWS.includes(view)) || new Set(value).size !== value.length)
    throw new OptionError('augment', `true, false or a list of distinct views (${VIEWS.join(', ')})`, value);
  return [...value];
}

/** A command-line or query-string value as the API would get it: decimal numbers become numbers. */
export function fromText(text: string): string | number {
  return /^[-+]?\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : text;
}

function describeValue(value: unknown): string {
  return typeof value === 'string' || Array.isArray(value) ? JSON.stringify(value) : String(value);
}
