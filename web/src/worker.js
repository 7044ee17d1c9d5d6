// Inference worker: owns TF.js, the model and every tensor, so the page never blocks.
// The messages it takes and sends are those of protocol.js; requests run one at a time.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { getThreadsCount, setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadGraphModelSync } from '@tensorflow/tfjs-converter';
import { loadModelArtifacts } from './model-store.js';
import { classifyError } from './errors.js';
import { ENCODING_NAMES, signatureAdapter } from './signature.js';
import {
  EncodingCache,
  emptyEncodings,
  encodingKeys,
  IMAGES,
  usesContentEncodings,
} from './encodings.js';
import { imagePixels, imageTensor, maskTensor } from './pixels.js';
import { boxSize, cropPixels, inside, pastePiece, planPieces } from './pieces.js';
import { countTiles, watchTiles } from './tile-progress.js';
import { grantThreads, wasmThreads } from './threads.js';
import { rehearsalArtifacts } from './rehearsal.js';
import {
  Failure,
  failed,
  notice as noticeMessage,
  progress,
  reply,
  Request,
  Stage,
} from './protocol.js';
import { keepShapesOnCpu, keepSmallValuesReadable } from './webgpu-shapes.js';
import { injectFault, listenForFaults, recordRequest } from './test-hooks.js';

/* global SANET_TEST_HOOKS -- true only in the test build (web/build.mjs --test-hooks) */

const BACKEND_ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'];
const GPU_BACKENDS = ['webgpu', 'webgl'];
const MIN_RESOLUTION = 128;
const SHRINK = 0.7;
const WARMUP_SIZE = 64;
// Sizes of the two timed runs after the warm-up that measure this device's speed.
const CALIBRATION_SIZES = [64, 128];

keepShapesOnCpu();
if (SANET_TEST_HOOKS) listenForFaults();

// The .wasm binaries are copied next to this bundle by web/build.mjs.
setWasmPaths(new URL('wasm/', self.location.href).href);
// One XNNPACK thread per physical core, at least two (see threads.js). Threads need
// cross-origin isolation (COOP/COEP); without it TF.js loads the single-threaded binary.
const threads = wasmThreads(navigator.hardwareConcurrency);
grantThreads(self, threads);
setThreadsCount(threads);

const state = {
  // model.json's URL: once a model is built the backend holds its weights, so rebuilding it
  // (another backend, a recovery) reads them from the model store again (model-store.js: the
  // Cache API, else the network) rather than keeping a copy.
  modelUrl: null,
  adapter: null,
  model: null,
  backend: null,
  baseline: 0,
  speed: null,
  // The last run's encodings, fed back when the next run has the same images (encodings.js).
  encodings: new EncodingCache(tf),
};

const post = (message, transfer = []) => self.postMessage(message, transfer);
const notice = (message) => post(noticeMessage(message));

async function describeBackend() {
  const name = tf.getBackend();
  const info = { name };
  if (name === 'wasm') {
    info.threads = getThreadsCount();
    info.simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    // Whether the multi-threaded binary was loaded (needs cross-origin isolation).
    info.threadedBuild = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  }
  if (name === 'webgl') info.maxTextureSize = tf.env().getNumber('WEBGL_MAX_TEXTURE_SIZE');
  info.crossOriginIsolated = Boolean(self.crossOriginIsolated);
  return info;
}

/**
 * The WebAssembly backend's heap in bytes, or null on other backends. The heap only grows: its
 * size after a run is the most the backend has held at once since it started.
 */
function heapBytes() {
  return tf.getBackend() === 'wasm' ? tf.backend().wasm.HEAPU8.byteLength : null;
}

/** Megapixels of the given images together. */
const megapixels = (...images) =>
  images.reduce((sum, { width, height }) => sum + width * height, 0) / 1e6;

/**
 * The signature's inputs for a request (logical names). A control left out of the request is
 * fed off (convert/contract.py CONTROLS_OFF): the result is then the plain stylization.
 * `measure` ([top, left, bottom, right]) and `contentMoments` (a tensor the caller owns) are a
 * piece's (pieces.js).
 */
