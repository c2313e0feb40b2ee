/**
 * One arena for all activations. Each tensor lives from the layer that writes it to the last layer
 * that reads it; a buffer is reused as soon as its tensor is dead. A layer's output never shares
 * bytes with its inputs (no kernel works in place). Every buffer is followed by SLACK bytes that
 * the SIMD kernels may read or write past a tensor's end.
 */

export const SLACK = 16;
const ALIGN = 16;

export interface ArenaPlan {
  /** Byte offset of each tensor within the arena. */
  offsets: number[];
  /** Arena size: the peak of simultaneously live activation bytes (with alignment and slack). */
  bytes: number;
}

interface Block {
  offset: number;
  size: number;
}

export interface TensorLife {
  bytes: number;
  /** Layer index that writes the tensor (-1 for the network input). */
  firstLayer: number;
  /** Last layer index that reads it (Infinity for the network output). */
  lastLayer: number;
}

export function planArena(tensors: TensorLife[], layerCount: number): ArenaPlan {
  const offsets = new Array<number>(tensors.length).fill(-1);
  const free: Block[] = [];
  let end = 0;
  const allocate = (size: number): number => {
    const i = free.findIndex((b) => b.size >= size);
    if (i < 0) {
      const tail =
        free.length > 0 && free[free.length - 1].offset + free[free.length - 1].size === end ? free.pop()! : null;
      const offset = tail ? tail.offset : end;
      end = offset + size;
      return offset;
    }
    const block = free[i];
    if (block.size === size) free.splice(i, 1);
    else free[i] = { offset: block.offset + size, size: block.size - size };
    return block.offset;
  };
  const release = (offset: number, size: number) => {
    free.push({ offset, size });
    free.sort((a, b) => a.offset - b.offset);
    for (let i = free.length - 1; i > 0; i--) {
      if (free[i - 1].offset + free[i - 1].size === free[i].offset) {
        free[i - 1].size += free[i].size;
        free.splice(i, 1);
      }
    }
  };
  const padded = tensors.map((t) => alignUp(t.bytes + SLACK, ALIGN));
  for (let layer = -1; layer < layerCount; layer++) {
    tensors.forEach((t, id) => {
      if (t.firstLayer === layer) offsets[id] = allocate(padded[id]);
    });
    tensors.forEach((t, id) => {
      if (t.lastLayer === layer) release(offsets[id], padded[id]);
    });
  }
  return { offsets, bytes: end };
}

export function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
