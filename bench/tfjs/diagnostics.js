// The diagnostics of bench/tfjs/run.mjs that need TF.js directly: tf.profile of one
// stylization and the attention's matrix products. On WASM, with the threads the shipped
// worker takes (web/src/threads.js), fed through the worker's signature adapter.
/* global tf */
import { signatureAdapter } from "/src/signature.js";
import { grantThreads, wasmThreads } from "/src/threads.js";

const state = { model: null, adapter: null };

async function fetchFloats(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  return Float32Array.from(
    bytes.filter((_, i) => i % 4 !== 3),
    (v) => v / 255,
  );
}

window.diagnostics = {
  /** WASM with the shipped worker's thread count; returns the threads it got. */
  async start() {
    const threads = wasmThreads(navigator.hardwareConcurrency);
    grantThreads(self, threads);
    tf.wasm.setWasmPaths(
      new URL("/tfjs/tfjs-backend-wasm/dist/", location.href).href,
    );
    tf.wasm.setThreadsCount(threads);
    if (!(await tf.setBackend("wasm")))
      throw new Error("the wasm backend did not start");
    await tf.ready();
    return { wasm_threads: tf.wasm.getThreadsCount() };
  },

  async load({ modelUrl }) {
    state.model = await tf.loadGraphModel(modelUrl);
    state.adapter = signatureAdapter(state.model.signature);
  },

  /** tf.profile of one stylization of the RGBA inputs: every kernel with its time and shapes. */
  async profile({ content, style, iterations, controls }) {
    tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
    const image = async ({ url, width, height }) =>
      tf.tensor3d(await fetchFloats(url), [height, width, 3], "float32");
    const values = {
      content: await image(content),
      style: await image(style),
      iterations: tf.scalar(iterations, "int32"),
      max_resolution: tf.scalar(0, "int32"),
      strength: tf.scalar(1, "float32"),
    };
    for (const [name, { values: v, shape, dtype }] of Object.entries(
      controls,
    )) {
      values[name] = tf.tensor(v, shape, dtype);
    }
    let wall = 0;
    const info = await tf.profile(async () => {
      const started = performance.now();
      const output = await state.model.executeAsync(
        state.adapter.feed(values),
        state.adapter.output,
      );
      await output.data();
      wall = performance.now() - started;
      return output;
    });
    tf.dispose(Object.values(values));
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
    return {
      wall_s: wall / 1000,
      peakBytes: info.peakBytes,
      newTensors: info.newTensors,
      kernels,
    };
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
      gathered_explicit_transpose: () =>
        tf.tidy(() => tf.matMul(value, t(attention))),
      // or [n, c] = attention value^T: the small operand transposed, positions-major output
      gathered_positions_major: () =>
        tf.tidy(() => tf.matMul(attention, t(value))),
    };
    const times = {};
    for (const [name, f] of Object.entries(variants)) {
      if (!skip.includes(name)) times[name] = await best(f);
    }
    tf.dispose([query, key, value, attention]);
    return times;
  },
};
