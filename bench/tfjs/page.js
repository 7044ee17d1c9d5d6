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
  last: null,
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
      if (data.ok) resolve(data);
      else reject(errorOf(data));
    };
    state.worker.addEventListener("message", listen);
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

async function stylize(content, style, iterations) {
  // A full run every time: the worker would otherwise re-use the last run's encodings.
  const payload = { content, style, iterations, strength: 1, reuse: false };
  const started = performance.now();
  const reply = await call(Request.STYLIZE, payload, [
    content.data.buffer,
    style.data.buffer,
  ]);
  return { reply, s: (performance.now() - started) / 1000 };
}

window.bench = {
  /** The two input images, fetched before any timing. */
  async prepare({ content, style }) {
    state.inputs = {
      content: await fetchPixels(content),
      style: await fetchPixels(style),
    };
    return true;
  },

  /** A fresh worker loads `modelUrl` on `backend`: backend start, download, warm-up. */
  async load({ modelUrl, backend }) {
    const started = performance.now();
    state.worker = new Worker("/dist/worker.js", { name: "sanet-inference" });
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

  /** One stylization of the prepared inputs; returns seconds. `keep` holds the output. */
  async run({ iterations, keep }) {
    const { content, style } = state.inputs;
    const { reply, s } = await stylize(copy(content), copy(style), iterations);
    state.last = keep ? reply.image : null;
    return s;
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
