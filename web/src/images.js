// Image intake on the page: validate, decode and downscale before any tensor exists.

/** Longest side of the content tensor; larger photos are scaled down on a canvas first. */
export const MAX_INPUT_SIDE = 2048;
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
  return ctx.getImageData(0, 0, width, height);
}

/**
 * Turns a user's file into pixels ready for the model.
 * @returns {Promise<{name: string, imageData: ImageData, width: number, height: number,
 *   originalWidth: number, originalHeight: number, scaled: boolean}>}
 */
export async function loadImage(blob, name, maxSide = MAX_INPUT_SIDE) {
  if (blob.size === 0) throw new ImageInputError(`“${name}” is empty.`);
  if (blob.size > MAX_FILE_BYTES) {
    throw new ImageInputError(
      `“${name}” is ${formatBytes(blob.size)}; files up to ${formatBytes(MAX_FILE_BYTES)} are accepted.`,
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
  const size = fitWithin(original.width, original.height, maxSide);
  let bitmap;
  try {
    // Decode straight to the target size: a big photo never exists at full size as pixels.
    bitmap = await createImageBitmap(
      blob,
      size.scaled
        ? { resizeWidth: size.width, resizeHeight: size.height, resizeQuality: 'high' }
        : {},
    );
  } catch (error) {
    throw new ImageInputError(`“${name}” could not be decoded (${error.message}).`);
  }
  try {
    return {
      name,
      imageData: pixelsOf(bitmap, size.width, size.height),
      width: size.width,
      height: size.height,
      originalWidth: original.width,
      originalHeight: original.height,
      scaled: size.scaled,
    };
  } finally {
    bitmap.close();
  }
}

/** Scales pixels down so that the longest side is at most `maxSide` (returns them as is if not). */
export async function limitPixels(imageData, maxSide) {
  const size = fitWithin(imageData.width, imageData.height, maxSide);
  if (!size.scaled) return imageData;
  const bitmap = await createImageBitmap(imageData, {
    resizeWidth: size.width,
    resizeHeight: size.height,
    resizeQuality: 'high',
  });
  try {
    return pixelsOf(bitmap, size.width, size.height);
  } finally {
    bitmap.close();
  }
}
