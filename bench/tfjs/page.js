// The in-page half of the TF.js benchmark: the shipped worker (web/dist/worker.js) driven
// through its protocol, the way the page (web/src/main.js) drives it. bench/tfjs/run.mjs calls
// window.bench through page.evaluate; everything is timed with performance.now() in the page.
import { errorOf, Report, Request, request } from "/src/protocol.js";
import { loadImage, pixelsAt } from "/src/images.js";
import { requestRules, workingSize } from "/src/working-size.js";

const seconds = (ms) => Math.round(ms) / 1000;
const state = {
  worker: null,
  nextId: 1,
  inputs: null,
  frames: [], // a clip's frames (bench/frames.py clip_frames)
  styles: [], // a style per re-run round (bench/frames.py rerun_styles)
  last: null,
  lastRun: null, // the last run's working resolution and output size (full resolution)
  spawned: null, // a worker started before its load (run.mjs watches its wasm memory first)
  rules: null,
  photos: {},
};

/** Sends a protocol request to the worker; resolves to its reply (progress is not timed apart). */
function call(type, payload = {}, transfer = []) {
  const id = state.nextId++;
  return new Promise((resolve, reject) => {
    const listen = ({ data }) => {
      if (data.type !== Report.REPLY || data.id !== id) return;
      state.worker.removeEventListener("message", listen);
      state.worker.removeEventListener("error", broken);
      if (data.ok) resolve(data);
      else reject(errorOf(data));
    };
    // A worker script that fails to load or throws (web/dist not built: `make web`) never
    // replies: fail the call instead of waiting for ever.
    const broken = (event) => {
      state.worker.removeEventListener("message", listen);
      reject(
        new Error(
          `the worker failed: ${event.message || "/dist/worker.js did not load"}`,
        ),
      );
    };
    state.worker.addEventListener("message", listen);
    state.worker.addEventListener("error", broken, { once: true });
    state.worker.postMessage(request(id, type, payload), transfer);
  });
}

async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

/** Raw RGBA bytes (written by bench/collect.py) as the worker's Pixels. */
async function fetchPixels({ url, width, height }) {
  const data = new Uint8ClampedArray(await (await fetchOk(url)).arrayBuffer());
  return { data, width, height };
}

const copy = ({ data, width, height }) => ({
  data: data.slice(),
  width,
  height,
});

/**
 * One stylization through the worker. `reuse` off (the default here) is a full run every time:
 * the worker neither feeds nor keeps encodings. On, it does as it does for the page.
 */
async function stylize(
  content,
  style,
  iterations,
  { strength = 1, reuse = false, tile = 0, stream = false, pieces = null } = {},
) {
  const payload = {
    content,
    style,
    iterations,
    strength,
    reuse,
    tile,
    stream,
    pieces,
  };
  const started = performance.now();
  const reply = await call(Request.STYLIZE, payload, [
    content.data.buffer,
    style.data.buffer,
  ]);
  return { reply, s: (performance.now() - started) / 1000 };
}

/** The largest difference between two replies' RGBA bytes. */
function largestDifference(reply, data) {
  let largest = 0;
  reply.image.data.forEach((value, i) => {
    largest = Math.max(largest, Math.abs(value - data[i]));
  });
  return largest;
}

