// Drive the TF.js benchmark page in headless Chromium (Debian's, through playwright-core).
//
//   node bench/tfjs/run.mjs REQUEST.json RESPONSE.json
//
// REQUEST (written by bench/collect.py run_tfjs):
//   {chromium, repo, modelDir, inputsDir, outputsDir,
//    inputs: {SIZE: {content: {file, shape}, style: {file, shape}}},
//    backends: [{name, configs: [{size, iterations, repeats, warmup}], retryArgs?}],
//    variants?: {backend, size, iterations, models: {NAME: "path/model.json"}},
//    profile?: {backend, size, iterations},
//    threadsCheck?: [{label, threads, plain, size, iterations, repeats}],
//    matmulCheck?: [{label, n, m, c, repeats, skip}],
//    experiments?: [{name, dir, size, iterations, repeats}], experimentsDir, quiet?: {...}}
// Each configuration runs in a fresh browser context (empty HTTP cache, new renderer), so
// its first stylization is a true cold start: backend set-up, model download and first run.
// Peak memory is read from /proc for the renderer and GPU processes (VmHWM, reset before
// each configuration through clear_refs where allowed). The machine is shared: before each
// configuration the runner waits (a bounded time) for other processes to go quiet, and every
// record carries `others_cores`, the CPU other processes used while it ran.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { startServer } from './serve.mjs';

const require = createRequire(import.meta.url);
const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const responsePath = process.argv[3];
const { chromium } = require(path.join(request.repo, 'node_modules', 'playwright-core'));

export const BASE_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const response = {
  browser: {}, backends: {}, threads_check: [], matmul_check: [], experiments: [], variants: [],
  profile: null, errors: [],
};
const save = () => fs.writeFileSync(responsePath, JSON.stringify(response));
const say = (text) => process.stderr.write(`tfjs: ${text}\n`);

// ---- processes of this browser: descendants of this Node process, by Chromium type --------
function children() {
  const parent = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(entry), ppid);
    } catch { /* gone */ }
  }
  const found = [];
  const frontier = [process.pid];
  while (frontier.length) {
    const pid = frontier.pop();
    for (const [child, ppid] of parent) if (ppid === pid) { found.push(child); frontier.push(child); }
  }
  return found;
}

function kind(pid) {
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const match = cmdline.match(/--type=([a-z-]+)/);
    if (match) return match[1] === 'gpu-process' ? 'gpu' : match[1];
    return cmdline.includes('chrom') ? 'browser' : 'other';
  } catch { return 'gone'; }
}

function statusKb(pid, field) {
  try {
    const match = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`${field}:\\s+(\\d+) kB`));
    return match ? Number(match[1]) : 0;
  } catch { return 0; }
}

function measuredProcesses() {
  return children().filter((pid) => ['renderer', 'gpu'].includes(kind(pid)));
}

function resetPeaks() {
  let ok = true;
  for (const pid of measuredProcesses()) {
    try { fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); } catch { ok = false; }
  }
  return ok;
}

function peaks() {
  const byKind = {};
  for (const pid of measuredProcesses()) {
    const k = kind(pid);
    byKind[k] = (byKind[k] ?? 0) + statusKb(pid, 'VmHWM') / 1024;
  }
  const total = Object.values(byKind).reduce((a, b) => a + b, 0);
  return { peak_mb: Math.round(total * 10) / 10, by_process: byKind };
}

// ---- contention: CPU time of the whole machine against this browser's ---------------------
const TICK = 100; // USER_HZ on Linux
function machineBusy() {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 8).map(Number);
  const [user, nice, system, , , irq, softirq] = fields;
  return (user + nice + system + irq + softirq) / TICK;
}

function ownBusy() {
  let total = process.cpuUsage();
  let seconds = (total.user + total.system) / 1e6;
  for (const pid of children()) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      seconds += (Number(fields[11]) + Number(fields[12])) / TICK; // utime, stime
    } catch { /* gone */ }
  }
  return seconds;
}

