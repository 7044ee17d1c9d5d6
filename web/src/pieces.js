// A photo in pieces, so that no call of the model holds the whole photo: the rule of
// convert/pieces.py (its docstring says why the result is the one call's). First a measuring call
// per piece (the signature's `measure`: the moments of the content's maps there, no image), then
// a stylizing call per piece with every piece's moments (`content_moments`), of which the page
// keeps the piece.

/** @typedef {{top: number, left: number, bottom: number, right: number}} Box pixels */
/** @typedef {{keep: Box, crop: Box}} Piece keep: the piece; crop: what a call is sent */

/**
 * The sides of the pieces the page plans with (memory.js fullSizePlan), at most, about: the
 * largest keeps one call's heap near a 1-megapixel run's; smaller ones fit smaller budgets with
 * fewer tiles inside each call.
 */
export const PIECE_SIDES = [1024, 768, 512];

/**
 * Where pieces of at most about `side` start and end along an axis of `length`: as even as the
 * `align` grid allows (convert/pieces.py cuts; halves round up).
 */
export function cuts(length, side, align) {
  const count = Math.max(1, Math.ceil(length / side));
  const inner = [];
  for (let i = 1; i < count; i += 1) {
    const at = align * Math.floor((2 * i * length + count * align) / (2 * count * align));
    if (at > 0 && at < length && !inner.includes(at)) inner.push(at);
  }
  return [0, ...inner.sort((a, b) => a - b), length];
}

/**
 * The pieces of an image of `size`, row by row, each with `margin` pixels more on every side the
 * image has them (convert/pieces.py plan).
 * @param {{height: number, width: number}} size
 * @returns {Piece[]}
 */
export function planPieces({ height, width }, side, margin, align) {
  const rows = cuts(height, side, align);
  const columns = cuts(width, side, align);
  const pieces = [];
  for (let r = 1; r < rows.length; r += 1) {
    for (let c = 1; c < columns.length; c += 1) {
      const keep = { top: rows[r - 1], left: columns[c - 1], bottom: rows[r], right: columns[c] };
      const crop = {
        top: Math.max(0, keep.top - margin),
        left: Math.max(0, keep.left - margin),
        bottom: Math.min(height, keep.bottom + margin),
        right: Math.min(width, keep.right + margin),
      };
      pieces.push({ keep, crop });
    }
  }
  return pieces;
}

/** A piece's `keep` in its crop's pixels, as the signature's `measure` reads it. */
export function inside({ keep, crop }) {
  return [
    keep.top - crop.top,
    keep.left - crop.left,
    keep.bottom - crop.top,
    keep.right - crop.left,
  ];
}

/**
 * The measuring and the stylizing calls' margins in pixels, from memory.js TiledRule: the
 * encoder's, and that plus the features' (convert/pieces.py margins).
 */
export const pieceMargins = ({ encoderMargin, featuresMargin }) => [
  encoderMargin,
  encoderMargin + featuresMargin,
];

/**
 * The worker's `pieces` request field for a plan (memory.js planInPieces: `piece` its side),
 * with the grid and the margins of memory.js TiledRule; null for a plan not in pieces.
 */
export const workerPieces = ({ piece }, tiled) =>
  piece ? { side: piece, align: tiled.align, margins: pieceMargins(tiled) } : null;

/** The size of a box. */
export const boxSize = ({ top, left, bottom, right }) => ({
  height: bottom - top,
  width: right - left,
});

/**
 * The RGBA pixels of `box` of an image, copied row by row.
 * @param {{data: Uint8ClampedArray, width: number, height: number}} image
 */
export function cropPixels({ data, width }, box) {
  const { height: rows, width: columns } = boxSize(box);
  const out = new Uint8ClampedArray(rows * columns * 4);
  for (let y = 0; y < rows; y += 1) {
    const from = ((box.top + y) * width + box.left) * 4;
    out.set(data.subarray(from, from + columns * 4), y * columns * 4);
  }
  return { data: out, width: columns, height: rows };
}

/** Writes a piece's kept part of `stylized` (its crop's RGBA pixels) into `target`'s data. */
export function pastePiece(target, stylized, piece) {
  const [top, left, bottom, right] = inside(piece);
  const columns = right - left;
  for (let y = top; y < bottom; y += 1) {
    const from = (y * stylized.width + left) * 4;
    const to = ((piece.crop.top + y) * target.width + piece.crop.left + left) * 4;
    target.data.set(stylized.data.subarray(from, from + columns * 4), to);
  }
}
