// The in-page half of the ONNX Runtime Web peer: bench/ort/worker.js in a Web Worker, driven
// with the same window.bench calls bench/tfjs/run.mjs makes of the TF.js page (prepare, load,
// run, output, memory), so both runtimes share its cold-start, repeat and memory policy.
const seconds = (ms) => Math.round(ms) / 1000;
const state = { worker: null, nextId: 1, inputs: null, last: null };

function call(type, payload, transfer = []) {
  const id = state.nextId++;
  return new Promise((resolve, reject) => {
    const listen = ({ data }) => {
      if (data.id !== id) return;
      state.worker.removeEventListener("message", listen);
      if (data.ok) resolve(data);
      else reject(new Error(data.error));
    };
    state.worker.addEventListener("message", listen);
    state.worker.postMessage({ id, type, payload }, transfer);
  });
}

async function pixels({ url, width, height }) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return {
    data: new Uint8ClampedArray(await response.arrayBuffer()),
    width,
    height,
  };
}

window.bench = {
  async prepare({ content, style }) {
    state.inputs = {
      content: await pixels(content),
      style: await pixels(style),
    };
    return true;
  },

  /** A fresh worker fetches the three graphs from the folder `modelUrl` and opens a session each. */
  async load({ modelUrl }) {
    const started = performance.now();
    state.worker = new Worker("worker.js", { type: "module", name: "ort-web" });
    let reply;
    try {
      reply = await call("load", {
        onnxUrl: new URL(modelUrl, location.href).href,
      });
    } catch (error) {
      return {
        env: { ok: false, backend: null, error: String(error.message) },
      };
    }
    const { name, threads, crossOriginIsolated, version } = reply.backend;
    return {
      load_s: seconds(performance.now() - started),
      download_s: seconds(reply.downloadMs),
      // No warm-up run: the load is the download and the sessions' creation.
      warmup_s: 0,
      session_s: seconds(reply.sessionMs),
      model_bytes: reply.bytes,
      env: {
        requested: "wasm",
        backend: name,
        ok: true,
        error: null,
        crossOriginIsolated,
        wasm_threads: threads,
        ort_web: version,
        hardwareConcurrency: navigator.hardwareConcurrency,
        userAgent: navigator.userAgent,
      },
    };
  },

  /** One stylization (inputs copied, as a page hands them over); seconds. */
  async run({ iterations, keep }) {
    const copy = ({ data, width, height }) => ({
      data: data.slice(),
      width,
      height,
    });
    const content = copy(state.inputs.content);
    const style = copy(state.inputs.style);
    const started = performance.now();
    const reply = await call("stylize", { content, style, iterations }, [
      content.data.buffer,
      style.data.buffer,
    ]);
    const s = (performance.now() - started) / 1000;
    state.last = keep ? reply.pixels : null;
    return s;
  },

  /** The kept output, float32 [H, W, 3] in [0, 1], as base64 of its bytes. */
  output() {
    const bytes = new Uint8Array(state.last.buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  },

  memory() {
    return {
      js_heap_bytes: performance.memory
        ? performance.memory.usedJSHeapSize
        : null,
    };
  },
};
