// ONNX Runtime Web (its wasm build: SIMD and threads) running the project's own three ONNX
// graphs (convert/onnx_export.py), chained as bench/worker.py chains them for ONNX Runtime in
// Python and as the SavedModel composes them: the style encoded once, then per iteration
// encode the content, transform, decode, crop to the content's size (the next iteration gets
// the unclamped output). Inputs arrive at the working size: resizing is not the graphs' job.
import * as ort from "/ort/ort.wasm.min.mjs";
import { wasmThreads } from "/src/threads.js";

const GRAPHS = ["encoder", "transform", "decoder"];
let sessions = null;

/** RGBA bytes [H, W, 4] as a float32 [1, 3, H, W] tensor in [0, 1]. */
function imageTensor({ data, width, height }) {
  const plane = width * height;
  const nchw = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) nchw[c * plane + i] = data[4 * i + c] / 255;
  }
  return new ort.Tensor("float32", nchw, [1, 3, height, width]);
}

/** The top-left [1, 3, height, width] of the decoder's output (a multiple of 16 per side). */
function crop(image, height, width) {
  const [, , fullHeight, fullWidth] = image.dims;
  const source = image.data;
  const out = new Float32Array(3 * height * width);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      const from = (c * fullHeight + y) * fullWidth;
      out.set(source.subarray(from, from + width), (c * height + y) * width);
    }
  }
  return new ort.Tensor("float32", out, [1, 3, height, width]);
}

/** float32 [1, 3, H, W] as [H, W, 3] clamped to [0, 1], as the SavedModel's result. */
function result(image) {
  const [, , height, width] = image.dims;
  const plane = height * width;
  const hwc = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      hwc[3 * i + c] = Math.min(1, Math.max(0, image.data[c * plane + i]));
    }
  }
  return hwc;
}

async function load({ onnxUrl }) {
  const threads = wasmThreads(navigator.hardwareConcurrency);
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = new URL("/ort/", location.href).href;
  const started = performance.now();
  const buffers = await Promise.all(
    GRAPHS.map(async (name) => {
      const response = await fetch(new URL(`${name}.onnx`, onnxUrl));
      if (!response.ok)
        throw new Error(`${name}.onnx: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    }),
  );
  const downloaded = performance.now();
  const options = {
    executionProviders: ["wasm"],
    graphOptimizationLevel: "all",
  };
  sessions = {};
  for (const [i, name] of GRAPHS.entries()) {
    sessions[name] = await ort.InferenceSession.create(buffers[i], options);
  }
  return {
    downloadMs: downloaded - started,
    sessionMs: performance.now() - downloaded,
    bytes: buffers.reduce((sum, b) => sum + b.byteLength, 0),
    backend: {
      name: "wasm",
      threads: ort.env.wasm.numThreads,
      crossOriginIsolated: self.crossOriginIsolated,
      version: ort.env.versions.web,
    },
  };
}

// sanet.attention.EPS: added to the variance before its square root.
const EPS = 1e-5;

/**
 * The transform's normalisation inputs for a whole map [1, C, h, w]: per-channel mean and
 * unbiased standard deviation with EPS, as `sanet.attention.channel_statistics` (the graph
 * takes them as inputs so that a caller can run it on tiles).
 */
function statistics(map) {
  const [, channels, height, width] = map.dims;
  const count = height * width;
  const mean = new Float32Array(channels);
  const std = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const values = map.data.subarray(c * count, (c + 1) * count);
    let sum = 0;
    for (const v of values) sum += v;
    const m = sum / count;
    let squares = 0;
    for (const v of values) squares += (v - m) * (v - m);
    mean[c] = m;
    std[c] = Math.sqrt(squares / (count - 1) + EPS);
  }
  const shape = [1, channels, 1, 1];
  return [new ort.Tensor("float32", mean, shape), new ort.Tensor("float32", std, shape)];
}

async function stylize({ content, style, iterations }) {
  const started = performance.now();
  const encoded = await sessions.encoder.run({ image: imageTensor(style) });
  const style4_1 = encoded.relu4_1;
  const style5_1 = encoded.relu5_1;
  let image = imageTensor(content);
  for (let i = 0; i < iterations; i++) {
    const { relu4_1, relu5_1 } = await sessions.encoder.run({ image });
    const [mean4_1, std4_1] = statistics(relu4_1);
    const [mean5_1, std5_1] = statistics(relu5_1);
    const { features } = await sessions.transform.run({
      content4_1: relu4_1,
      style4_1,
      content5_1: relu5_1,
      style5_1,
      mean4_1,
      std4_1,
      mean5_1,
      std5_1,
    });
    const decoded = (await sessions.decoder.run({ features })).image;
    image = crop(decoded, content.height, content.width);
  }
  const pixels = result(image);
  return { ms: performance.now() - started, pixels };
}

const HANDLERS = { load, stylize };

self.onmessage = async ({ data }) => {
  const { id, type, payload } = data;
  try {
    const reply = await HANDLERS[type](payload);
    const transfer = reply.pixels ? [reply.pixels.buffer] : [];
    self.postMessage({ id, ok: true, ...reply }, transfer);
  } catch (error) {
    self.postMessage({ id, ok: false, error: String(error.message ?? error) });
  }
};