function feedValues({
  content,
  style,
  iterations,
  strength,
  maxResolution,
  styleResolution = -1,
  style2 = null,
  mix = 0,
  mask = null,
  keepColors = 0,
  tile = 0,
  stream = false,
  measure = [0, 0, 0, 0],
  contentMoments = null,
}) {
  const mixed = Boolean(style2) && mix > 0;
  return {
    content: imageTensor(tf, content),
    style: imageTensor(tf, style),
    iterations: tf.scalar(iterations, 'int32'),
    max_resolution: tf.scalar(maxResolution, 'int32'),
    strength: tf.scalar(strength, 'float32'),
    style_resolution: tf.scalar(styleResolution, 'int32'),
    style2: mixed ? imageTensor(tf, style2) : tf.ones([1, 1, 3], 'float32'),
    mix: tf.scalar(mixed ? mix : 0, 'float32'),
    mask: mask ? maskTensor(tf, mask) : tf.ones([1, 1], 'float32'),
    keep_colors: tf.scalar(keepColors, 'float32'),
    tile: tf.scalar(tile, 'int32'),
    stream: tf.scalar(stream ? 1 : 0, 'int32'),
    measure: tf.tensor1d(measure, 'int32'),
    // A clone: disposed with the other inputs, it leaves the caller's tensor alive.
    content_moments: contentMoments ? tf.clone(contentMoments) : tf.zeros([0, 2, 3, 0]),
  };
}

/**
 * One call of the signature on `request`. With `cache`, feeds it the encodings kept from earlier
 * runs of the same images under `keys` (the request's encodingKeys) and keeps this call's
 * (warm-ups and calibration runs go without); a tiled or piecewise call neither feeds nor
 * fetches the content's: assembling its whole relu4_1 and relu5_1 maps would cost more memory
 * than the tiles themselves (the model computes an output only when it is asked for). Returns
 * `output` (a signature output key) as a tensor the caller disposes.
 */
async function callModel(request, output, { model, adapter, cache, keys }) {
  const { content, style } = request;
  const fetched = usesContentEncodings(request)
    ? ENCODING_NAMES
    : ENCODING_NAMES.filter((name) => !name.startsWith('content_'));
  const encodings = cache ? cache.inputs(keys) : emptyEncodings(tf);
  const values = feedValues(request);
  let outputs = [];
  try {
    if (SANET_TEST_HOOKS) await injectFault(tf, megapixels(content, style));
    const names = [output, ...fetched.map((name) => adapter.encodings[name])];
    // Fed as kept tensors: TF.js's executor copies an input that is not kept where the graph
    // passes it on (Identity, branches) and holds the copy until the run ends: 144 MB a copy
    // for a 12-megapixel photo. Disposed below all the same.
    const feed = adapter.feed({ ...values, ...encodings });
    Object.values(feed).forEach((tensor) => tf.keep(tensor));
    outputs = await model.executeAsync(feed, names);
    const returned = Object.fromEntries(fetched.map((name, i) => [name, outputs[i + 1]]));
    if (cache) cache.keep(keys, returned);
    return outputs[0];
  } catch (error) {
    tf.dispose(outputs[0]);
    throw error;
  } finally {
    const owned = (tensor) => cache?.owns(tensor);
    tf.dispose(
      [...Object.values(values), ...Object.values(encodings), ...outputs.slice(1)].filter(
        (tensor) => tensor && !owned(tensor),
      ),
    );
  }
}

/**
 * Runs the model on a request, in one call or in `request.pieces` (runPieces); returns the
 * result's pixels and the images whose kept encodings fed it.
 */
