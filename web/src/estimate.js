// How long a stylization will take on this device, from the speed the worker measured.

/** Longer runs are refused up front, with the resolution that would fit. */
export const LIMIT_MS = 10 * 60 * 1000;

/**
 * @param {{fixedMs: number, msPerMegapixel: number}} speed protocol.js Speed
 * @param {{width: number, height: number}[]} sizes working sizes of content and style
 */
export function estimateMs(speed, sizes, iterations) {
  const megapixels = sizes.reduce((sum, { width, height }) => sum + width * height, 0) / 1e6;
  return iterations * (speed.fixedMs + speed.msPerMegapixel * megapixels);
}

/** "45 s", "3 min", "1 h 20 min". */
export function formatDuration(ms) {
  const seconds = Math.max(1, Math.round(ms / 1000));
  if (seconds < 90) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 90 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
