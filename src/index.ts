// resnet-wasm: int8 ResNet image classification in WebAssembly SIMD.
export { loadModel, Model, type ModelSource, type Classification, type ClassifyOptions } from './runtime/model.ts';
export { ModelLoadError, MAX_WASM_BYTES, type LoadOptions, type LoadProgress } from './runtime/load.ts';
export { toRgbImage, type ImageSource, type RawImage, type DrawableImage } from './image/sources.ts';
export { decodeBytes, type DecoderChoice, type DecodeBytesOptions } from './image/decoders.ts';
export type { Prediction } from './runtime/topk.ts';
export type { MemoryFootprint } from './runtime/network.ts';
export { KernelBuildError, type KernelBuild, type KernelChoice } from './runtime/wasm.ts';
export { decodeImage, type RgbImage } from './image/decode.ts';
export { ResnetWasmError, ModelFormatError, ImageDecodeError } from './errors.ts';
export { writeModel } from './format/writer.ts';
export { readModel, decodeModel, ModelStreamParser } from './format/reader.ts';
export type * from './model/types.ts';
export { teach, type Example, type TeachOptions, type HeadMethod } from './teach/teach.ts';
export type { Head } from './teach/head.ts';
export { TeachError } from './teach/errors.ts';
