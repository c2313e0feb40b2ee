// resnet-wasm: int8 ResNet image classification in WebAssembly SIMD.
export { loadModel, Model, type ModelSource, type Classification, type ClassifyOptions } from './runtime/model.ts';
export { MAX_WASM_BYTES } from './runtime/memory-plan.ts';
export type { LoadOptions, LoadProgress } from './runtime/load/options.ts';
export { toRgbImage, type ImageSource, type RawImage, type DrawableImage } from './image/sources.ts';
export { decodeBytes, type DecoderChoice, type DecodeBytesOptions } from './image/decoders.ts';
export type { Prediction } from './runtime/topk.ts';
export { FrameStream, type FrameSource, type StreamOptions, type FrameClassification, type StreamSummary } from './stream/frames.ts';
export type { VideoSource, VideoElementLike, MediaStreamLike } from './stream/video.ts';
export { OptionError } from './options/validate.ts';
export type { MemoryFootprint } from './runtime/network.ts';
export { KernelBuildError, type KernelBuild, type KernelChoice } from './runtime/wasm.ts';
export { decodeImage, type RgbImage } from './image/decode.ts';
export { ResnetWasmError, ModelFormatError, ModelLoadError, ImageDecodeError, BlockLesionError } from './errors.ts';
export { writeModel } from './format/writer.ts';
export { readModel, decodeModel, ModelStreamParser } from './format/reader.ts';
export type * from './model/types.ts';
export { withoutBlocks, type LesionOptions } from './lesion/without.ts';
export { residualBlocks, type ResidualBlock } from './lesion/blocks.ts';
