// Time whole stylizations of TF.js models side by side (the plain conversion and the ones with
// the Winograd pass) through the shipped worker in headless Debian Chromium, on wasm with the
// page's threads: one fresh context and worker per model, loaded and run once (cold), then
// rounds that take the models in turn, the order reversed every other round, so that a busy
// spell of the shared machine hits all alike; each timed run waits (bounded) for the machine to
// go quiet, and the browser's CPU time is counted beside the wall time.
//
//   node bench/winograd/end_to_end.mjs REQUEST.json RESPONSE.json
//
// REQUEST (written by bench/winograd_end_to_end.py): {chromium, repo, inputsDir,
//   inputs: {content: {file, width, height}, style: {...}}, iterations, rounds, quiet (cores),
//   maxWaitS,
//   models: {NAME: folder with model.json and metadata.json}}
// RESPONSE: {models: {NAME: {load, first_run_s, times_s: [...], cpu_s: [the browser's CPU
//   seconds in each run], busy_before: [cores busy in the 2 s before each run]}},
//   load_average: [per round],
//   max_difference: {NAME: largest RGB byte difference of its first output from the first
//   model's}, errors}
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { open } from "./browser.mjs";

const request = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const names = Object.keys(request.models);
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** Busy CPU seconds of the whole machine, all cores. */
function machineBusy() {
  const busy = ({ user, nice, sys, irq }) => user + nice + sys + irq;
  return os.cpus().reduce((sum, { times }) => sum + busy(times), 0) / 1000;
}

/**
 * CPU seconds used so far by this process's descendants: the browser, its renderers and their
 * threads (the workers' wasm threads). Unlike wall time, hardly changed by other processes.
 */
function browserCpu() {
  const parent = new Map();
  const cpu = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(entry), Number(fields[1]));
      cpu.set(Number(entry), (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      /* gone */
    }
  }
  let total = 0;
  const frontier = [process.pid];
  while (frontier.length) {
    const pid = frontier.pop();
    for (const [child, ppid] of parent)
      if (ppid === pid) {
        total += cpu.get(child);
        frontier.push(child);
      }
  }
  return total;
}

/**
 * Between runs this browser is idle: wait (at most maxWaitS) until the machine's busy cores
 * over a 2 s window fall under `quiet`, so that each timed run starts on a quiet machine.
 * Returns the cores busy in the last window.
 */
async function waitForQuiet() {
  const started = performance.now();
  for (;;) {
    const before = machineBusy();
    await sleep(2000);
    const cores = (machineBusy() - before) / 2;
    if (
      cores < request.quiet ||
      performance.now() - started > request.maxWaitS * 1000
    )
      return Math.round(cores * 100) / 100;
  }
}
const mounts = {
  "/bench": path.join(request.repo, "bench", "tfjs"),
  "/inputs": request.inputsDir,
  "/tfjs": path.join(request.repo, "node_modules", "@tensorflow"),
  ...Object.fromEntries(names.map((n) => [`/models/${n}`, request.models[n]])),
};
const { browser, server, base } = await open(
  request.repo,
  request.chromium,
  mounts,
);
const response = { models: {}, load_average: [], errors: [] };
const save = () =>
  fs.writeFileSync(process.argv[3], JSON.stringify(response, null, 1));
const served = ({ file, width, height }) => ({
  url: `/inputs/${path.basename(file)}`,
  width,
  height,
});

try {
  const pages = {};
  const outputs = {};
  for (const name of names) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => response.errors.push(String(error)));
    await page.goto(`${base}/bench/page.html`);
    await page.evaluate((i) => window.bench.prepare(i), {
      content: served(request.inputs.content),
      style: served(request.inputs.style),
    });
    const load = await page.evaluate((l) => window.bench.load(l), {
      modelUrl: `/models/${name}/model.json`,
      backend: "wasm",
    });
    if (!load.env.ok) throw new Error(`${name}: wasm unavailable`);
    const first = await page.evaluate((r) => window.bench.run(r), {
      iterations: request.iterations,
      keep: true,
    });
    outputs[name] = Buffer.from(
      await page.evaluate(() => window.bench.output()),
      "base64",
    );
    response.models[name] = {
      load,
      first_run_s: first,
      times_s: [],
      cpu_s: [],
      busy_before: [],
    };
    pages[name] = page;
    process.stderr.write(`winograd: ${name} loaded, first run ${first} s\n`);
  }
  // Each model's output against the first's, largest RGB byte difference.
  response.max_difference = Object.fromEntries(
    names.map((n) => [
      n,
      outputs[n].reduce(
        (m, v, k) => Math.max(m, Math.abs(v - outputs[names[0]][k])),
        0,
      ),
    ]),
  );
  for (let round = 0; round < request.rounds; round++) {
    const order = round % 2 ? [...names].reverse() : names;
    for (const name of order) {
      response.models[name].busy_before.push(await waitForQuiet());
      const cpuBefore = browserCpu();
      const s = await pages[name].evaluate((r) => window.bench.run(r), {
        iterations: request.iterations,
        keep: false,
      });
      response.models[name].times_s.push(s);
      response.models[name].cpu_s.push(
        Math.round((browserCpu() - cpuBefore) * 100) / 100,
      );
      process.stderr.write(`winograd: round ${round + 1}, ${name}: ${s} s\n`);
    }
    response.load_average.push(os.loadavg()[0]);
    save();
  }
} catch (error) {
  response.errors.push(String(error.stack ?? error));
} finally {
  save();
  await browser.close();
  server.close();
}
