// Image intake on the page: validate and decode; pixels at the working size come from the
// browser's decoder (cheap), never from the model.

/** Longest side of the on-screen preview of an input. */
const PREVIEW_SIDE = 2048;
/** The formats the page reads (the file picker offers these). */
export const ACCEPTED_TYPES = [
  'image/jpeg',
  'image/png',
  'image/webp',
  'image/gif',
  'image/avif',
  'image/bmp',
];
/** Larger files are refused before decoding. */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Images with more pixels than this are refused (decoding them alone can exhaust memory). */
export const MAX_PIXELS = 120e6;

/** A problem with the image the user chose, worded for the user. */
export class ImageInputError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ImageInputError';
  }
}

export const formatBytes = (n) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${Math.round(n / 1e3)} kB` : `${n} B`;

/** Size with the longest side at most `maxSide` (0: unchanged), keeping the aspect ratio. */
export function fitWithin(width, height, maxSide) {
  const longest = Math.max(width, height);
  if (!maxSide || longest <= maxSide) return { width, height, scaled: false };
  const scale = maxSide / longest;
  return {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
    scaled: true,
  };
}

/** Reads an image's size from its header, without decoding every pixel. */
function readSize(blob, name) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(blob);
    const img = new Image();
    img.onload = () => {
      URL.revokeObjectURL(url);
      resolve({ width: img.naturalWidth, height: img.naturalHeight });
    };
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(
        new ImageInputError(
          `“${name}” is not an image this browser can read. Choose a JPEG, PNG, WebP or GIF file.`,
        ),
      );
    };
    img.src = url;
  });
}

/** Draws `source` at width x height on white (flattening transparency) and returns its pixels. */
export function pixelsOf(source, width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, width, height);
  return readAndRelease(ctx);
}

/** Draws `source` at width x height as it is (transparency kept) and returns its pixels. */
function rawPixelsOf(source, width, height) {
  const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, height);
  return readAndRelease(ctx);
}

/**
 * The canvas's pixels; then the canvas gives its own copy back at once rather than at the next
 * garbage collection (48 MB at 12 megapixels, while the model runs).
 */
function readAndRelease(ctx) {
  const { canvas } = ctx;
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
  release(canvas);
  return pixels;
}

/** Frees a canvas's pixels now: a canvas resized to nothing drops its backing store. */
export function release(canvas) {
  canvas.width = 0;
  canvas.height = 0;
}

const isSvg = (blob, name) => blob.type === 'image/svg+xml' || /\.svgz?$/i.test(name);

/**
 * @typedef {{name: string, blob: Blob, width: number, height: number, preview: ImageData,
 *   hasAlpha: boolean}} InputImage width and height: the image's own size; preview: at most
 *   PREVIEW_SIDE on its longest side, transparency kept
 */

/** Turns a user's file into an InputImage; refuses, in plain words, what it cannot use. */
export async function loadImage(blob, name) {
  if (blob.size === 0) throw new ImageInputError(`“${name}” is empty.`);
  if (blob.size > MAX_FILE_BYTES) {
    throw new ImageInputError(
      `“${name}” is ${formatBytes(blob.size)}; files up to ${formatBytes(MAX_FILE_BYTES)} are accepted.`,
    );
  }
  if (isSvg(blob, name)) {
    throw new ImageInputError(
      `“${name}” is a vector drawing (SVG), which this page cannot stylize. Choose a JPEG, PNG, WebP or GIF file.`,
    );
  }
  if (blob.type && !blob.type.startsWith('image/')) {
    throw new ImageInputError(
      `“${name}” is not an image (${blob.type}). Choose a JPEG, PNG, WebP or GIF file.`,
    );
  }
  const original = await readSize(blob, name);
  if (!original.width || !original.height) {
    throw new ImageInputError(`“${name}” has no pixels this browser can show.`);
  }
  if (original.width * original.height > MAX_PIXELS) {
    throw new ImageInputError(
      `“${name}” is ${original.width}×${original.height} pixels, too large to open safely here. ` +
        `Use an image under ${Math.round(MAX_PIXELS / 1e6)} megapixels.`,
    );
  }
  const size = fitWithin(original.width, original.height, PREVIEW_SIDE);
  const preview = await decodeAt(blob, size, name, rawPixelsOf);
  let hasAlpha = false;
  for (let i = 3; i < preview.data.length && !hasAlpha; i += 4) hasAlpha = preview.data[i] < 255;
  return { name, blob, width: original.width, height: original.height, preview, hasAlpha };
}

/** Decodes `blob` straight to `size` (the browser's high-quality resize) and reads it. */
async function decodeAt(blob, { width, height }, name, read) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {
      resizeWidth: width,
      resizeHeight: height,
      resizeQuality: 'high',
    });
  } catch (error) {
    throw new ImageInputError(`“${name}” could not be decoded (${error.message}).`);
  }
  try {
    return read(bitmap, width, height);
  } finally {
    bitmap.close();
  }
}

/** The image at `size` (scaled either way), transparency composited on white: model input. */
export const pixelsAt = (image, size) => decodeAt(image.blob, size, image.name, pixelsOf);

/** The image at its own size as a bitmap, transparency kept (for exports). Close it after use. */
export const fullBitmap = (image) => createImageBitmap(image.blob);