async function runModel(request, model = state.model, adapter = state.adapter, cache = null) {
  // Without a cache nothing is looked up: the pixels are not even fingerprinted.
  const keys = cache && encodingKeys(request);
  const call = { model, adapter, cache, keys };
  const reused = cache ? cache.hits(keys) : [];
  if (request.pieces) return { ...(await runPieces(request, call, reused)), reused };
  const unwatch = request.tile > 0 ? reportTiles(request, reused) : null;
  let result = null;
  try {
    result = await callModel(request, adapter.output, call);
    // Read out of the backend and scaled here: no image-sized tensors beside it.
    return { ...(await imagePixels(tf, result)), reused };
  } finally {
    unwatch?.();
    tf.dispose(result);
  }
}

/**
 * A full-size request in pieces (pieces.js; `request.pieces`: {side, align, margins}): every
 * piece's moments, then every piece stylized with them, pasted into the result's pixels. The
 * heap holds one piece's call at a time; the photo and the result stay in JavaScript, as RGBA.
 * `call`: callModel's; `reused`: the images whose kept encodings feed the first call.
 */
async function runPieces(request, call, reused) {
  const { content, pieces } = request;
  // Largest crop first in each round: TF.js's wasm heap never shrinks and grows whenever a
  // tensor is larger than every free block, so calls that never grow reuse the blocks of the
  // one before (as the tiles do in a call: convert/tf_tiles.py _for_each_tile).
  const [measuring, stylizing] = pieces.margins.map((margin) =>
    largestFirst(planPieces(content, pieces.side, margin, pieces.align)),
  );
  const unwatch = reportPieceTiles(request, measuring, stylizing, reused);
  const moments = [];
  let all = null;
  try {
    for (const piece of measuring) {
      const part = { ...request, content: cropPixels(content, piece.crop), measure: inside(piece) };
      moments.push(await callModel(part, call.adapter.moments, call));
    }
    all = tf.concat(moments); // [pieces, 2, 3, C]
    const { width, height } = content;
    const result = { data: new Uint8ClampedArray(width * height * 4), width, height };
    for (const piece of stylizing) {
      const part = { ...request, content: cropPixels(content, piece.crop), contentMoments: all };
      const tensor = await callModel(part, call.adapter.output, call);
      try {
        pastePiece(result, await imagePixels(tf, tensor), piece);
      } finally {
        tensor.dispose();
      }
    }
    return result;
  } finally {
    unwatch();
    tf.dispose([...moments, all]);
  }
}

/**
 * Posts "tile n of N" (Stage.STYLIZE {step, tile, tiles}) as a tiled request's encoder and
 * decoder tiles run; `reused`: the images whose encodings are fed. Returns the function that
 * stops it.
 */
function reportTiles({ content, style, style2, mix, tile, iterations, stream }, reused) {
  const sizes = { content, style, style2: style2 && mix > 0 ? style2 : null };
  const encoded = IMAGES.filter((image) => !reused.includes(image));
  const tiles = countTiles(sizes, encoded, tile, iterations, stream);
  let done = 0;
  return watchTiles(tf, (step) => {
    done += 1;
    post(progress(Stage.STYLIZE, { step, tile: done, tiles }));
  });
}

const cropArea = ({ crop }) => {
  const { height, width } = boxSize(crop);
  return height * width;
};
const largestFirst = (pieces) => [...pieces].sort((a, b) => cropArea(b) - cropArea(a));

/**
 * Posts "tile n of N" over every call of a request in pieces: the styles' tiles once (then kept),
 * each measuring call's over its piece, each stylizing call's encoder and decoder tiles over its
 * crop (the moments given: no statistics pass), and the placeholder of a second style that is
 * not mixed in, which each call encodes (tile-progress.js countTiles).
 */
