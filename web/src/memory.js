// How much memory a stylization needs, and how much this device lets it use: the model
// package's rule (sanet/request.py estimate_memory_mb), as metadata.json `memory` publishes it.

import { boxSize, inside, pieceMargins, PIECE_SIDES, planPieces } from './pieces.js';

/** TF.js's WebAssembly heap is a wasm32 memory: it cannot grow past 4 GiB. */
const WASM_HEAP_LIMIT_MB = 4096;
/** When the browser does not say how much memory the device has (navigator.deviceMemory). */
const UNKNOWN_DEVICE_GB = 4;

/**
 * @typedef {{bytesPerFloat: number, attentionCopies: number, activationCopies: number,
 *   activationChannels: number}} MemoryRule
 * @typedef {{height: number, width: number}} Size a working size
 */

/** The memory rule from metadata.json; throws, worded for the user, when it is missing. */
export function memoryRule(metadata) {
  const { bytes_per_float, attention_copies, activation_copies, activation_channels } =
    metadata?.memory ?? {};
  const rule = {
    bytesPerFloat: bytes_per_float,
    attentionCopies: attention_copies,
    activationCopies: activation_copies,
    activationChannels: activation_channels,
  };
  for (const [name, value] of Object.entries(rule)) {
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`its memory rule ${name} is invalid`);
  }
  return rule;
}

const positions = ({ height, width }, stride) =>
  Math.ceil(height / stride) * Math.ceil(width / stride);

const area = ({ height, width }) => height * width;

/**
 * The largest attention's floats of `query`'s positions at relu4_1 and relu5_1: over the style's,
 * the content's own (`blend`: `content`, else `query` itself) or style2's
 * (sanet/request.py _attention_floats).
 */
function attentionFloats(query, style, blend, style2, content = null) {
  const keys = [style, ...(blend ? [content ?? query] : []), ...(style2 ? [style2] : [])];
  return Math.max(
    ...keys.map(
      (key) => positions(query, 8) * positions(key, 8) + positions(query, 16) * positions(key, 16),
    ),
  );
}

/**
 * Peak MB of one stylization at these working sizes (sanet/request.py estimate_memory_mb).
 * `blend`: strength below 1 or a region mask (the content-content attention runs too).
 * @param {MemoryRule} rule
 * @param {Size} content
 * @param {Size} style
 * @param {boolean} blend
 * @param {Size|null} style2 a second style mixed in
 */
export function estimateMemoryMb(rule, content, style, blend, style2 = null) {
  const attention = attentionFloats(content, style, blend, style2);
  const activations =
    rule.activationChannels * (area(content) + area(style) + (style2 ? area(style2) : 0));
  const floats = rule.attentionCopies * attention + rule.activationCopies * activations;
  return Math.floor((floats * rule.bytesPerFloat) / 2 ** 20);
}

/**
 * @typedef {{fixedMb: number, imageCopies: number, mapCopies: number, streamMapCopies: number,
 *   activationCopies: number, passImageCopies: number, passMapCopies: number,
 *   piecesFixedMb: number, mapChannels: number, align: number, minTile: number,
 *   encoderMargin: number, featuresMargin: number}} TiledRule margins in pixels; fixedMb and
 *   piecesFixedMb in MiB
 */

/**
 * The rule of a run in tiles (metadata.json `memory` and `tiling`), or null when the model has
 * none: it cannot run at full size then.
 * @returns {TiledRule|null}
 */
export function tiledRule(metadata) {
  const memory = metadata?.memory ?? {};
  const tiling = metadata?.tiling ?? {};
  const rule = {
    fixedMb: memory.tiled_fixed_mb,
    imageCopies: memory.tiled_image_copies,
    mapCopies: memory.tiled_map_copies,
    streamMapCopies: memory.tiled_stream_map_copies,
    activationCopies: memory.tiled_activation_copies,
    passImageCopies: memory.tiled_pass_image_copies,
    passMapCopies: memory.tiled_pass_map_copies,
    piecesFixedMb: memory.tiled_pieces_fixed_mb,
    mapChannels: memory.map_channels,
    align: tiling.align,
    minTile: tiling.min_tile,
    encoderMargin: tiling.encoder_margin,
    featuresMargin: tiling.features_margin * tiling.relu4_1_stride,
  };
  return Object.values(rule).every((value) => Number.isInteger(value) && value >= 1) ? rule : null;
}

