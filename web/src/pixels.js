// Pixels <-> tensors for the worker, a band of rows at a time: an image-sized float array in
// JavaScript is 0.14 GB at 12 megapixels, on top of the same tensor in the backend's memory.
// Computed on the CPU, so the same on every backend.

/** Floats converted at a time (16 MB): the bands' height follows from the image's width. */
export const BAND_VALUES = 1 << 22;

/** Rows of a `width`-pixel image in one band of `channels` values a pixel. */
const bandRows = (width, channels) => Math.max(1, Math.floor(BAND_VALUES / (width * channels)));

/**
 * One tensor [height, width, ...] from bands of rows: `fill(values, top)` writes the band that
 * starts at row `top` into `values` (its length a whole number of rows).
 */
function banded(tf, width, height, channels, fill) {
  const rows = bandRows(width, channels);
  const shape = (count) => (channels === 1 ? [count, width] : [count, width, channels]);
  const bands = [];
  try {
    for (let top = 0; top < height; top += rows) {
      const count = Math.min(rows, height - top);
      const values = new Float32Array(count * width * channels);
      fill(values, top);
      bands.push(tf.tensor(values, shape(count), 'float32'));
    }
    return bands.length === 1 ? bands.pop() : tf.concat(bands, 0);
  } finally {
    tf.dispose(bands);
  }
}

/** Uint8 RGBA pixels -> float32 [h, w, 3] in [0, 1]. */
export function imageTensor(tf, { data, width, height }) {
  return banded(tf, width, height, 3, (rgb, top) => {
    for (let i = 0, j = top * width * 4; i < rgb.length; i += 3, j += 4) {
      rgb[i] = data[j] / 255;
      rgb[i + 1] = data[j + 1] / 255;
      rgb[i + 2] = data[j + 2] / 255;
    }
  });
}

/** RGBA mask pixels -> float32 [h, w]: their BT.601 luminance (sanet/controls.py mask_from_rgb). */
export function maskTensor(tf, { data, width, height }) {
  return banded(tf, width, height, 1, (luminance, top) => {
    for (let i = 0, j = top * width * 4; i < luminance.length; i += 1, j += 4) {
      luminance[i] = (0.299 * data[j] + 0.587 * data[j + 1] + 0.114 * data[j + 2]) / 255;
    }
  });
}

/** A tensor's values as a view of the WebAssembly backend's heap; null on other backends. */
const inPlace = (tf, tensor) => tf.backend().typedArrayFromHeap?.(tensor) ?? null;

/** The indices of `count` rows from `top`. */
const rows = (top, count) => Array.from({ length: count }, (_, i) => top + i);

/**
 * A float32 [h, w, 3] image in [0, 1] -> Uint8 RGBA pixels, read out of the backend a band of
 * rows at a time. A clamped array clips to [0, 255] and rounds half to even, as tf.round;
 * fround is TF.js's float32 product.
 */
export async function imagePixels(tf, image) {
  const [height, width] = image.shape;
  const data = new Uint8ClampedArray(width * height * 4);
  const step = bandRows(width, 3);
  for (let top = 0; top < height; top += step) {
    const count = Math.min(step, height - top);
    // Gathered, not sliced: the WebAssembly backend's slice first copies its whole input out.
    const band = count === height ? image : tf.tidy(() => tf.gather(image, rows(top, count)));
    // On wasm, read in place: a view of the backend's heap, valid until its next allocation;
    // a copy of every band would be 0.14 GB of garbage at 12 megapixels.
    try {
      const rgb = inPlace(tf, band) ?? (await band.data());
      for (let i = 0, j = top * width * 4; i < rgb.length; i += 3, j += 4) {
        data[j] = Math.fround(rgb[i] * 255);
        data[j + 1] = Math.fround(rgb[i + 1] * 255);
        data[j + 2] = Math.fround(rgb[i + 2] * 255);
        data[j + 3] = 255;
      }
    } finally {
      if (band !== image) band.dispose();
    }
  }
  return { data, width, height };
}
