/**
 * What identifies a base network: the CRC-32 of everything that makes its embedding (the metadata
 * of every layer but the fc, the tensors they write, the preprocessing, then their payloads). A
 * taught head keeps it, so it is never run on another network's embeddings; a taught model has the
 * same id as its base, so a head taught on either runs on both.
 */

import { crc32 } from '../format/crc32.ts';
import type { NetworkHeader } from '../model/types.ts';

export function baseId(header: NetworkHeader, parameters: (layer: number) => Uint8Array): string {
  const features = header.layers.slice(0, -1);
  const logits = header.layers[features.length].output;
  const described = JSON.stringify({
    preprocessing: header.preprocessing,
    tensors: header.tensors.filter((_, id) => id !== logits),
    layers: features,
  });
  let crc = crc32(new TextEncoder().encode(described));
  features.forEach((_, index) => (crc = crc32(parameters(index), crc)));
  return (crc >>> 0).toString(16).padStart(8, '0');
}