window.bench = {
  /** The input images (and a clip's frames and styles), fetched before any timing. */
  async prepare({ content, style, frames = [], styles = [] }) {
    state.inputs = {
      content: await fetchPixels(content),
      style: await fetchPixels(style),
    };
    state.frames = await Promise.all(frames.map(fetchPixels));
    state.styles = await Promise.all(styles.map(fetchPixels));
    return true;
  },

  /** Starts the worker without loading it, so that run.mjs can hook into it first. */
  spawn() {
    state.spawned = new Worker("/dist/worker.js", { name: "sanet-inference" });
    return true;
  },

  /** A fresh worker (or the spawned one) loads `modelUrl` on `backend`: backend start,
   * download, warm-up. */
  async load({ modelUrl, backend }) {
    const started = performance.now();
    state.worker =
      state.spawned ??
      new Worker("/dist/worker.js", { name: "sanet-inference" });
    state.spawned = null;
    const url = new URL(modelUrl, location.href).href;
    const reply = await call(Request.LOAD, { modelUrl: url, backend });
    const { name, threads, simd, threadedBuild, crossOriginIsolated } =
      reply.backend;
    return {
      load_s: seconds(performance.now() - started),
      download_s: seconds(reply.downloadMs),
      warmup_s: seconds(reply.warmupMs),
      model_bytes: reply.bytes,
      env: {
        requested: backend,
        backend: name,
        ok: name === backend,
        error: reply.failures.join("; ") || null,
        crossOriginIsolated,
        wasm_threads: threads ?? null,
        wasm_simd: simd ?? null,
        wasm_multithread: threadedBuild ?? null,
        hardwareConcurrency: navigator.hardwareConcurrency,
        userAgent: navigator.userAgent,
      },
    };
  },

  /**
   * One stylization of the prepared inputs; returns seconds. `keep` holds the output; `tile`
   * (working px, 0: untiled) and `stream` are the signature's inputs; `pieces` the worker's
   * (the page's main.js piecesOf), null: one call.
   */
  async run({ iterations, keep, tile = 0, stream = false, pieces = null }) {
    const { content, style } = state.inputs;
    const { reply, s } = await stylize(copy(content), copy(style), iterations, {
      tile,
      stream,
      pieces,
    });
    state.last = keep ? reply.image : null;
    const { width, height } = reply.image;
    state.lastRun = { resolution: reply.resolution, width, height };
    return s;
  },

  /** The last run's working resolution (lower than the content's after running out of
   * memory: the worker then retries smaller) and output size. */
  lastRun() {
    return state.lastRun;
  },

  /**
   * A clip (issue 14): a warm-up and `singles` timed single-image runs on frames 2.. with
   * nothing re-used, then every frame in turn with the prepared style and the worker's re-use
   * on, as the page stylizes a clip. Seconds, what the worker re-used per frame, and the largest
   * difference (in [0, 1]) between a frame and its single-image result.
   */
  async frames({ iterations, singles }) {
    const { style } = state.inputs;
    const run = (frame, options) =>
      stylize(copy(frame), copy(style), iterations, options);
    await run(state.frames[0]);
    const single = [];
    const alone = new Map();
    for (let k = 1; k <= singles; k++) {
      const { reply, s } = await run(state.frames[k]);
      single.push(s);
      alone.set(k, reply.image.data);
    }
    const result = { single_s: single, frame_s: [], reused: [] };
    let difference = 0;
    for (const [k, frame] of state.frames.entries()) {
      const { reply, s } = await run(frame, { reuse: true });
      if (k === 0) result.first_frame_s = s;
      else result.frame_s.push(s);
      result.reused.push(reply.reused);
      if (alone.has(k))
        difference = Math.max(
          difference,
          largestDifference(reply, alone.get(k)),
        );
    }
    return { ...result, max_difference: difference / 255 };
  },

  /**
   * Instant re-runs (issue 15): per round, a new pair of images (a frame and a style) in a
   * full run, then the same images at `strength`, the worker's re-use on. Seconds, and what
   * the worker re-used in each run.
   */
  async rerun({ iterations, strength }) {
    const run = (k, options) =>
      stylize(copy(state.frames[k]), copy(state.styles[k]), iterations, {
        reuse: true,
        ...options,
      });
    const result = { full_s: [], rerun_s: [], reused: [] };
    for (const k of state.styles.keys()) {
      const full = await run(k);
      const again = await run(k, { strength });
      result.full_s.push(full.s);
      result.rerun_s.push(again.s);
      result.reused.push([full.reply.reused, again.reply.reused]);
    }
    return result;
  },

  /** The kept output's RGB bytes as base64. */
  output() {
    const { data } = state.last;
    const rgb = new Uint8Array((data.length / 4) * 3);
    for (let i = 0, j = 0; i < data.length; i += 4, j += 3)
      rgb.set(data.subarray(i, i + 3), j);
    let text = "";
    for (let i = 0; i < rgb.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, rgb.subarray(i, i + 0x8000));
    }
    return btoa(text);
  },

  /** Files as the page receives them: fetched (not timed), then read as the page reads them. */
  async photos({ files, modelUrl }) {
    const metadata = new URL("metadata.json", new URL(modelUrl, location.href));
    state.rules = requestRules(await (await fetchOk(metadata)).json());
    const intake = {};
    for (const [name, url] of Object.entries(files)) {
      const blob = await (await fetchOk(url)).blob();
      const started = performance.now();
      state.photos[name] = await loadImage(blob, name);
      intake[name] = seconds(performance.now() - started);
    }
    return intake;
  },

  /**
   * What the page's Stylize button does with photo `name` and style `style` at `maxResolution`:
   * the browser resizes both to their working sizes, then the worker stylizes. Seconds.
   */
  async photoRun({ name, style, maxResolution, iterations }) {
    const sizes = [state.photos[name], state.photos[style]].map((image) =>
      workingSize(image.height, image.width, maxResolution, state.rules),
    );
    const started = performance.now();
    const [content, styled] = await Promise.all([
      pixelsAt(state.photos[name], sizes[0]),
      pixelsAt(state.photos[style], sizes[1]),
    ]);
    const { reply } = await stylize(copy(content), copy(styled), iterations);
    return {
      s: (performance.now() - started) / 1000,
      worker_s: reply.ms / 1000,
      working_size: [sizes[0].width, sizes[0].height],
    };
  },

  memory() {
    return {
      js_heap_bytes: performance.memory
        ? performance.memory.usedJSHeapSize
        : null,
    };
  },
};
