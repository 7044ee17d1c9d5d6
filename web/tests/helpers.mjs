// Shared set-up for the browser tests: the site server, Debian's Chromium, the Python reference.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { startServer } from '../serve.mjs';

const run = promisify(execFile);
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fromRoot = (path) => resolve(ROOT, path);

/** Locations the tests use; the Makefile sets them (see web/web.mk). */
export const config = {
  modelDir: fromRoot(process.env.MODEL_DIR ?? 'build/web/standin/tfjs'),
  savedModel: fromRoot(process.env.SAVED_MODEL_DIR ?? 'build/web/standin/saved_model'),
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

export function launchChromium() {
  // playwright-core gives every launch a fresh temporary user-data-dir.
  return chromium.launch({ executablePath: config.chromium, args: CHROMIUM_ARGS });
}

export async function startSite(modelDir = config.modelDir) {
  const server = await startServer({ port: 0, modelDir });
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
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

async function compareWith(mode, model, caseSpec) {
  const file = join(dirname(caseSpec.result), `case-${Date.now()}.json`);
  await writeFile(file, JSON.stringify(caseSpec));
  return JSON.parse(await python(['web/tests/reference.py', mode, model, file]));
}

/**
 * The page served with a model folder of the test's own making: `prepare(modelDir)` writes it
 * into a fresh inputs folder. Returns that folder, the page, the page errors seen so far, and
 * close(), which ends browser, server and folder (also done here if opening fails).
 */
export async function openPageWithModel(prepare) {
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
    const browser = await launchChromium();
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