/**
 * Peak MB of one stylization through the signature's `tile` input, `tile` the kept side on the
 * grid (sanet/request.py estimate_tiled_memory_mb).
 * @param {MemoryRule} rule
 * @param {TiledRule} tiled
 * @param {Size} content
 * @param {Size} style
 * @param {number} tile
 * @param {boolean} blend
 * @param {Size|null} style2
 * @param {number} passes the iterations
 * @param {boolean} streamed the signature's `stream` (never with `blend`): no content map held
 * @param {boolean} pieces one call of a request in pieces, `content` the largest crop a call is
 *   sent: the heap keeps the other calls' blocks too (a fixed part more)
 */
export function estimateTiledMemoryMb(
  rule,
  tiled,
  content,
  style,
  tile,
  blend,
  style2 = null,
  passes = 1,
  streamed = false,
  pieces = false,
) {
  const styles = [style, style2].filter(Boolean);
  const region = ({ height, width }, margin) => ({
    height: Math.min(height, tile + 2 * margin),
    width: Math.min(width, tile + 2 * margin),
  });
  const decoded = region(content, tiled.featuresMargin);
  const attention = attentionFloats(decoded, style, blend, style2, content);
  const encoded = streamed ? region(content, tiled.featuresMargin + tiled.encoderMargin) : decoded;
  const tiles = [
    ...[content, ...styles].map((image) => region(image, tiled.encoderMargin)),
    encoded,
  ];
  const activations = rule.activationChannels * Math.max(...tiles.map(area));
  const mapsOf = (image) => tiled.mapChannels * (positions(image, 8) + positions(image, 16));
  const pixels = 3 * area(content);
  const contentMaps = mapsOf(content);
  const heldMaps = streamed ? 0 : contentMaps;
  const maps = styles.reduce((sum, image) => sum + mapsOf(image), heldMaps);
  const floats =
    tiled.imageCopies * pixels +
    tiled.mapCopies * maps +
    (streamed ? tiled.streamMapCopies * contentMaps : 0) +
    tiled.activationCopies * activations +
    rule.attentionCopies * attention +
    (passes - 1) * (tiled.passImageCopies * pixels + tiled.passMapCopies * heldMaps);
  const fixedMb = tiled.fixedMb + (pieces ? tiled.piecesFixedMb : 0);
  return fixedMb + Math.floor((floats * rule.bytesPerFloat) / 2 ** 20);
}

/**
 * Pixels one pass in `tile`s runs through the encoder and the decoder, margins included: what a
 * plan is compared by (sanet/request.py tiled_pixels). `streamed` encodes the content twice.
 * @param {Size} content
 * @param {number} tile
 * @param {TiledRule} tiled
 * @param {boolean} streamed
 */
export function tiledPixels(content, tile, tiled, streamed) {
  const area = (margin) => tilesArea(content, wholeBox(content), tile, margin);
  const { encoderMargin, featuresMargin } = tiled;
  const work = area(encoderMargin) + area(featuresMargin);
  return streamed ? work + area(encoderMargin + featuresMargin) : work;
}

const wholeBox = ({ height, width }) => ({ top: 0, left: 0, bottom: height, right: width });

/**
 * Pixels of the tiles of side `tile` (0: one tile) that cover `box` of an image of `size`, each
 * with `margin` more on every side within the image.
 */
function tilesArea(size, box, tile, margin) {
  const side = tile || Math.max(size.height, size.width);
  const axis = (start, stop, length) => {
    let sum = 0;
    for (let at = start; at < stop; at += side) {
      sum += Math.min(length, Math.min(stop, at + side) + margin) - Math.max(0, at - margin);
    }
    return sum;
  };
  return axis(box.top, box.bottom, size.height) * axis(box.left, box.right, size.width);
}

