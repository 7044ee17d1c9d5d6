// The in-page half of the TF.js benchmark: bench/tfjs/run.mjs calls these through
// page.evaluate. Everything is timed with performance.now() inside the page.
'use strict';

(() => {
  const state = { model: null, inputs: null, last: null };
  const seconds = (ms) => Math.round(ms) / 1000;

  async function fetchFloats(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return new Float32Array(await response.arrayBuffer());
  }

  function webglInfo() {
    try {
      const canvas = document.createElement('canvas');
      const gl = canvas.getContext('webgl2') || canvas.getContext('webgl');
      if (!gl) return { available: false };
      const debug = gl.getExtension('WEBGL_debug_renderer_info');
      return {
        available: true,
        version: gl instanceof WebGL2RenderingContext ? 2 : 1,
        renderer: debug ? gl.getParameter(debug.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER),
        vendor: debug ? gl.getParameter(debug.UNMASKED_VENDOR_WEBGL) : gl.getParameter(gl.VENDOR),
      };
    } catch (error) {
      return { available: false, error: String(error) };
    }
  }

  // The converter names signature inputs like "content:0": match them by their base name.
  function feeds(values) {
    const out = {};
    for (const [key, spec] of Object.entries(state.model.signature.inputs)) {
      const base = key.split(':')[0];
      if (!(base in values)) throw new Error(`no value for model input ${key}`);
      out[spec.name] = values[base];
    }
    return out;
  }

  function makeInputs(iterations, maxResolution) {
    const { content, style } = state.inputs;
    return {
      content: tf.tensor3d(content.values, content.shape, 'float32'),
      style: tf.tensor3d(style.values, style.shape, 'float32'),
      iterations: tf.scalar(iterations, 'int32'),
      max_resolution: tf.scalar(maxResolution, 'int32'),
      strength: tf.scalar(1, 'float32'),
    };
  }

  async function stylize(iterations, maxResolution) {
    const inputs = makeInputs(iterations, maxResolution);
    const started = performance.now();
    const output = await state.model.executeAsync(feeds(inputs));
    const result = Array.isArray(output) ? output[0] : output;
    const values = await result.data();
    const elapsed = performance.now() - started;
    tf.dispose([output, ...Object.values(inputs)]);
    return { elapsed, values };
  }

  window.bench = {
    /** The two input images as raw float32 from /inputs/, fetched before any timing. */
    async prepare({ content, style }) {
      state.inputs = {
        content: { values: await fetchFloats(content.url), shape: content.shape },
        style: { values: await fetchFloats(style.url), shape: style.shape },
      };
      return true;
    },

    /** Select and initialise a backend; returns what it really got. */
    async start({ backend, threads, reportedCores }) {
      const started = performance.now();
      const realCores = navigator.hardwareConcurrency;
      if (reportedCores) {
        // tfjs-backend-wasm 4.22 sizes its XNNPACK pool as min(requested, hardwareConcurrency / 2)
        // (it assumes two hyper-threads per core), so 2 cores give 1 thread whatever
        // setThreadsCount asks. Reporting more cores to it, before the module starts, lifts the cap.
        Object.defineProperty(Navigator.prototype, 'hardwareConcurrency', { get: () => reportedCores, configurable: true });
      }
      if (backend === 'wasm') {
        tf.wasm.setWasmPaths(new URL('../tfjs/tfjs-backend-wasm/', location.href).href);
        if (threads) tf.wasm.setThreadsCount(threads);
      }
      let ok = false;
      let error = null;
      try {
        ok = await tf.setBackend(backend);
        await tf.ready();
      } catch (caught) {
        error = String(caught && caught.message ? caught.message : caught);
      }
      const info = {
        requested: backend,
        backend: tf.getBackend(),
        ok: ok && tf.getBackend() === backend,
        error,
        backend_s: seconds(performance.now() - started),
        page_s: seconds(started),
        crossOriginIsolated: self.crossOriginIsolated === true,
        sharedArrayBuffer: typeof SharedArrayBuffer !== 'undefined',
        hardwareConcurrency: realCores,
        reportedCores: reportedCores ?? null,
        userAgent: navigator.userAgent,
        tfjs: tf.version_core,
      };
      if (backend === 'wasm') {
        info.wasm_simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
        info.wasm_multithread = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
        try {
          info.wasm_threads = tf.wasm.getThreadsCount();
        } catch (caught) {
          info.wasm_threads = null;
        }
      }
      if (backend === 'webgl') {
        info.webgl = webglInfo();
        if (info.ok) info.webgl_version = tf.env().getNumber('WEBGL_VERSION');
      }
      return info;
    },

    /** Load the graph model at `url`; returns the seconds and the bytes fetched for it. */
    async load({ url }) {
      const started = performance.now();
      state.model = await tf.loadGraphModel(url);
      const load_s = seconds(performance.now() - started);
      const folder = new URL('.', new URL(url, location.href)).href;
      const entries = performance.getEntriesByType('resource').filter((e) => e.name.startsWith(folder));
      const bytes = entries.reduce((sum, e) => sum + (e.encodedBodySize || 0), 0);
      return { load_s, bytes, files: entries.length };
    },

    /** One stylization; returns seconds. `keep` holds the output for `output()`. */
    async run({ iterations, maxResolution, keep }) {
      const { elapsed, values } = await stylize(iterations, maxResolution);
      state.last = keep ? values : null;
      return elapsed / 1000;
    },

    /** The kept output as base64 float32 (little-endian). */
    output() {
      const bytes = new Uint8Array(state.last.buffer, state.last.byteOffset, state.last.byteLength);
      let text = '';
      for (let i = 0; i < bytes.length; i += 0x8000) {
        text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
      return btoa(text);
    },

    /** tf.profile of one stylization: every kernel with its time and shapes. */
    async profile({ iterations, maxResolution }) {
      tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
      const inputs = makeInputs(iterations, maxResolution);
      let wall = 0;
      const info = await tf.profile(async () => {
        const started = performance.now();
        const output = await state.model.executeAsync(feeds(inputs));
        const result = Array.isArray(output) ? output[0] : output;
        await result.data();
        wall = performance.now() - started;
        return output;
      });
      tf.dispose(Object.values(inputs));
      const kernels = [];
      for (const k of info.kernels) {
        kernels.push({
          name: k.name,
          ms: await k.kernelTimeMs,
          inputShapes: k.inputShapes,
          outputShapes: k.outputShapes,
          bytesAdded: k.bytesAdded,
        });
      }
      tf.dispose(info.result);
      return { wall_s: wall / 1000, peakBytes: info.peakBytes, newTensors: info.newTensors, kernels };
    },

    /**
     * The attention's two products at content positions n, style positions m, channels c, on
     * random data: as the converter emits them (an operand transposed by flag) and with the
     * transpose made explicit. Best of `repeats`, in ms; names in `skip` are not run.
     */
    async matmulCheck({ n, m, c, repeats, skip = [] }) {
      const best = async (f) => {
        let fastest = Infinity;
        for (let i = 0; i < repeats; i++) {
          const started = performance.now();
          const out = f();
          await out.data();
          fastest = Math.min(fastest, performance.now() - started);
          out.dispose();
        }
        return Math.round(fastest * 10) / 10;
      };
      const t = (x) => tf.transpose(x, [0, 2, 1]);
      const query = tf.randomNormal([1, c, n]);
      const key = tf.randomNormal([1, c, m]);
      const value = tf.randomNormal([1, c, m]);
      const attention = tf.randomNormal([1, n, m]);
      const variants = {
        // scores [n, m] = query^T key
        scores_transpose_flag: () => tf.matMul(query, key, true, false),
        scores_explicit_transpose: () => tf.tidy(() => tf.matMul(t(query), key)),
        // gathered [c, n] = value attention^T
        gathered_transpose_flag: () => tf.matMul(value, attention, false, true),
        gathered_explicit_transpose: () => tf.tidy(() => tf.matMul(value, t(attention))),
        // or [n, c] = attention value^T: the small operand transposed, positions-major output
        gathered_positions_major: () => tf.tidy(() => tf.matMul(attention, t(value))),
      };
      const times = {};
      for (const [name, f] of Object.entries(variants)) {
        if (!skip.includes(name)) times[name] = await best(f);
      }
      tf.dispose([query, key, value, attention]);
      return times;
    },

    memory() {
      const backend = tf.backend();
      const heap = backend && backend.wasm && backend.wasm.HEAPU8 ? backend.wasm.HEAPU8.length : null;
      return {
        tf_bytes: tf.memory().numBytes,
        tf_tensors: tf.memory().numTensors,
        wasm_heap_bytes: heap,
        js_heap_bytes: performance.memory ? performance.memory.usedJSHeapSize : null,
      };
    },
  };
})();