function reportPieceTiles({ style, style2, mix, tile }, measuring, stylizing, hits) {
  const tiles = ({ height, width }) =>
    tile > 0 ? Math.ceil(height / tile) * Math.ceil(width / tile) : 1;
  const mixed = Boolean(style2) && mix > 0;
  const styles = [['style', style], ...(mixed ? [['style2', style2]] : [])]
    .filter(([image]) => !hits.includes(image))
    .reduce((sum, [, size]) => sum + tiles(size), 0);
  const calls = measuring.length + stylizing.length;
  const total =
    styles +
    (mixed ? 0 : calls) +
    measuring.reduce((sum, piece) => sum + tiles(boxSize(piece.keep)), 0) +
    stylizing.reduce((sum, piece) => sum + 2 * tiles(boxSize(piece.crop)), 0);
  let done = 0;
  return watchTiles(tf, (step) => {
    done += 1;
    post(progress(Stage.STYLIZE, { step, tile: done, tiles: total }));
  });
}

async function warmUp(model = state.model, adapter = state.adapter, size = WARMUP_SIZE) {
  const grey = {
    data: new Uint8ClampedArray(size * size * 4).fill(128),
    width: size,
    height: size,
  };
  const request = { content: grey, style: grey, iterations: 1, strength: 1, maxResolution: 0 };
  await runModel(request, model, adapter);
}

/**
 * This device's speed on the active backend, from two timed runs after the warm-up: the time of
 * one iteration is fixedMs plus msPerMegapixel per megapixel of content and style.
 */
async function measureSpeed() {
  const times = [];
  for (const size of CALIBRATION_SIZES) {
    const started = performance.now();
    await warmUp(state.model, state.adapter, size);
    times.push(performance.now() - started);
  }
  const [small, large] = CALIBRATION_SIZES.map(
    (size) => 2 * megapixels({ width: size, height: size }),
  );
  const msPerMegapixel = Math.max(0, (times[1] - times[0]) / (large - small));
  return { fixedMs: Math.max(0, times[0] - msPerMegapixel * small), msPerMegapixel };
}

/**
 * Refines the speed with a finished run (the fixed part stays the calibration's). A run that
 * re-used encodings did less work than the rule counts: it may only make the speed slower.
 */
function learnSpeed(request, ms, reused) {
  const perIteration = ms / request.iterations - state.speed.fixedMs;
  const { content, style, style2, mix } = request;
  const size = megapixels(content, style, ...(style2 && mix > 0 ? [style2] : []));
  if (perIteration <= 0 || size <= 0) return;
  const msPerMegapixel = perIteration / size;
  if (reused.length && msPerMegapixel < state.speed.msPerMegapixel) return;
  state.speed = { ...state.speed, msPerMegapixel };
}

/**
 * On a GPU backend, the warm-up's shaders compiled while the rest of the weights download: the
 * stand-in of rehearsal.js runs the same programs. Returns its time in ms, or null if it did
 * not run; a failure only means the real warm-up compiles them instead.
 */
async function rehearse(artifacts, firstShard) {
  const standIn =
    GPU_BACKENDS.includes(tf.getBackend()) && rehearsalArtifacts(artifacts, firstShard);
  if (!standIn) return null;
  const started = performance.now();
  let model = null;
  try {
    model = loadGraphModelSync(standIn);
    await warmUp(model, signatureAdapter(artifacts.signature));
    return performance.now() - started;
  } catch {
    return null;
  } finally {
    model?.dispose();
  }
}

function disposeModel() {
  state.encodings.clear();
  state.model?.dispose();
  state.model = null;
}

/** Initialises and selects backend `name`; resolves to null, or to why it is unavailable. */
const patched = new WeakSet();

async function initialiseBackend(name) {
  try {
    if (tf.findBackendFactory(name) != null && (await tf.setBackend(name))) {
      if (name === 'webgpu' && !patched.has(tf.backend())) {
        keepSmallValuesReadable(tf.backend());
        patched.add(tf.backend());
      }
      return null;
    }
    return 'not available here';
  } catch (error) {
    return error.message;
  }
}

/**
 * A graph model of `artifacts` that keeps no copy of their weights: TF.js keeps the artifacts
 * it was given for save(), which the page never calls, and 92 MB of weights (the full model)
 * would stay in the worker's memory beside the backend's.
 */
