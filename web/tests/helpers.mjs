// Shared set-up for the browser tests: the site server, Debian's Chromium, the Python reference.
import { execFile, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { chromium } from 'playwright-core';
import { build } from '../build.mjs';
import { startServer } from '../serve.mjs';

const run = promisify(execFile);
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fromRoot = (path) => resolve(ROOT, path);

/** Locations the tests use; the Makefile sets them (see web/web.mk). */
export const config = {
  modelDir: fromRoot(process.env.MODEL_DIR ?? 'build/web/standin/tfjs'),
  savedModel: fromRoot(process.env.SAVED_MODEL_DIR ?? 'build/web/standin/saved_model'),
  // The stand-in model (make_standin_model.py), for tests of the page's plumbing whose checks
  // an untrained model's amplification of 1-level input differences would drown (video).
  standinDir: fromRoot(process.env.STANDIN_DIR ?? 'build/web/standin/tfjs'),
  python: fromRoot(process.env.PYTHON ?? '.venv/bin/python'),
  chromium: process.env.CHROMIUM ?? '/usr/bin/chromium',
  screenshots: fromRoot(process.env.SCREENSHOT_DIR ?? 'build/screenshots'),
};

// Without the background-networking flags Chromium tries to reach Google's services, which the
// closed network refuses. The fake media flags give the page a camera to test the webcam path.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
];

// WebGPU is off by default in Chromium on Linux; SwiftShader's is slow but correct.
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

/** @param {string[]} extra more command-line flags (e.g. WEBGPU_ARGS) */
export function launchChromium(extra = []) {
  // playwright-core gives every launch a fresh temporary user-data-dir.
  return chromium.launch({ executablePath: config.chromium, args: [...CHROMIUM_ARGS, ...extra] });
}

// The page's scripts as the tests run them: web/dist's sources with the test hooks compiled in
// (src/test-hooks.js), built once per test process and served at /dist/.
const testDist = fromRoot(`build/web/test-dist-${process.pid}`);
let testBuild = null;

