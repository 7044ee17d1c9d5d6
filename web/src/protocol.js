// The messages between the page and the inference worker, defined once for both sides.
//
// The page sends a request {id, type, ...}; the worker answers it with one reply
// {type: 'reply', id, ok, ...} and, while it works, posts progress and notices. Requests run one
// at a time, in order. Everything else (who retries what, when) is up to each side.

/** Requests from the page. */
export const Request = Object.freeze({
  LOAD: 'load', // {modelUrl, totalBytes, backend} -> LoadReply; the previous model stays until then
  BACKEND: 'backend', // {backend} -> BackendReply: the loaded model on another backend
  // {content, style, iterations, strength, styleResolution?, style2?, mix?, mask?, keepColors?,
  //  tile?, stream?, pieces?, reuse?} -> StylizeReply; reuse (default true): feed and keep
  //  encodings (encodings.js); tile: the tile side on metadata.json's grid (0, the default:
  //  untiled), with progress per tile; stream: the signature's; pieces: {side, align, margins}
  //  (pieces.js workerPieces), a full-size request in pieces, null (the default): one call
  STYLIZE: 'stylize',
});

/** Messages from the worker. */
export const Report = Object.freeze({
  REPLY: 'reply',
  // {stage, message?, loaded?, total?, cached?}; a tiled run's: {stage, step, tile, tiles},
  // step 'encode' or 'decode', tile n of tiles (tile-progress.js)
  PROGRESS: 'progress',
  NOTICE: 'notice', // {message}
});

/** Stages a progress report can be in. */
export const Stage = Object.freeze({
  DOWNLOAD: 'download',
  BACKEND: 'backend',
  WARMUP: 'warmup',
  STYLIZE: 'stylize',
});

/** Why a request failed, so that the page can act on it. */
export const Failure = Object.freeze({
  MODEL: 'model', // the model could not be loaded
  BACKEND: 'backend', // no backend could run it
  OOM: 'oom',
  CONTEXT_LOST: 'context-lost',
  OTHER: 'other',
});

/**
 * @typedef {{data: Uint8ClampedArray, width: number, height: number}} Pixels RGBA, row-major
 * @typedef {{name: string, threads?: number, simd?: boolean, threadedBuild?: boolean,
 *   maxTextureSize?: number, crossOriginIsolated: boolean}} BackendInfo
 * @typedef {{fixedMs: number, msPerMegapixel: number}} Speed one iteration takes fixedMs plus
 *   msPerMegapixel per megapixel of content and style, measured on this device
 * @typedef {{backend: BackendInfo, failures: string[], warmupMs: number, speed: Speed,
 *   baseline: number}} BackendReply
 * @typedef {BackendReply & {fromCache: boolean, bytes: number, cacheError?: string,
 *   downloadMs: number, rehearsalMs: number|null}} LoadReply
 * @typedef {{image: Pixels, resolution: number, ms: number, reused: string[],
 *   backend: BackendInfo, numTensors: number, kept: number, baseline: number, speed: Speed,
 *   heapBytes: number|null}} StylizeReply heapBytes: the WebAssembly heap's size (it only
 *   grows: the most held since the backend started), null on other backends; resolution: the longest side the model computed at (lower than asked after
 *   running out of memory); reused: the images whose kept encodings fed the run; numTensors:
 *   the worker's tensors besides the `kept` encodings
 */

/** A request message. */
export const request = (id, type, payload = {}) => ({ ...payload, id, type });

/** The reply to request `id`, and the buffers to transfer with it. */
export function reply(id, result) {
  return {
    message: { ...result, type: Report.REPLY, id, ok: true },
    transfer: result?.image ? [result.image.data.buffer] : [],
  };
}

/** The failure reply to request `id`. */
export const failed = (id, kind, message) => ({
  type: Report.REPLY,
  id,
  ok: false,
  error: { kind, message },
});

export const progress = (stage, fields = {}) => ({ ...fields, type: Report.PROGRESS, stage });

export const notice = (message) => ({ type: Report.NOTICE, message });

/** The Error a failure reply stands for, with its `kind`. */
export const errorOf = (message) =>
  Object.assign(new Error(message.error.message), { kind: message.error.kind });
