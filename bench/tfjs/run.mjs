// Drive the shipped page's inference worker (web/dist/worker.js) in headless Chromium
// (Debian's, through playwright-core), served by web/serve.mjs.
//
//   node bench/tfjs/run.mjs REQUEST.json RESPONSE.json
//
// REQUEST (written by bench/collect.py run_tfjs):
//   {chromium, repo, modelDir, inputsDir, outputsDir,
//    inputs: {SIZE: {content: {file, width, height}, style: {file, width, height}}},
//    backends: [{name, configs: [{size, iterations, repeats, warmup, keep?}], args?}],
//    variants?: {backend, size, iterations, models: {NAME: "path/model.json"}},
//    profile?: {size, iterations}, plainCheck?: [{label, size, iterations, repeats}],
//    matmulCheck?: [{label, n, m, c, repeats, skip}],
//    quiet?: {...},
//    photos?: {files: {NAME: file}, style, maxResolution, iterations, repeats},
//    ortWeb?: {onnxDir, configs: [{size, iterations, repeats, warmup, keep?}]},
//    clip?: {inputs: {SIZE: {frames: [{file, width, height}], styles: [...]}},
//            configs: [{size, iterations, singles, rerunStrength}]},
//    fullres?: {configs: [{size, iterations, repeats, warmup, tile, stream?, pieces?, keep?}]},
//    timeoutS?}
// fullres (issue 11, bench/fullres.py): per configuration, in a fresh context on wasm, the
// worker's run with the signature's `tile` input; `size` names an entry of `inputs` (any
// shape). Besides the processes' memory, the record has the wasm heap (the worker's
// WebAssembly memories, watched from before the load: they only grow, so their size after
// the run is the peak) and the run's working resolution and output size.
// clip (issues 14 and 15): per size, in a fresh context on wasm, a clip's frames with the
// worker's re-use on against single-image runs, then (where rerunStrength is set) re-runs with
// only the strength changed; bench/frames.py describes the measurement, response.clip holds it.
// ortWeb: ONNX Runtime Web's wasm build on the project's three ONNX graphs (bench/ort/), measured
// the same way, in the same browser; its records go to response.ort_web.
// Each configuration runs in a fresh browser context (empty HTTP cache and Cache Storage, new
// renderer and worker), so its first stylization is a true cold start: the worker's backend
// start, model download, warm-up and first run. The worker picks its threads as it does for
// users (web/src/threads.js). Peak memory is read from /proc for the renderer and GPU processes
// (VmHWM, reset before each configuration through clear_refs where allowed). The machine is
// shared: before each configuration the runner waits (a bounded time) for other processes to
// go quiet, and every record carries `others_cores`, the CPU other processes used meanwhile.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(import.meta.url);
const request = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const responsePath = process.argv[3];
const { chromium } = require(
  path.join(request.repo, "node_modules", "playwright-core"),
);
const { startServer } = await import(
  pathToFileURL(path.join(request.repo, "web", "serve.mjs"))
);
const { children, peaks, resetPeaks } = await import(
  pathToFileURL(path.join(request.repo, "web", "process-memory.mjs"))
);

const BASE_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const response = {
  browser: {},
  backends: {},
  threads_check: [],
  matmul_check: [],
  variants: [],
  profile: null,
  photos: null,
  errors: [],
};
const save = () => fs.writeFileSync(responsePath, JSON.stringify(response));
const say = (text) => process.stderr.write(`tfjs: ${text}\n`);

// ---- contention: CPU time of the whole machine against this browser's ---------------------
const TICK = 100; // USER_HZ on Linux
function machineBusy() {
  const fields = fs
    .readFileSync("/proc/stat", "utf8")
    .split("\n")[0]
    .trim()
    .split(/\s+/)
    .slice(1, 8)
    .map(Number);
  const [user, nice, system, , , irq, softirq] = fields;
  return (user + nice + system + irq + softirq) / TICK;
}

function ownBusy() {
  const total = process.cpuUsage();
  let seconds = (total.user + total.system) / 1e6;
  for (const pid of children()) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      seconds += (Number(fields[11]) + Number(fields[12])) / TICK; // utime, stime
    } catch {
      /* gone */
    }
  }
  return seconds;
}