export async function startSite(modelDir = config.modelDir, root = undefined) {
  if (!testBuild) {
    testBuild = build({ dist: testDist, testHooks: true });
    process.on('exit', () => rmSync(testDist, { recursive: true, force: true }));
  }
  await testBuild;
  const server = await startServer({ port: 0, modelDir, root, distDir: testDist });
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

/**
 * Arms a fault of src/test-hooks.js in the page's worker (e.g. {fault: 'oom'},
 * {slowdown: 1e5}) and waits until the worker confirms it.
 */
export function armFault(page, message) {
  return page.evaluate(
    (armed) =>
      new Promise((resolve) => {
        const channel = new BroadcastChannel('sanet-test');
        channel.onmessage = ({ data }) => {
          if (JSON.stringify(data.armed) === JSON.stringify(armed)) {
            channel.close();
            resolve();
          }
        };
        channel.postMessage(armed);
      }),
    message,
  );
}

/**
 * The page's last run at its working size, as PNG files in `dir`: the pixels the worker was
 * given (src/test-hooks.js) and the result canvas, before it is scaled to the content's size.
 * @returns {Promise<{content: string, style: string, result: string, style2?: string,
 *   mask?: string}>} their paths (style2 and mask when the run used them)
 */
export async function saveWorkingRun(page, dir) {
  const encoded = await page.evaluate(async () => {
    const dumped = await new Promise((resolve) => {
      const channel = new BroadcastChannel('sanet-test');
      channel.onmessage = ({ data }) => {
        if ('dumped' in data) {
          channel.close();
          resolve(data.dumped);
        }
      };
      channel.postMessage({ dump: true });
    });
    const base64 = async (draw, width, height) => {
      const canvas = new OffscreenCanvas(width, height);
      draw(canvas.getContext('2d'));
      const bytes = new Uint8Array(await (await canvas.convertToBlob()).arrayBuffer());
      let text = '';
      for (const byte of bytes) text += String.fromCharCode(byte);
      return btoa(text);
    };
    const fromPixels = ({ data, width, height }) =>
      base64((ctx) => ctx.putImageData(new ImageData(data, width, height), 0, 0), width, height);
    const result = document.querySelector('[data-testid="result"]');
    const encoded = {
      result: await base64((ctx) => ctx.drawImage(result, 0, 0), result.width, result.height),
    };
    for (const name of ['content', 'style', 'style2', 'mask']) {
      if (dumped[name]) encoded[name] = await fromPixels(dumped[name]);
    }
    return encoded;
  });
  const paths = {};
  for (const [name, data] of Object.entries(encoded)) {
    paths[name] = join(dir, `working-${name}-${Date.now()}.png`);
    await writeFile(paths[name], Buffer.from(data, 'base64'));
  }
  return paths;
}

/** How long a test waits for the page to load a model or finish a run, in ms. */
export const LONG = 90_000;

/** Waits until the page's model is loaded (status "ready"), with `expect` in the status text. */
export async function pageReady(page, expect = '') {
  await page.waitForFunction(
    (text) => {
      const status = document.querySelector('[data-testid="status"]');
      return status.dataset.state === 'ready' && status.textContent.includes(text);
    },
    expect,
    { timeout: LONG },
  );
}

/**
 * Waits for the page's n-th result (the result canvas counts them in data-run); throws as soon
 * as a new run fails instead (the status counts failed runs in data-failures). `seen`: the
 * failures counted so far; resolves to the count now.
 */
export async function waitForRun(page, n, seen) {
  const outcome = await page.waitForFunction(
    ([run, seen]) => {
      const result = document.querySelector('[data-testid="result"]');
      const failures = Number(document.querySelector('[data-testid="status"]').dataset.failures);
      if (result.dataset.run === String(run)) return { done: true, failures };
      return failures > seen ? { done: false, failures } : false;
    },
    [n, seen],
    { timeout: LONG },
  );
  const { done, failures } = await outcome.jsonValue();
  if (!done) {
    const status = await page.locator('[data-testid="status"]').textContent();
    const shown = await page.locator('[data-testid="error"]').textContent();
    throw new Error(`run ${n} failed: status “${status}”, error “${shown}”`);
  }
  return failures;
}

/** Downloads the page's result as `dir`/`name`; resolves to that path. */
export async function downloadTo(page, dir, name) {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('[data-testid="download"]').click(),
  ]);
  const path = join(dir, name);
  await download.saveAs(path);
  return path;
}

/** Opens the file chooser of a drop zone from the keyboard (focus, then Enter). */
export async function chooseByKeyboard(page, selector) {
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    page
      .locator(selector)
      .focus()
      .then(() => page.keyboard.press('Enter')),
  ]);
  return chooser;
}

/**
 * The live tensor count and the model's own, from the page's diagnostics (the live count leaves
 * out the encodings the worker keeps for the next run, which the diagnostic counts apart).
 */
export async function tensorCounts(page) {
  const text = await page.locator('#diagnostics [data-key="Tensors"] dd').textContent();
  const after = text.match(
    /^(\d+) after the last run \((\d+) held by the model\), and \d+ kept encodings$/,
  );
  if (after) return { live: Number(after[1]), baseline: Number(after[2]) };
  const loaded = text.match(/^(\d+) held by the model$/);
  if (loaded) return { live: Number(loaded[1]), baseline: Number(loaded[1]) };
  throw new Error(`unexpected Tensors diagnostic: ${text}`);
}

export async function python(args) {
  const { stdout } = await run(config.python, args, { cwd: ROOT, maxBuffer: 1 << 24 });
  return stdout;
}

/** Writes the test images (PNG, lossless) into a new temporary folder. */
export async function makeInputs() {
  const dir = await mkdtemp(join(tmpdir(), 'sanet-web-'));
  await python(['web/tests/reference.py', 'inputs', dir]);
  return dir;
}

/**
 * The Python reference (reference.py serve), one process for the test file, started on first
 * use: `ask(request)` resolves to its reply. Held (ref) only while a reply is awaited, so that
 * it never keeps the test process alive; when that process ends, its stdin closes and it ends.
 */
