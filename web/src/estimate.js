// How long a stylization will take on this device, from the speed the worker measured.

import { piecesWork, tiledPixels } from './memory.js';

/** Longer runs are refused up front, with the resolution that would fit. */
export const LIMIT_MS = 10 * 60 * 1000;

/**
 * @param {{fixedMs: number, msPerMegapixel: number}} speed protocol.js Speed
 * @param {{width: number, height: number}[]} sizes working sizes of content and style
 * @param {number} iterations
 * @param {number|null} contentWork for a run in tiles, memory.js tiledPixels: the pixels its
 *   encoder and decoder tiles run, margins included. An untiled run's content counts its pixels
 *   once (for the encoder and the decoder together), so this counts half.
 */
export function estimateMs(speed, sizes, iterations, contentWork = null) {
  const pixels = ({ width, height }) => width * height;
  const [content, ...styles] = sizes;
  const contentPixels = contentWork === null ? pixels(content) : contentWork / 2;
  const megapixels = (contentPixels + styles.reduce((sum, s) => sum + pixels(s), 0)) / 1e6;
  return iterations * (speed.fixedMs + speed.msPerMegapixel * megapixels);
}

/**
 * estimateMs of a run with `plan` (main.js memoryPlan): a run in tiles also runs their margins
 * (and, streamed, encodes the content twice), which at full size can double the time or more.
 * @param {{fixedMs: number, msPerMegapixel: number}} speed
 * @param {{width: number, height: number}[]} sizes working sizes, the content's first
 * @param {number} iterations
 * @param {{tile: number|null, streamed: boolean, piece?: number}} plan tile 0 or null: untiled;
 *   piece: in pieces of that side (memory.js planInPieces)
 * @param {import('./memory.js').TiledRule|null} tiled
 */
export function planMs(speed, sizes, iterations, plan, tiled) {
  const { tile, streamed, piece } = plan;
  if (piece) {
    // In pieces (memory.js planInPieces): each call also pays the fixed part.
    const { pixels, calls } = piecesWork(sizes[0], plan, tiled);
    return estimateMs(speed, sizes, 1, pixels) + (calls - 1) * speed.fixedMs;
  }
  const work = tile ? tiledPixels(sizes[0], tile, tiled, streamed) : null;
  return estimateMs(speed, sizes, iterations, work);
}

/** "45 s", "3 min", "1 h 20 min". */
export function formatDuration(ms) {
  const seconds = Math.max(1, Math.round(ms / 1000));
  if (seconds < 90) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 90 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