function modelOf(artifacts) {
  const given = { ...artifacts };
  const model = loadGraphModelSync(given);
  delete given.weightData;
  return model;
}

/**
 * Activates the first backend of `candidates` that initialises and runs the model, built from
 * `artifacts` (those just downloaded), else from the model store.
 */
async function activate({ names: candidates, skipped = [] }, artifacts = null) {
  artifacts ??= (await loadModelArtifacts(state.modelUrl)).artifacts;
  const failures = [...skipped];
  for (const name of candidates) {
    disposeModel();
    post(progress(Stage.BACKEND, { message: `Starting the ${name} backend…` }));
    const problem = await initialiseBackend(name);
    if (problem) {
      failures.push(`${name}: ${problem}`);
      continue;
    }
    try {
      state.model = modelOf(artifacts);
      post(progress(Stage.WARMUP, { message: `Warming up on ${name}…` }));
      const started = performance.now();
      await warmUp();
      const warmupMs = performance.now() - started;
      post(progress(Stage.WARMUP, { message: `Measuring this device’s speed on ${name}…` }));
      state.speed = await measureSpeed();
      state.backend = name;
      state.baseline = tf.memory().numTensors;
      return {
        backend: await describeBackend(),
        warmupMs,
        failures,
        speed: state.speed,
        baseline: state.baseline,
      };
    } catch (error) {
      failures.push(`${name}: ${error.message}`);
      disposeModel();
      tf.engine().reset(); // drop whatever the failed warm-up left on this backend
    }
  }
  throw Object.assign(new Error(`No backend could run the model (${failures.join('; ')}).`), {
    kind: Failure.BACKEND,
  });
}

/**
 * After a failed run: a graph model that throws midway leaves its intermediate tensors behind
 * (unreachable, never disposed). If the count is above the model's own, restart the engine and
 * rebuild the model from the model store, so that memory returns to its baseline.
 */
async function recover() {
  state.encodings.clear();
  if (tf.memory().numTensors <= state.baseline) return;
  const backend = state.backend;
  disposeModel();
  tf.engine().reset();
  await activate({ names: [backend] });
}

/** The WebGL renderer's name when it is a CPU emulation (SwiftShader, llvmpipe), else null. */
function softwareRenderer() {
  try {
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2');
    if (!gl) return null;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return /swiftshader|llvmpipe|softpipe|software/i.test(name) ? name : null;
  } catch {
    return null;
  }
}

/**
 * Backends to try, best first. `auto` skips WebGL when it is emulated on the CPU: WASM with
 * threads and SIMD is faster there. An explicit choice is tried first, then the rest in order.
 */
function candidatesFor(choice) {
  if (BACKEND_ORDER.includes(choice)) {
    return { names: [choice, ...BACKEND_ORDER.filter((name) => name !== choice)], skipped: [] };
  }
  const emulated = softwareRenderer();
  if (!emulated) return { names: BACKEND_ORDER, skipped: [] };
  return {
    names: BACKEND_ORDER.filter((name) => name !== 'webgl'),
    skipped: [`webgl: emulated on the CPU (${emulated}), skipped`],
  };
}

/**
 * Loads the model at modelUrl. The model loaded before stays usable until the new one's files
 * are all in: a variant that cannot be downloaded (offline, say) leaves it in place.
 */
async function load({ modelUrl, totalBytes, backend }) {
  const started = performance.now();
  const candidates = candidatesFor(backend);
  // Start the first backend (compiling the WASM module, or opening the GPU context) while the
  // weights download; activate() then finds it ready, or reports why it failed. On a GPU, the
  // warm-up's shaders then compile as soon as the first shard is in (rehearse). With a model
  // already loaded, its backend stays active until the new files are in.
  const early = state.model ? Promise.resolve('deferred') : initialiseBackend(candidates.names[0]);
  let rehearsal = Promise.resolve(null);
  const { artifacts, fromCache, bytes, cacheError } = await loadModelArtifacts(modelUrl, {
    totalBytes,
    onProgress: (p) => post(progress(Stage.DOWNLOAD, p)),
    onFirstShard: (partial, shard) => {
      rehearsal = early.then((problem) => (problem ? null : rehearse(partial, shard)));
    },
  });
  disposeModel();
  state.adapter = signatureAdapter(artifacts.signature);
  state.modelUrl = modelUrl;
  const downloadMs = performance.now() - started;
  await early;
  const rehearsalMs = await rehearsal;
  const result = await activate(candidates, artifacts);
  return { ...result, fromCache, bytes, cacheError, downloadMs, rehearsalMs };
}

