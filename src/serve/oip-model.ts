/**
 * The model as the Open Inference Protocol describes it: one description, two views of it. The
 * metadata (/v2/models/NAME) gives KServe's datatypes and shapes with the batch dimension as -1;
 * Triton's model configuration (/v2/models/NAME/config) gives the same tensors as Triton's
 * ModelConfig JSON: TYPE_ names, dims without the batch dimension, max_batch_size, the input's
 * format. It declares one input and one output, as Triton's image_client.py requires: the crop's
 * UINT8 RGB pixels, NHWC (raw pixels need no normalization from the client), and the logits.
 * infer (oip.ts) takes more than it declares: encoded images, FP32 values, NCHW, the `top` output.
 */
import type { ModelSummary } from './protocol.ts';

export const VERSION = '1';
export const PLATFORM = 'resnet-wasm';

interface TensorDescription {
  name: string;
  datatype: keyof typeof TRITON_TYPES;
  /** Without the batch dimension. */
  dims: number[];
}

export interface ModelDescription {
  name: string;
  /** Images in one request (--max-batch). */
  maxBatchSize: number;
  input: TensorDescription & { format: 'FORMAT_NHWC' };
  output: TensorDescription & { labelFile: string };
}

const TRITON_TYPES = { UINT8: 'TYPE_UINT8', FP32: 'TYPE_FP32' } as const;

/** `modelFile` holds the labels: Triton's label_filename, which says that classification strings carry labels. */
export function describeModel(
  name: string,
  { input, labels }: ModelSummary,
  maxBatchSize: number,
  modelFile: string,
): ModelDescription {
  return {
    name,
    maxBatchSize,
    input: { name: 'input', datatype: 'UINT8', format: 'FORMAT_NHWC', dims: [input.h, input.w, input.c] },
    output: { name: 'logits', datatype: 'FP32', dims: [labels.length], labelFile: modelFile },
  };
}

/** The protocol's model metadata. */
export function modelMetadata({ name, input, output }: ModelDescription) {
  const tensor = ({ name, datatype, dims }: TensorDescription) => ({ name, datatype, shape: [-1, ...dims] });
  return { name, versions: [VERSION], platform: PLATFORM, inputs: [tensor(input)], outputs: [tensor(output)] };
}

/** Triton's model configuration extension: the ModelConfig message as JSON. */
export function modelConfig({ name, maxBatchSize, input, output }: ModelDescription) {
  return {
    name,
    platform: PLATFORM,
    backend: PLATFORM,
    max_batch_size: maxBatchSize,
    input: [{ name: input.name, data_type: TRITON_TYPES[input.datatype], format: input.format, dims: input.dims }],
    output: [
      {
        name: output.name,
        data_type: TRITON_TYPES[output.datatype],
        dims: output.dims,
        label_filename: output.labelFile,
      },
    ],
  };
}
