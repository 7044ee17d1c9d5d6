// The worker's pixel conversions, in Node on TF.js's CPU and WebAssembly backends (the latter
// read in place, from its heap): a band of rows at a time must give what one pass over the
// whole image gives.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { BAND_VALUES, imagePixels, imageTensor, maskTensor } from '../src/pixels.js';

// Wide enough that a band is 466 rows: 1001 rows are three bands, the last a short one.
const WIDTH = 3000;
const HEIGHT = 1001;

/** RGBA bytes whose every row differs from its neighbours, so a misplaced band shows. */
function pattern(width, height) {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const j = (y * width + x) * 4;
      data.set([(x + 3 * y) % 256, (7 * x + y) % 256, (x * y) % 256, 255], j);
    }
  }
  return { data, width, height };
}

const wasm = createRequire(import.meta.url).resolve(
  '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm',
);
setWasmPaths(path.dirname(wasm) + path.sep);

for (const backend of ['cpu', 'wasm'])
  describe(`pixels in bands on ${backend}`, () => {
    const photo = pattern(WIDTH, HEIGHT);

    before(async () => {
      assert.ok(await tf.setBackend(backend), backend);
      assert.ok(Math.floor(BAND_VALUES / (WIDTH * 3)) < HEIGHT / 2, 'three bands at least');
    });

    it('makes the float image of every pixel, in place', () => {
      const image = imageTensor(tf, photo);
      assert.deepEqual(image.shape, [HEIGHT, WIDTH, 3]);
      const values = image.dataSync();
      image.dispose();
      for (const [y, x] of [
        [0, 0],
        [465, 2999],
        [466, 0],
        [931, 1234],
        [1000, 2999],
      ]) {
        const i = (y * WIDTH + x) * 3;
        const j = (y * WIDTH + x) * 4;
        const expected = [0, 1, 2].map((c) => Math.fround(photo.data[j + c] / 255));
        assert.deepEqual([...values.subarray(i, i + 3)], expected, `pixel (${x}, ${y})`);
      }
    });

    it('gives back the same bytes from the image, opaque, leaving no tensor behind', async () => {
      const image = imageTensor(tf, photo);
      const before = tf.memory().numTensors;
      const { data, width, height } = await imagePixels(tf, image);
      assert.equal(tf.memory().numTensors, before, 'no band left');
      image.dispose();
      assert.deepEqual([width, height], [WIDTH, HEIGHT]);
      const first = data.findIndex((value, i) => value !== photo.data[i]);
      assert.equal(first, -1, `byte ${first} of ${data.length} differs`);
    });

    it('clips and rounds the model’s output', async () => {
      const image = tf.tensor3d([-0.5, 2, 0.2, 0.003, 1, 0.999], [1, 2, 3]);
      const { data } = await imagePixels(tf, image);
      image.dispose();
      assert.deepEqual([...data], [0, 255, 51, 255, 1, 255, 255, 255]);
    });

    it('takes a mask’s luminance', () => {
      const mask = maskTensor(tf, photo);
      assert.deepEqual(mask.shape, [HEIGHT, WIDTH]);
      const values = mask.dataSync();
      mask.dispose();
      for (const y of [0, 466, 1000]) {
        const j = y * WIDTH * 4;
        const [r, g, b] = photo.data.subarray(j, j + 3);
        const expected = Math.fround((0.299 * r + 0.587 * g + 0.114 * b) / 255);
        assert.equal(values[y * WIDTH], expected, `row ${y}`);
      }
    });
  });