function contentionMeter() {
  const start = { wall: performance.now(), machine: machineBusy(), own: ownBusy() };
  return () => {
    const wall = (performance.now() - start.wall) / 1000;
    const others = (machineBusy() - start.machine) - (ownBusy() - start.own);
    return Math.round(Math.max(others, 0) / wall * 100) / 100;
  };
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
let quietBudget = (request.quiet?.totalWaitS ?? 300) * 1000;

/** Wait until other processes use less than `threshold` cores (bounded); returns seconds waited. */
async function waitForQuiet() {
  const { threshold = 0.3, windowS = 2, maxWaitS = 45 } = request.quiet ?? {};
  const started = performance.now();
  while (true) {
    const meter = contentionMeter(); // the machine's busy time less this browser's
    await sleep(windowS * 1000);
    const others = meter();
    const waited = performance.now() - started;
    if (others < threshold || waited > maxWaitS * 1000 || waited > quietBudget) {
      quietBudget -= waited;
      return { waited_s: Math.round(waited / 100) / 10, quiet: others < threshold, others_cores_before: others };
    }
  }
}

// ---- the page ----------------------------------------------------------------------------
async function openPage(browser, base, size, { plain = false } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
  await page.goto(`${base}${plain ? '/plain' : ''}/bench/page.html`);
  const spec = request.inputs[String(size)];
  const url = (file) => `../inputs/${path.basename(file)}`;
  await page.evaluate((inputs) => window.bench.prepare(inputs), {
    content: { url: url(spec.content.file), shape: spec.content.shape },
    style: { url: url(spec.style.file), shape: spec.style.shape },
  });
  return { context, page, errors };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/** Cold start then warm runs of one configuration, in a fresh context. */
async function measure(browser, base, backend, config, extra = {}) {
  const gate = await waitForQuiet();
  const others = contentionMeter();
  const memoryResettable = resetPeaks();
  const { context, page, errors } = await openPage(browser, base, config.size, extra);
  try {
    const env = await page.evaluate((b) => window.bench.start(b),
      { backend, threads: extra.threads, reportedCores: extra.reportedCores });
    if (!env.ok) return { env, error: env.error ?? `backend ${backend} unavailable (got ${env.backend})` };
    const modelUrl = extra.modelUrl ?? `../model/${extra.modelPath ?? 'model.json'}`;
    const load = await page.evaluate((m) => window.bench.load(m), { url: modelUrl });
    const run = (keep = false) => page.evaluate((r) => window.bench.run(r),
      { iterations: config.iterations, maxResolution: config.size, keep });
    const first = await run(Boolean(extra.keep));
    let output = null;
    if (extra.keep) output = await page.evaluate(() => window.bench.output());
    for (let i = 0; i < (config.warmup ?? 0); i++) await run();
    const times = [];
    for (let i = 0; i < (config.repeats ?? 0); i++) times.push(await run());
    const record = {
      size: config.size, iterations: config.iterations, env,
      backend_s: env.backend_s, load_s: load.load_s, model_bytes: load.bytes, first_run_s: first,
      cold_s: env.backend_s + load.load_s + first, times_s: times, warmup: config.warmup ?? 0,
      memory: await page.evaluate(() => window.bench.memory()),
      ...peaks(), peak_scope: memoryResettable ? 'config' : 'process', page_errors: errors,
      quiet_gate: gate,
    };
    if (extra.profile) {
      say(`profiling ${backend} at ${config.size}`);
      record.profile = await page.evaluate((p) => window.bench.profile(p),
        { iterations: config.iterations, maxResolution: config.size });
    }
    if (output) record.output = output;
    record.others_cores = others();
    return record;
  } catch (error) {
    return { size: config.size, iterations: config.iterations, error: String(error.message ?? error), page_errors: errors };
  } finally {
    await context.close();
  }
}

/** Only start the backend: is it there, and what did it pick (threads, renderer)? */
async function probeBackend(browser, base, spec) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${base}/bench/page.html`);
    return await page.evaluate((b) => window.bench.start(b),
      { backend: spec.name, threads: spec.threads, reportedCores: spec.reportedCores });
  } catch (error) {
    return { ok: false, error: String(error.message ?? error) };
  } finally {
    await context.close();
  }
}

function writeOutput(name, base64) {
  const file = path.join(request.outputsDir, name);
  fs.writeFileSync(file, Buffer.from(base64, 'base64'));
  return file;
}

async function launch(args) {
  return chromium.launch({ executablePath: request.chromium, args, headless: true });
}

async function main() {
  const { server, url } = await startServer(request);
  let browser = await launch(BASE_ARGS);
  response.browser = { version: browser.version(), args: BASE_ARGS };
  try {
    for (const spec of request.backends) {
      say(`${spec.name}: starting`);
      const entry = { records: [], args: BASE_ARGS };
      response.backends[spec.name] = entry;
      let active = browser;
      // A backend that fails to start gets one more try with `retryArgs` (e.g. SwiftShader).
      let probe = await probeBackend(active, url, spec);
      if (!probe.ok && spec.retryArgs) {
        entry.first_attempt = { args: BASE_ARGS, env: probe };
        say(`${spec.name}: unavailable (${probe.error ?? probe.backend}); retrying with ${spec.retryArgs.join(' ')}`);
        entry.args = [...BASE_ARGS, ...spec.retryArgs];
        active = await launch(entry.args);
        probe = await probeBackend(active, url, spec);
      }
      entry.env = probe;
      if (!probe.ok) {
        entry.error = probe.error ?? `backend ${spec.name} unavailable (got ${probe.backend})`;
        say(`${spec.name}: ${entry.error}`);
        if (active !== browser) await active.close();
        save();
        continue;
      }
      for (const config of spec.configs) {
        const profile = request.profile && request.profile.backend === spec.name &&
          request.profile.size === config.size && request.profile.iterations === config.iterations;
        say(`${spec.name} ${config.size}px it ${config.iterations}: ${config.repeats} runs`);
        const record = await measure(active, url, spec.name, config,
          { profile, keep: config.keep, threads: spec.threads, reportedCores: spec.reportedCores });
        if (record.output) {
          record.output_file = writeOutput(`tfjs-${spec.name}-${config.size}-${config.iterations}.f32`, record.output);
          delete record.output;
        }
        if (record.profile) { response.profile = { backend: spec.name, ...config, ...record.profile }; delete record.profile; }
        entry.records.push(record);
        if (record.error) { say(`${spec.name}: ${record.error}`); }
        save();
        if (record.error && !record.times_s) break;
      }
      if (active !== browser) await active.close();
    }
    // The wasm backend as TF.js configures itself, and on a page without cross-origin isolation.
    for (const check of request.threadsCheck ?? []) {
      say(`wasm threads check: ${check.label}`);
      const record = await measure(browser, url, 'wasm', check, { plain: check.plain, threads: check.threads });
      response.threads_check.push({ label: check.label, plain: check.plain, ...record });
      save();
    }
    // The attention's products as converted (operand transposed by flag) and with explicit
    // transposes, on wasm: the evidence for the conversion change that matters most.
    for (const check of request.matmulCheck ?? []) {
      say(`wasm matmul check: ${check.label}`);
      await waitForQuiet();
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(`${url}/bench/page.html`);
        const env = await page.evaluate((b) => window.bench.start(b),
          { backend: 'wasm', threads: check.threads, reportedCores: check.reportedCores });
        const others = contentionMeter();
        const times = await page.evaluate((c) => window.bench.matmulCheck(c), check);
        response.matmul_check.push({ ...check, threads: env.wasm_threads, times_ms: times, others_cores: others() });
      } catch (error) {
        response.matmul_check.push({ ...check, error: String(error.message ?? error) });
      } finally {
        await context.close();
      }
      save();
    }
    for (const experiment of request.experiments ?? []) {
      say(`experiment ${experiment.name}: ${experiment.size}px it ${experiment.iterations}`);
      const record = await measure(browser, url, 'wasm', experiment, {
        modelUrl: `../experiments/${experiment.name}/model.json`, keep: true,
        threads: experiment.threads, reportedCores: experiment.reportedCores,
      });
      if (record.output) {
        record.output_file = writeOutput(`experiment-${experiment.name}-${experiment.size}.f32`, record.output);
        delete record.output;
      }
      response.experiments.push({ name: experiment.name, ...record });
      save();
    }
    if (request.variants) {
      const v = request.variants;
      for (const [name, modelPath] of Object.entries(v.models)) {
        say(`variant ${name}`);
        const record = await measure(browser, url, v.backend,
          { size: v.size, iterations: v.iterations, repeats: 0 },
          { modelPath, keep: true, threads: v.threads, reportedCores: v.reportedCores });
        if (record.output) {
          record.output_file = writeOutput(`variant-${name}-${v.size}.f32`, record.output);
          delete record.output;
        }
        response.variants.push({ name, path: modelPath, ...record });
        save();
      }
    }
  } catch (error) {
    response.errors.push(String(error.stack ?? error));
  } finally {
    save();
    await browser.close();
    server.close();
  }
}

await main();
