// resnet-wasm: int8 ResNet image classification in WebAssembly SIMD.

export {
  BlockLesionError,
  ImageDecodeError,
  ModelFormatError,
  ModelLoadError,
  ResnetWasmError,
  ThreadFailureError,
} from './errors.ts';
export { decodeModel, ModelStreamParser, readModel } from './format/reader.ts';
export { writeModel } from './format/writer.ts';
export { decodeImage, type RgbImage } from './image/decode.ts';
export { type DecodeBytesOptions, type DecoderChoice, decodeBytes } from './image/decoders.ts';
export { type DrawableImage, type ImageSource, type RawImage, toRgbImage } from './image/sources.ts';
export type { View } from './image/views.ts';
export { type ResidualBlock, residualBlocks } from './lesion/blocks.ts';
export { type LesionOptions, withoutBlocks } from './lesion/without.ts';
export type * from './model/types.ts';
export { OptionError, type ThreadsChoice } from './options/validate.ts';
export type { LoadOptions, LoadProgress } from './runtime/load/options.ts';
export { MAX_WASM_BYTES } from './runtime/memory-plan.ts';
export { type Classification, type ClassifyOptions, loadModel, Model, type ModelSource } from './runtime/model.ts';
export type { MemoryFootprint } from './runtime/network.ts';
export type { Prediction } from './runtime/topk.ts';
export { type KernelBuild, KernelBuildError, type KernelChoice } from './runtime/wasm.ts';
export {
  type FrameClassification,
  type FrameSource,
  FrameStream,
  type StreamOptions,
  type StreamSummary,
} from './stream/frames.ts';
export type { MediaStreamLike, VideoElementLike, VideoSource } from './stream/video.ts';
export { TeachError } from './teach/errors.ts';
export type { Head } from './teach/head.ts';
export { type Example, type HeadMethod, type TeachOptions, teach } from './teach/teach.ts';
