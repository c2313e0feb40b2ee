import { convertModel } from '../convert/convert.ts';
import type { PreprocessingPreset } from '../convert/imagenet.ts';
import type { CalibrationMethod } from '../quantize/calibrate.ts';
import { type CommandArgs, UsageError } from './command.ts';

const METHODS = ['minmax', 'percentile', 'entropy'];
const PRESETS = ['torch', 'caffe', 'tf'];

/** `resnet-wasm convert` (options in commands.ts). */
export async function run({ values, positionals }: CommandArgs): Promise<void> {
  if (positionals.length !== 1 || !values.output) throw new UsageError('convert needs one model file and -o <out.rnw>');
  oneOf(values.calibration, METHODS, '--calibration');
  if (values.preprocessing !== undefined) oneOf(values.preprocessing, PRESETS, '--preprocessing');
  const started = performance.now();
  const { model, bytes } = await convertModel({
    input: positionals[0],
    output: values.output,
    calibrate: values.calibrate,
    method: values.calibration as CalibrationMethod,
    ranges: values.ranges,
    saveRanges: values['save-ranges'],
    preprocessing: values.preprocessing as PreprocessingPreset | undefined,
    labels: values.labels,
    onProgress: progressLine,
  });
  progressLine('');
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `${values.output}: ${model.architecture}, ${model.layers.length} layers, ${(bytes / 2 ** 20).toFixed(1)} MiB (${seconds} s)\n`,
  );
}

function oneOf(value: string | undefined, allowed: string[], option: string): void {
  if (!allowed.includes(value ?? ''))
    throw new UsageError(`${option} must be one of ${allowed.join(', ')}, got "${value}"`);
}

/** One updating line on a terminal, plain lines elsewhere. */
function progressLine(message: string): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${message}`);
  else if (message) process.stderr.write(`${message}\n`);
}
