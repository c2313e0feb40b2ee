import type { ImageSource } from '../image/sources.ts';

/** A frame as it arrives, before classification. */
export interface Frame {
  image: ImageSource;
  index: number;
  t: number;
  /** Frees what the frame holds (an ImageBitmap) when it is dropped or done with. */
  release?: () => void;
}
