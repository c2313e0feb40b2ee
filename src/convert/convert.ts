/**
 * The converter: a trained model in (ONNX, TF.js layers), a calibrated int8 .rnw file out.
 *
 *   import (onnx.ts, tfjs.ts) → lower (lower.ts) → calibrate on photos, or reuse saved ranges
 *   → quantize → write to a temporary file → rename
 *
 * Every check runs before the output is written, and the output appears whole or not at all.
 */
import { readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ModelImportError } from '../errors.ts';
import { writeModel } from '../format/writer.ts';
import { decodeImage } from '../image/decode.ts';
import { preprocessFloat } from '../image/preprocess.ts';
import type { FloatModel, QuantModel, QuantParams } from '../model/types.ts';
import { type CalibrationMethod, calibrate } from '../quantize/calibrate.ts';
import { quantizeModel } from '../quantize/quantize.ts';
import { defaultLabels, type PreprocessingPreset, preprocessingPreset } from './imagenet.ts';
import { lowerGraph } from './lower.ts';
import { importOnnx } from './onnx.ts';
import { importTfjsLayers } from './tfjs.ts';

export interface ConvertOptions {
  input: string;
  output: string;
  /** A folder of photos to calibrate activation ranges on. */
  calibrate?: string;
  method?: CalibrationMethod;
  /** Activation ranges saved by an earlier conversion of the same model (instead of photos). */
  ranges?: string;
  /** Where to save the ranges used, for a later `ranges`. */
  saveRanges?: string;
  /** Overrides the source's preprocessing (default: torch for ONNX, caffe for Keras). */
  preprocessing?: PreprocessingPreset;
  /** A JSON array of class names, or a text file with one name per line. */
  labels?: string;
  onProgress?: (message: string) => void;
}

export interface ConvertResult {
  model: QuantModel;
  bytes: number;
}

/** The saved form of a calibration: which model, how, and every tensor's parameters. */
export interface SavedRanges {
  architecture: string;
  method: string;
  images: number;
  tensors: (QuantParams & { h: number; w: number; c: number })[];
}

export async function convertModel(options: ConvertOptions): Promise<ConvertResult> {
  const progress = options.onProgress ?? (() => {});
  const imported = await importModel(options);
  const model = imported.kind === 'quantized' ? imported.model : await quantizeFloat(imported.model, options, progress);
  const file = writeModel(model, 'resnet-wasm convert');
  await writeAtomically(options.output, file);
  return { model, bytes: file.length };
}

type Imported = { kind: 'float'; model: FloatModel } | { kind: 'quantized'; model: QuantModel };

async function importModel(options: ConvertOptions): Promise<Imported> {
  const file = basename(options.input);
  const labels = options.labels ? await readLabels(options.labels) : null;
  if (options.input.endsWith('.json')) {
    // Keras' ImageNet ResNets expect "caffe" preprocessing; model.json does not say so itself.
    const graph = await importTfjsLayers(options.input, { preprocessing: options.preprocessing ?? 'caffe' });
    return { kind: 'float', model: finish(lowerGraph(graph, file), options, labels) };
  }
  const bytes = await readInput(options.input);
  const imported = importOnnx(bytes, file);
  if (imported.kind === 'quantized') return { kind: 'quantized', model: finish(imported.model, options, labels) };
  return { kind: 'float', model: finish(lowerGraph(imported.graph, file), options, labels) };
}

/** Applies the preprocessing and label overrides, and names unnamed classes. */
function finish<T extends FloatModel | QuantModel>(model: T, options: ConvertOptions, labels: string[] | null): T {
  const preprocessing = options.preprocessing
    ? preprocessingPreset(options.preprocessing, model.tensors[0].h)
    : model.preprocessing;
  const classes = model.tensors[model.layers[model.layers.length - 1].output].c;
  if (labels && labels.length !== classes) {
    throw new ModelImportError(`${options.labels} has ${labels.length} labels, the model has ${classes} classes`);
  }
  return {
    ...model,
    preprocessing,
    labels: labels ?? (model.labels.length === classes ? model.labels : defaultLabels(classes)),
  };
}