/**
 * Pixels a request in pieces (`plan` of planInPieces) runs through the encoder and the decoder,
 * margins included, as tiledPixels counts them: each measuring call's encoder tiles over its
 * piece, and each stylizing call's tiles over its crop, without the statistics pass (the moments
 * are given). Also how many calls it makes.
 * @returns {{pixels: number, calls: number}}
 */
export function piecesWork(content, { piece, tile, streamed }, tiled) {
  const { encoderMargin, featuresMargin, align } = tiled;
  const [measuring, stylizing] = pieceMargins(tiled).map((margin) =>
    planPieces(content, piece, margin, align),
  );
  let pixels = 0;
  for (const piece of measuring) {
    const [top, left, bottom, right] = inside(piece);
    pixels += tilesArea(boxSize(piece.crop), { top, left, bottom, right }, tile, encoderMargin);
  }
  for (const { crop } of stylizing) {
    const size = boxSize(crop);
    const area = (margin) => tilesArea(size, wholeBox(size), tile, margin);
    pixels +=
      area(featuresMargin) + area(streamed ? encoderMargin + featuresMargin : encoderMargin);
  }
  return { pixels, calls: measuring.length + stylizing.length };
}

/**
 * The largest tile side (on the grid, from one tile for the whole image down to the smallest)
 * whose estimate (`estimateMb(tile)`) fits `budgetMb`, with that estimate; null when not even
 * the smallest fits (then `needed` is the smallest tile's estimate).
 * @returns {{tile: number|null, neededMb: number}}
 */
function largestTile(tiled, content, estimateMb, budgetMb) {
  const whole = Math.ceil(Math.max(content.height, content.width) / tiled.align) * tiled.align;
  let neededMb = Infinity;
  for (let tile = Math.max(whole, tiled.minTile); tile >= tiled.minTile; tile -= tiled.align) {
    neededMb = estimateMb(tile);
    if (neededMb <= budgetMb) return { tile, neededMb };
  }
  return { tile: null, neededMb };
}

/**
 * How to run a request at full size within `budgetMb` (sanet/tiling.py plan_tiling's rule): the
 * largest tile that fits holding the content's maps, or streamed (not with `blend`), whichever
 * runs fewer pixels (`tiledPixels`); `tile` null when neither fits (then `neededMb` is the
 * least the smallest tiles need). `pieces`: `content` is the largest crop of a request in
 * pieces (estimateTiledMemoryMb).
 * @returns {{tile: number|null, neededMb: number, streamed: boolean}}
 */
export function planTiles(
  rule,
  tiled,
  content,
  style,
  blend,
  style2,
  budgetMb,
  passes = 1,
  pieces = false,
) {
  const plans = [false, ...(blend ? [] : [true])].map((streamed) => {
    const estimateMb = (tile) =>
      estimateTiledMemoryMb(
        rule,
        tiled,
        content,
        style,
        tile,
        blend,
        style2,
        passes,
        streamed,
        pieces,
      );
    return { ...largestTile(tiled, content, estimateMb, budgetMb), streamed };
  });
  return cheapestFitting(plans, ({ tile, streamed }) =>
    tiledPixels(content, tile, tiled, streamed),
  );
}

/**
 * Of `plans` ({tile, neededMb}), those that fit (a tile), the one of least `work(plan)`, the
 * earlier on a tie; when none fits, the one that needs the least memory.
 */
function cheapestFitting(plans, work) {
  const fitting = plans.filter(({ tile }) => tile !== null);
  if (!fitting.length) return plans.reduce((a, b) => (b.neededMb < a.neededMb ? b : a));
  return fitting.reduce((a, b) => (work(b) < work(a) ? b : a));
}

/**
 * Whether a full-size request can run in pieces of `side` (pieces.js): when the photo is larger
 * than one, and the statistics are the request's only global part (one pass, strength 1, no
 * region).
 */
export const inPieces = (content, blend, passes, side) =>
  !blend && passes === 1 && Math.max(content.height, content.width) > side;

