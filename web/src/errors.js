// Sorts TF.js and browser failures into what the page can do about them.
import { Failure } from './protocol.js';

/**
 * @returns {'context-lost' | 'oom' | 'other'} 'context-lost': switch backend; 'oom': retry at a
 *   lower resolution (then on another backend); 'other': report it.
 */
export function classifyError(error) {
  const text = `${error?.name ?? ''} ${error?.message ?? error}`;
  if (/context (was )?lost|CONTEXT_LOST|device (was )?lost|DeviceLost/i.test(text)) {
    return Failure.CONTEXT_LOST;
  }
  const memory =
    /out of memory|\bOOM\b|failed to allocate|allocation failed|memory access out of bounds/i;
  const limits = /texture size|exceeds the (max|limit)|too large/i;
  if (error instanceof RangeError || memory.test(text) || limits.test(text)) return Failure.OOM;
  return Failure.OTHER;
}