let reference = null;

function referenceService() {
  if (reference) return reference;
  const child = spawn(config.python, ['web/tests/reference.py', 'serve'], { cwd: ROOT });
  const waiting = [];
  let stderr = '';
  const hold = (held) => {
    for (const handle of [child, child.stdin, child.stdout, child.stderr]) {
      if (held) handle.ref();
      else handle.unref();
    }
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    const reply = JSON.parse(line);
    const { resolve, reject } = waiting.shift();
    if (reply.error) reject(new Error(`reference.py: ${reply.error}`));
    else resolve(reply);
    if (!waiting.length) hold(false);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  child.on('exit', (code) => {
    reference = null;
    const error = new Error(`reference.py serve ended (${code}): ${stderr.trim()}`);
    for (const { reject } of waiting.splice(0)) reject(error);
  });
  hold(false);
  reference = {
    ask(request) {
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        hold(true);
        child.stdin.write(`${JSON.stringify(request)}\n`);
      });
    },
  };
  return reference;
}

const compareWith = (mode, model, caseSpec) =>
  referenceService().ask({ mode, model, case: caseSpec });

/**
 * The page served with a model folder of the test's own making: `prepare(modelDir)` writes it
 * into a fresh inputs folder. Returns that folder, the page, the page errors seen so far, and
 * close(), which ends browser, server and folder (also done here if opening fails).
 */
export async function openPageWithModel(prepare, chromiumArgs = []) {
  const inputs = await makeInputs();
  const releases = [() => rm(inputs, { recursive: true, force: true })];
  const close = async () => {
    for (const release of [...releases].reverse()) await release();
  };
  try {
    const modelDir = join(inputs, 'model');
    await mkdir(modelDir);
    await prepare(modelDir);
    const site = await startSite(modelDir);
    releases.push(() => site.server.close());
    const browser = await launchChromium(chromiumArgs);
    releases.push(() => browser.close());
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${site.origin}/`);
    return { inputs, page, errors, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Runs the SavedModel on a case and returns its error against the page's PNG (8-bit levels). */
export const compareWithSavedModel = (caseSpec) =>
  compareWith('compare', config.savedModel, caseSpec);

/** The same against a TF.js model directory run in Node (wasm), e.g. a quantized variant. */
export const compareWithTfjsModel = (modelDir, caseSpec) =>
  compareWith('compare-tfjs', modelDir, caseSpec);

/** An image file's format, size, mode and share of fully transparent pixels (PIL). */
export const imageInfo = async (path) =>
  JSON.parse(await python(['web/tests/reference.py', 'info', path]));

/** Width and height from a PNG's IHDR chunk; throws if the bytes are not a PNG. */
export async function pngSize(path) {
  const bytes = await readFile(path);
  const signature = '89504e470d0a1a0a';
  if (
    bytes.subarray(0, 8).toString('hex') !== signature ||
    bytes.toString('ascii', 12, 16) !== 'IHDR'
  ) {
    throw new Error(`${path} is not a PNG`);
  }
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

/**
 * A PNG's text chunks (tEXt and uncompressed iTXt) as {keyword: text}, in file order; throws if
 * a chunk's CRC is wrong (checked with zlib's CRC-32, not the page's).
 */
export async function pngText(path) {
  const bytes = await readFile(path);
  const texts = {};
  for (let at = 8; at < bytes.length;) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString('latin1', at + 4, at + 8);
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== bytes.readUInt32BE(at + 8 + length)) {
      throw new Error(`${path}: bad CRC in its ${type} chunk`);
    }
    const nul = body.indexOf(0);
    if (type === 'tEXt') texts[body.toString('latin1', 0, nul)] = body.toString('latin1', nul + 1);
    if (type === 'iTXt') {
      // keyword NUL, compression flag and method, language tag NUL, translated keyword NUL
      const language = body.indexOf(0, nul + 3);
      const translated = body.indexOf(0, language + 1);
      texts[body.toString('latin1', 0, nul)] = body.toString('utf8', translated + 1);
    }
    at += 12 + length;
  }
  return texts;
}