/** Starts metering; the returned function gives the cores other processes used since. */
function contentionMeter() {
  const start = {
    wall: performance.now(),
    machine: machineBusy(),
    own: ownBusy(),
  };
  return () => {
    const wall = (performance.now() - start.wall) / 1000;
    const others = machineBusy() - start.machine - (ownBusy() - start.own);
    return Math.round((Math.max(others, 0) / wall) * 100) / 100;
  };
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
let quietBudget = (request.quiet?.totalWaitS ?? 300) * 1000;

/** Wait until other processes use less than `threshold` cores (bounded); returns seconds waited. */
async function waitForQuiet() {
  const { threshold = 0.3, windowS = 2, maxWaitS = 45 } = request.quiet ?? {};
  if (quietBudget <= 0) return { waited_s: 0, quiet: null };
  const started = performance.now();
  while (true) {
    const meter = contentionMeter();
    await sleep(windowS * 1000);
    const others = meter();
    const waited = performance.now() - started;
    if (
      others < threshold ||
      waited > maxWaitS * 1000 ||
      waited > quietBudget
    ) {
      quietBudget -= waited;
      return {
        waited_s: Math.round(waited / 100) / 10,
        quiet: others < threshold,
        others_cores_before: others,
      };
    }
  }
}

// ---- the page ----------------------------------------------------------------------------
// A configuration that hangs (a backend that never answers) is recorded as failed after this.
const TIMEOUT_MS = (request.timeoutS ?? 900) * 1000;

/** page.evaluate that gives up after TIMEOUT_MS. */
function evaluate(page, fn, arg) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer after ${TIMEOUT_MS / 1000} s`)),
      TIMEOUT_MS,
    );
  });
  return Promise.race([page.evaluate(fn, arg), limit]).finally(() =>
    clearTimeout(timer),
  );
}

const inputUrl = (file) => `/inputs/${path.basename(file)}`;

async function openPage(browser, base, pagePath) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  await page.goto(`${base}${pagePath}`);
  return { context, page, errors };
}

/** An input file (written by bench/collect.py) as window.bench.prepare takes it. */
const served = ({ file, width, height }) => ({
  url: inputUrl(file),
  width,
  height,
});

const inputsOf = (size) => {
  const spec = request.inputs[String(size)];
  return { content: served(spec.content), style: served(spec.style) };
};

// Run in the worker before its load: keeps every WebAssembly memory created or exported.
function keepWasmMemories() {
  const { Memory, Instance, instantiate, instantiateStreaming } = WebAssembly;
  const kept = (self.wasmMemories = []);
  const keep = (value) => {
    if (value instanceof Memory && !kept.includes(value)) kept.push(value);
  };
  const exported = (result) => {
    Object.values((result.instance ?? result).exports).forEach(keep);
    return result;
  };
  const built = (target, args) => exported(Reflect.construct(target, args));
  WebAssembly.Memory = new Proxy(Memory, {
    construct: (target, args) => {
      const memory = Reflect.construct(target, args);
      keep(memory);
      return memory;
    },
  });
  WebAssembly.Instance = new Proxy(Instance, { construct: built });
  WebAssembly.instantiate = (...args) =>
    instantiate.apply(WebAssembly, args).then(exported);
  WebAssembly.instantiateStreaming = (...args) =>
    instantiateStreaming.apply(WebAssembly, args).then(exported);
}

/** Starts the page's worker and hooks keepWasmMemories into it before its load. */
async function watchWasmMemories(page) {
  const appeared = page.waitForEvent("worker");
  await evaluate(page, () => window.bench.spawn());
  const worker = await appeared;
  await worker.evaluate(keepWasmMemories);
  return () =>
    worker.evaluate(() =>
      self.wasmMemories.reduce((sum, m) => sum + m.buffer.byteLength, 0),
    );
}

/** Cold start then warm runs of one configuration, in a fresh context. `wasmHeap` watches
 * the worker's WebAssembly memories (see the top). */
async function measure(
  browser,
  base,
  backend,
  config,
  {
    modelUrl = "/model/model.json",
    keep,
    pagePath = "/bench/page.html",
    wasmHeap = false,
  } = {},
) {
  const gate = await waitForQuiet();
  const others = contentionMeter();
  const memoryResettable = resetPeaks();
  const { context, page, errors } = await openPage(browser, base, pagePath);
  try {
    await evaluate(
      page,
      (inputs) => window.bench.prepare(inputs),
      inputsOf(config.size),
    );
    const heapBytes = wasmHeap ? await watchWasmMemories(page) : null;
    const load = await evaluate(page, (l) => window.bench.load(l), {
      modelUrl,
      backend,
    });
    if (!load.env.ok) {
      return {
        size: config.size,
        iterations: config.iterations,
        env: load.env,
        error: `backend ${backend} unavailable (got ${load.env.backend}: ${load.env.error})`,
      };
    }
    const run = (k = false) =>
      evaluate(page, (r) => window.bench.run(r), {
        iterations: config.iterations,
        keep: k,
        tile: config.tile ?? 0,
        stream: config.stream ?? false,
        pieces: config.pieces ?? null,
      });
    const first = await run(Boolean(keep));
    const output = keep
      ? await evaluate(page, () => window.bench.output())
      : null;
    for (let i = 0; i < (config.warmup ?? 0); i++) await run();
    const times = [];
    for (let i = 0; i < (config.repeats ?? 0); i++) times.push(await run());
    return {
      size: config.size,
      iterations: config.iterations,
      env: load.env,
      load_s: load.load_s,
      download_s: load.download_s,
      warmup_s: load.warmup_s,
      ...(load.session_s === undefined ? {} : { session_s: load.session_s }),
      model_bytes: load.model_bytes,
      first_run_s: first,
      cold_s: load.load_s + first,
      times_s: times,
      warmup: config.warmup ?? 0,
      memory: await evaluate(page, () => window.bench.memory()),
      ...peaks(),
      ...(heapBytes
        ? {
            wasm_heap_bytes: await heapBytes(),
            run: await evaluate(page, () => window.bench.lastRun()),
          }
        : {}),
      peak_scope: memoryResettable ? "config" : "process",
      page_errors: errors,
      quiet_gate: gate,
      ...(output ? { output } : {}),
      others_cores: others(),
    };
  } catch (error) {
    return {
      size: config.size,
      iterations: config.iterations,
      error: String(error.message ?? error),
      page_errors: errors,
    };
  } finally {
    await context.close();
  }
}

/** A clip's frames, then re-runs, on wasm in a fresh context per size (see the top). */
async function clip(browser, base) {
  const result = { records: [], rerun: null };
  for (const config of request.clip.configs) {
    const { frames, styles } = request.clip.inputs[String(config.size)];
    say(`clip at ${config.size}px: ${frames.length} frames`);
    const gate = await waitForQuiet();
    const others = contentionMeter();
    const { context, page, errors } = await openPage(
      browser,
      base,
      "/bench/page.html",
    );
    try {
      await evaluate(page, (inputs) => window.bench.prepare(inputs), {
        ...inputsOf(config.size),
        frames: frames.map(served),
        styles: styles.map(served),
      });
      const load = await evaluate(page, (l) => window.bench.load(l), {
        modelUrl: "/model/model.json",
        backend: "wasm",
      });
      if (!load.env.ok) throw new Error(`wasm unavailable: ${load.env.error}`);
      const measured = await evaluate(page, (c) => window.bench.frames(c), {
        iterations: config.iterations,
        singles: config.singles,
      });
      const { style } = request.inputs[String(config.size)];
      result.records.push({
        size: config.size,
        iterations: config.iterations,
        frames: frames.length,
        content_shape: [frames[0].height, frames[0].width],
        style_shape: [style.height, style.width],
        ...measured,
        threads: load.env.wasm_threads,
        quiet_gate: gate,
      });
      if (config.rerunStrength !== null) {
        say(`re-runs at ${config.size}px, strength ${config.rerunStrength}`);
        const rerun = await evaluate(page, (r) => window.bench.rerun(r), {
          iterations: config.iterations,
          strength: config.rerunStrength,
        });
        result.rerun = {
          size: config.size,
          iterations: config.iterations,
          strength: config.rerunStrength,
          ...rerun,
        };
      }
    } catch (error) {
      result.error = String(error.message ?? error);
    } finally {
      const busy = others();
      for (const record of [result.records.at(-1), result.rerun])
        if (record?.size === config.size) record.others_cores = busy;
      result.page_errors = [...(result.page_errors ?? []), ...errors];
      await context.close();
    }
    if (result.error) break;
  }
  return result;
}

/** The kept output (RGB bytes) into outputsDir; the record names the file instead. */
function keepOutput(record, name) {
  if (record.output) record.output_file = path.join(request.outputsDir, name);
  if (record.output)
    fs.writeFileSync(record.output_file, Buffer.from(record.output, "base64"));
  delete record.output;
  return record;
}

/**
 * Files as a user picks them, stylized as the page's Stylize button does (the browser resizes
 * them to the working size, then the worker runs): each of `files` in turn, `repeats` rounds,
 * after the worker's load on wasm.
 */
async function photos(browser, base) {
  const { files, style, maxResolution, iterations, repeats } = request.photos;
  const gate = await waitForQuiet();
  const others = contentionMeter();
  const { context, page, errors } = await openPage(
    browser,
    base,
    "/bench/page.html",
  );
  const result = {
    max_resolution: maxResolution,
    iterations,
    quiet_gate: gate,
    runs: {},
  };
  try {
    const urls = Object.fromEntries(
      Object.entries(files).map(([name, file]) => [name, inputUrl(file)]),
    );
    result.intake_s = await evaluate(page, (p) => window.bench.photos(p), {
      files: urls,
      modelUrl: "/model/",
    });
    result.load = await evaluate(page, (l) => window.bench.load(l), {
      modelUrl: "/model/model.json",
      backend: "wasm",
    });
    for (let round = 0; round < repeats; round++) {
      for (const name of Object.keys(files).filter((n) => n !== style)) {
        say(
          `photo ${name} at ${maxResolution} px: round ${round + 1} of ${repeats}`,
        );
        const run = await evaluate(page, (r) => window.bench.photoRun(r), {
          name,
          style,
          maxResolution,
          iterations,
        });
        const entry = (result.runs[name] ??= {
          working_size: run.working_size,
          times_s: [],
          worker_s: [],
        });
        entry.times_s.push(run.s);
        entry.worker_s.push(run.worker_s);
      }
    }
  } catch (error) {
    result.error = String(error.message ?? error);
  } finally {
    result.page_errors = errors;
    result.others_cores = others();
    await context.close();
  }
  return result;
}

/** tf.profile of one run and the attention's products: TF.js itself, outside the worker. */
async function diagnostics(browser, base) {
  const { context, page } = await openPage(
    browser,
    base,
    "/bench/diagnostics.html",
  );
  try {
    const env = await evaluate(page, () => window.diagnostics.start());
    if (request.profile) {
      const { size, iterations, controls } = request.profile;
      say(`profiling wasm at ${size}`);
      await waitForQuiet();
      await evaluate(page, (m) => window.diagnostics.load(m), {
        modelUrl: "/model/model.json",
      });
      const profile = await evaluate(
        page,
        (p) => window.diagnostics.profile(p),
        { ...inputsOf(size), iterations, controls },
      );
      response.profile = {
        backend: "wasm",
        size,
        iterations,
        threads: env.wasm_threads,
        ...profile,
      };
      save();
    }
    for (const check of request.matmulCheck ?? []) {
      say(`wasm matmul check: ${check.label}`);
      await waitForQuiet();
      const others = contentionMeter();
      try {
        const times = await evaluate(
          page,
          (c) => window.diagnostics.matmulCheck(c),
          check,
        );
        response.matmul_check.push({
          ...check,
          threads: env.wasm_threads,
          times_ms: times,
          others_cores: others(),
        });
      } catch (error) {
        response.matmul_check.push({
          ...check,
          error: String(error.message ?? error),
        });
      }
      save();
    }
  } finally {
    await context.close();
  }
}

async function main() {
  const mounts = {
    "/bench": path.join(request.repo, "bench", "tfjs"),
    "/inputs": request.inputsDir,
    "/tfjs": path.join(request.repo, "node_modules", "@tensorflow"),
    "/bench-ort": path.join(request.repo, "bench", "ort"),
    "/ort": path.join(request.repo, "node_modules", "onnxruntime-web", "dist"),
    ...(request.ortWeb ? { "/onnx": request.ortWeb.onnxDir } : {}),
  };
  const serve = (isolated) =>
    startServer({ port: 0, modelDir: request.modelDir, mounts, isolated });
  const servers = [await serve(true), await serve(false)];
  const [url, plainUrl] = servers.map(
    (s) => `http://127.0.0.1:${s.address().port}`,
  );
  const browsers = new Map(); // extra Chromium flags -> browser
  const browserFor = async (args = []) => {
    const key = args.join(" ");
    if (!browsers.has(key)) {
      browsers.set(
        key,
        await chromium.launch({
          executablePath: request.chromium,
          args: [...BASE_ARGS, ...args],
          headless: true,
        }),
      );
    }
    return browsers.get(key);
  };
  try {
    const browser = await browserFor();
    response.browser = { version: browser.version(), args: BASE_ARGS };
    for (const spec of request.backends) {
      say(`${spec.name}: starting`);
      const entry = { records: [], args: [...BASE_ARGS, ...(spec.args ?? [])] };
      response.backends[spec.name] = entry;
      const active = await browserFor(spec.args);
      for (const config of spec.configs) {
        say(
          `${spec.name} ${config.size}px it ${config.iterations}: ${config.repeats} runs`,
        );
        const record = await measure(active, url, spec.name, config, {
          keep: config.keep,
        });
        entry.records.push(
          keepOutput(
            record,
            `tfjs-${spec.name}-${config.size}-${config.iterations}.rgb`,
          ),
        );
        entry.env = entry.env ?? record.env;
        save();
        if (record.error) {
          say(`${spec.name}: ${record.error}`);
          entry.error = record.error;
          break;
        }
      }
    }
    if (request.ortWeb) {
      const entry = { records: [], args: BASE_ARGS };
      response.ort_web = { wasm: entry };
      for (const config of request.ortWeb.configs) {
        say(
          `ONNX Runtime Web ${config.size}px it ${config.iterations}: ${config.repeats} runs`,
        );
        const record = await measure(browser, url, "wasm", config, {
          modelUrl: "/onnx/",
          keep: config.keep,
          pagePath: "/bench-ort/page.html",
        });
        entry.records.push(
          keepOutput(record, `ort-web-${config.size}-${config.iterations}.f32`),
        );
        entry.env = entry.env ?? record.env;
        save();
        if (record.error) {
          say(`ONNX Runtime Web: ${record.error}`);
          entry.error = record.error;
          break;
        }
      }
    }
    // The worker on a page without cross-origin isolation: no SharedArrayBuffer, no threads.
    for (const check of request.plainCheck ?? []) {
      say(`wasm without isolation: ${check.label}`);
      const record = await measure(browser, plainUrl, "wasm", check);
      response.threads_check.push({
        label: check.label,
        plain: true,
        ...record,
      });
      save();
    }
    if (request.variants) {
      const v = request.variants;
      for (const [name, modelPath] of Object.entries(v.models)) {
        say(`variant ${name}`);
        const record = await measure(
          browser,
          url,
          v.backend,
          { size: v.size, iterations: v.iterations, repeats: 0 },
          { modelUrl: `/model/${modelPath}`, keep: true },
        );
        keepOutput(record, `variant-${name}-${v.size}.rgb`);
        response.variants.push({ name, path: modelPath, ...record });
        save();
      }
    }
    if (request.fullres) {
      const records = (response.fullres = []);
      for (const config of request.fullres.configs) {
        const streamed = config.stream ? "-streamed" : "";
        const pieces = config.pieces ? `-pieces${config.pieces.side}` : "";
        say(
          `full resolution ${config.size}, tile ${config.tile}${streamed}${pieces}`,
        );
        const record = await measure(browser, url, "wasm", config, {
          keep: config.keep,
          wasmHeap: true,
        });
        records.push(
          keepOutput(
            {
              ...record,
              tile: config.tile,
              stream: Boolean(config.stream),
              pieces: config.pieces ?? null,
            },
            `fullres-${config.size}-${config.tile}${streamed}${pieces}.rgb`,
          ),
        );
        save();
      }
    }
    if (request.photos) {
      response.photos = await photos(browser, url);
      save();
    }
    if (request.clip) {
      response.clip = await clip(browser, url);
      save();
    }
    if (request.profile || request.matmulCheck?.length)
      await diagnostics(browser, url);
  } catch (error) {
    response.errors.push(String(error.stack ?? error));
  } finally {
    save();
    for (const browser of browsers.values()) await browser.close();
    for (const server of servers) server.close();
  }
}

await main();