/** Stylizes pixels that are already at their working size (the page resized them). */
async function stylize(request) {
  if (!state.model) {
    throw Object.assign(new Error('The model is not loaded.'), { kind: Failure.MODEL });
  }
  if (SANET_TEST_HOOKS) recordRequest(request);
  const longest = Math.max(request.content.width, request.content.height);
  let resolution = longest;
  for (let attempt = 0; attempt < 8; attempt += 1) {
    const started = performance.now();
    post(
      progress(Stage.STYLIZE, { message: `Stylizing at ${resolution} px on ${state.backend}…` }),
    );
    try {
      // 0: as given; a lower limit only after running out of memory.
      const maxResolution = resolution < longest ? resolution : 0;
      const run = { ...request, maxResolution };
      // `reuse: false` (a benchmark's full run) neither uses nor replaces the kept encodings.
      const cache = request.reuse === false ? null : state.encodings;
      const { reused, ...image } = await runModel(run, state.model, state.adapter, cache);
      const ms = performance.now() - started;
      if (!maxResolution) learnSpeed(request, ms, reused);
      return {
        image,
        resolution,
        ms,
        reused, // the images whose encodings came from an earlier run
        backend: await describeBackend(),
        // Besides the encodings kept for the next run (their count is `kept`).
        numTensors: tf.memory().numTensors - state.encodings.size,
        kept: state.encodings.size,
        baseline: state.baseline,
        heapBytes: heapBytes(),
        speed: state.speed,
      };
    } catch (error) {
      await recover();
      const kind = classifyError(error);
      // A tiled request, or one in pieces, is at full size by choice: it is not lowered
      // behind the user's back.
      const fullSize = request.tile > 0 || Boolean(request.pieces);
      if (kind === Failure.OOM && resolution > MIN_RESOLUTION && !fullSize) {
        const lower = Math.max(MIN_RESOLUTION, Math.round(resolution * SHRINK));
        notice(`Out of memory at ${resolution} px on ${state.backend}; retried at ${lower} px.`);
        resolution = lower;
        continue;
      }
      const rest = BACKEND_ORDER.slice(BACKEND_ORDER.indexOf(state.backend) + 1);
      if (kind === Failure.OTHER || rest.length === 0) throw error;
      const previous = state.backend;
      const reason = kind === Failure.OOM ? 'ran out of memory' : 'lost its GPU context';
      const { backend } = await activate({ names: rest });
      notice(`The ${previous} backend ${reason}; switched to ${backend.name}.`);
    }
  }
  throw Object.assign(new Error('Stylization kept failing; try a smaller resolution.'), {
    kind: Failure.OOM,
  });
}

const handlers = {
  [Request.LOAD]: load,
  [Request.STYLIZE]: stylize,
  [Request.BACKEND]: async ({ backend }) => {
    if (!state.modelUrl) throw new Error('The model is not loaded.');
    return activate(candidatesFor(backend));
  },
};

let queue = Promise.resolve();
self.onmessage = ({ data }) => {
  const { id, type } = data;
  queue = queue.then(async () => {
    try {
      const { message, transfer } = reply(id, await handlers[type](data));
      post(message, transfer);
    } catch (error) {
      const kind =
        error.kind ?? (error.name === 'ModelLoadError' ? Failure.MODEL : classifyError(error));
      post(failed(id, kind, error.message ?? String(error)));
    }
  });
};