async function quantizeFloat(
  model: FloatModel,
  options: ConvertOptions,
  progress: (message: string) => void,
): Promise<QuantModel> {
  const calibration = options.ranges
    ? await loadRanges(options.ranges, model)
    : await calibrateOnPhotos(model, options, progress);
  if (options.saveRanges) {
    await writeAtomically(options.saveRanges, new TextEncoder().encode(`${JSON.stringify(calibration, null, 1)}\n`));
  }
  return quantizeModel(model, calibration.tensors);
}

async function calibrateOnPhotos(
  model: FloatModel,
  options: ConvertOptions,
  progress: (message: string) => void,
): Promise<SavedRanges> {
  if (!options.calibrate)
    throw new ModelImportError('calibration needs photos: pass --calibrate <folder of images> (or --ranges FILE)');
  const inputs = await calibrationInputs(options.calibrate, model);
  const method = options.method ?? 'minmax';
  const ranges = calibrate(model, inputs, {
    method,
    onProgress: (done, total) => progress(`calibrating (${method}): ${done}/${total} image passes`),
  });
  const broken = ranges.findIndex((r) => !Number.isFinite(r.scale) || !Number.isFinite(r.zeroPoint));
  if (broken >= 0) {
    const layer = model.layers.find((l) => l.output === broken);
    throw new ModelImportError(
      `the network computes non-finite values (NaN or infinity) on the calibration photos, first at the output of ${layer ? `layer "${layer.name}"` : 'its input'}: check its weights`,
      { file: basename(options.input) },
    );
  }
  return {
    architecture: model.architecture,
    method,
    images: inputs.length,
    tensors: model.tensors.map((t, i) => ({ h: t.h, w: t.w, c: t.c, ...ranges[i] })),
  };
}

/** Every JPEG/PNG in the folder, preprocessed as the model expects. */
async function calibrationInputs(dir: string, model: FloatModel): Promise<Float32Array[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /\.(jpe?g|png)$/i.test(n)).sort();
  } catch (error) {
    throw new ModelImportError(`cannot read the calibration folder: ${(error as Error).message}`, { file: dir });
  }
  if (names.length === 0)
    throw new ModelImportError('the calibration folder holds no JPEG or PNG images', { file: dir });
  return Promise.all(
    names.map(async (name) => {
      const path = join(dir, name);
      try {
        return preprocessFloat(decodeImage(await readFile(path)), model.preprocessing);
      } catch (error) {
        throw new ModelImportError(`calibration image: ${(error as Error).message}`, { file: path });
      }
    }),
  );
}

async function loadRanges(path: string, model: FloatModel): Promise<SavedRanges> {
  let saved: SavedRanges;
  try {
    saved = JSON.parse(await readFile(path, 'utf8')) as SavedRanges;
  } catch (error) {
    throw new ModelImportError(`cannot read saved ranges: ${(error as Error).message}`, { file: path });
  }
  const fits =
    Array.isArray(saved.tensors) &&
    saved.tensors.length === model.tensors.length &&
    saved.tensors.every(
      (t, i) => t.h === model.tensors[i].h && t.w === model.tensors[i].w && t.c === model.tensors[i].c,
    );
  if (!fits) throw new ModelImportError('these ranges were saved for a different network', { file: path });
  return saved;
}

async function readLabels(path: string): Promise<string[]> {
  const text = await readInput(path).then((b) => new TextDecoder().decode(b));
  if (text.trimStart().startsWith('[')) {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed) && parsed.every((l) => typeof l === 'string')) return parsed;
    throw new ModelImportError('labels must be a JSON array of strings', { file: path });
  }
  return text.split(/\r?\n/).filter((l) => l.trim() !== '');
}

async function readInput(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new ModelImportError(`cannot read: ${(error as Error).message}`, { file: path });
  }
}

/** Writes next to the destination, then renames: a reader never sees a half-written file. */
export async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => {});
    throw error;
  }
}