/**
 * How to run a full-size request in pieces of `side` within `budgetMb` of heap: planTiles's plan
 * for the largest crop a stylizing call is sent (a piece is at most `side` plus one step of the
 * grid, with its margins; the estimate in pieces, which also counts the other calls' blocks the
 * heap keeps), which bounds every call's memory whatever the photo's size. The photo and the
 * result stay in JavaScript as RGBA: pageOwnMb counts them.
 * @returns {{tile: number|null, neededMb: number, streamed: boolean, piece: number}}
 */
export function planInPieces(rule, tiled, content, style, style2, budgetMb, side) {
  const [, margin] = pieceMargins(tiled);
  const largest = (length) => Math.min(length, side + tiled.align + 2 * margin);
  const crop = { height: largest(content.height), width: largest(content.width) };
  return { ...planTiles(rule, tiled, crop, style, false, style2, budgetMb, 1, true), piece: side };
}

/**
 * What the page's renderer holds beside TF.js's heap in a full-size run, in MiB: a fixed part
 * (Chromium's renderer, the page, the worker with TF.js and its threads) and, per pixel of the
 * photo, its decoded bitmap and canvas, its RGBA in the page and in the worker, the result's,
 * its canvas and its export, and what the collector has not freed yet. Fitted on the page in
 * Chromium, its renderer's peak less its heap: 347 MB at 1 megapixel (the full-size model),
 * 697 to 960 MB at 12 (the test model, in one call, in pieces and streamed; docs/web-app.md).
 */
export const PAGE_FIXED_MB = 384;
export const PAGE_BYTES_PER_PIXEL = 52;

/** MiB the page's renderer holds beside the heap for a full-size run on `content`. */
export const pageOwnMb = (content) =>
  PAGE_FIXED_MB + Math.ceil((PAGE_BYTES_PER_PIXEL * area(content)) / 2 ** 20);

/**
 * The page's plan for a full-size request within `budgetMb`, the tab's: the heap gets what the
 * page's own part leaves (pageOwnMb). Of planTiles's plan for the whole photo in one call and
 * the plans in pieces of each of PIECE_SIDES that serve it (inPieces), those that fit, the one
 * that runs the fewest pixels through the encoder and the decoder (tiledPixels, piecesWork):
 * pieces measure the photo first and carry margins, so they run where one call does not fit,
 * or fits only in tiles whose margins cost more. When none fits, the one that needs the least.
 * `neededMb` is the tab's (the heap's estimate, `heapMb`, and the page's own part).
 * @returns {{tile: number|null, neededMb: number, heapMb: number, streamed: boolean,
 *   piece?: number}}
 */
export function fullSizePlan(rule, tiled, content, style, blend, style2, budgetMb, passes = 1) {
  const ownMb = pageOwnMb(content);
  const heapBudgetMb = budgetMb - ownMb;
  const plans = [
    planTiles(rule, tiled, content, style, blend, style2, heapBudgetMb, passes),
    ...PIECE_SIDES.filter((side) => inPieces(content, blend, passes, side)).map((side) =>
      planInPieces(rule, tiled, content, style, style2, heapBudgetMb, side),
    ),
  ];
  const plan = cheapestFitting(plans, (plan) =>
    plan.piece
      ? piecesWork(content, plan, tiled).pixels
      : tiledPixels(content, plan.tile, tiled, plan.streamed),
  );
  return { ...plan, heapMb: plan.neededMb, neededMb: plan.neededMb + ownMb };
}

/**
 * MB a stylization may use on `backend`: half the device's memory (the browser, the page and
 * the rest of the system need the other half; GPUs without their own memory share it), and on
 * WebAssembly at most its heap's limit. At full size, where the photo's copies grow with it,
 * the page's own renderer counts against it too (fullSizePlan).
 * @param {string} backend
 * @param {number|undefined} deviceMemoryGb navigator.deviceMemory (absent in some browsers)
 */
export function memoryBudgetMb(backend, deviceMemoryGb) {
  const device = ((deviceMemoryGb || UNKNOWN_DEVICE_GB) * 1024) / 2;
  return backend === 'wasm' ? Math.min(WASM_HEAP_LIMIT_MB, device) : device;
}
