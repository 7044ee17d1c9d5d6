// The creative controls in the page (keep colours, a second style and its mix, a region mask,
// the stroke size), in Debian's headless Chromium against the model in MODEL_DIR, and the
// pieces of them that run without a browser.
import assert from 'node:assert/strict';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { describeControls } from '../src/controls.js';
import { withText } from '../src/result.js';
import { styleWorkingSize } from '../src/working-size.js';
import {
  chooseByKeyboard,
  compareWithSavedModel,
  config,
  downloadTo,
  imageInfo,
  launchChromium,
  makeInputs,
  pageReady,
  pngSize,
  pngText,
  saveWorkingRun,
  startSite,
  waitForRun,
} from './helpers.mjs';

// As in page.test.mjs: the page's 8-bit result against the SavedModel's float output.
const MAX_LEVELS = 3;
const MEAN_LEVELS = 0.5;

describe('the creative controls without a browser', () => {
  it('sizes the style by the stroke size as sanet.stylizer.style_working_size does', () => {
    const rules = { minSide: 17 };
    // As the content (-1): the content's rule at the resolution; 120x90 fits in 256 as it is.
    assert.deepEqual(styleWorkingSize(90, 120, 256, -1, rules), { height: 90, width: 120 });
    assert.deepEqual(styleWorkingSize(90, 120, 64, -1, rules), { height: 48, width: 64 });
    // A stroke size scales up as well as down, whatever the resolution.
    assert.deepEqual(styleWorkingSize(90, 120, 128, 256, rules), { height: 192, width: 256 });
    assert.deepEqual(styleWorkingSize(111, 97, 2048, 64, rules), { height: 64, width: 56 });
    // 0: as given, except a side under the minimum; a thin style keeps its minimum side.
    assert.deepEqual(styleWorkingSize(90, 120, 64, 0, rules), { height: 90, width: 120 });
    assert.deepEqual(styleWorkingSize(5000, 20, 512, 512, rules), { height: 512, width: 17 });
  });

  it('names only the controls that change the output', () => {
    const off = { keepColors: 0, mix: 0.5, style2: null, mask: null, styleResolution: -1 };
    assert.deepEqual(describeControls(off), []);
    assert.deepEqual(describeControls({ ...off, mix: 0, style2: 'b.png' }), []);
    assert.deepEqual(
      describeControls({
        keepColors: 0.7,
        mix: 0.4,
        style2: 'b.png',
        mask: 'mask (painted)',
        styleResolution: 512,
      }),
      ['keep colours 0.70', 'mix 0.40 with b.png', 'region mask (painted)', 'stroke 512 px'],
    );
  });

  it('writes the note into a PNG text chunk after the header, with a valid CRC', async () => {
    // A 1x1 red PNG (header, data, end), as PIL writes it.
    const png = Buffer.from(
      '89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de' +
        '0000000c49444154789c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082',
      'hex',
    );
    const chunks = (bytes) => {
      const found = [];
      for (let at = 8; at < bytes.length; at += 12 + bytes.readUInt32BE(at)) {
        const length = bytes.readUInt32BE(at);
        const crcOk =
          crc32(bytes.subarray(at + 4, at + 8 + length)) === bytes.readUInt32BE(at + 8 + length);
        found.push([bytes.toString('latin1', at + 4, at + 8), crcOk]);
      }
      return found;
    };
    const noted = async (text) => {
      const file = await withText(new Blob([png], { type: 'image/png' }), 'Comment', text);
      assert.equal(file.type, 'image/png');
      return Buffer.from(await file.arrayBuffer());
    };
    const latin = await noted('keep colours 0.70, café');
    assert.deepEqual(chunks(latin), [
      ['IHDR', true],
      ['tEXt', true],
      ['IDAT', true],
      ['IEND', true],
    ]);
    assert.match(latin.toString('latin1'), /Comment\0keep colours 0\.70, caf\xe9/);
    const wide = await noted('mix 0.50 with “北斎”.png');
    assert.deepEqual(chunks(wide)[1], ['iTXt', true]);
    assert.ok(wide.includes(Buffer.from('mix 0.50 with “北斎”.png', 'utf8')));
  });
});

describe('the creative controls in Chromium', { timeout: 600_000 }, () => {
  let site;
  let browser;
  let context;
  let page;
  let inputs;
  let run = 0;
  let failuresSeen = 0;
  const pageErrors = [];
  const foreign = [];

  const testId = (id) => page.locator(`[data-testid="${id}"]`);
  const caption = () => page.locator('#result-meta').textContent();
  const input = (name) => join(inputs, name);

  const waitReady = (expect) => pageReady(page, expect);
  async function waitRun(n) {
    failuresSeen = await waitForRun(page, n, failuresSeen);
  }
  const downloadResult = (name) => downloadTo(page, inputs, name);

  /** The page's result against the SavedModel run on `spec` (controls it omits are off). */
  async function assertLikeSavedModel(t, spec) {
    const report = await compareWithSavedModel(spec);
    t.diagnostic(`page vs SavedModel: ${JSON.stringify(report)}`);
    assert.deepEqual(report.page_size, report.reference_size);
    assert.ok(report.max_abs <= MAX_LEVELS, `max error ${report.max_abs} levels`);
    assert.ok(report.mean_abs <= MEAN_LEVELS, `mean error ${report.mean_abs} levels`);
    return report;
  }

  /**
   * The last run, from the inputs the worker was given (the page's working size, the mask as
   * painted or resampled), against the SavedModel; resolves to those inputs' PNG paths.
   */
  async function assertWorkingRunLikeSavedModel(t, controls) {
    const working = await saveWorkingRun(page, inputs);
    const spec = { ...working, iterations: 1, strength: 1, max_resolution: 0 };
    await assertLikeSavedModel(t, { ...spec, keep_colors: 0.7, mix: 0.5, ...controls });
    return working;
  }

  /** The grey level (0..255) of a PNG mask at (x, y), read back from the working run's dump. */
  const maskLevel = async (path, x, y) =>
    page.evaluate(
      async ([bytes, x, y]) => {
        const blob = new Blob([new Uint8Array(bytes)], { type: 'image/png' });
        const bitmap = await createImageBitmap(blob);
        const ctx = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d');
        ctx.drawImage(bitmap, 0, 0);
        return ctx.getImageData(x, y, 1, 1).data[0];
      },
      [[...(await readFile(path))], x, y],
    );

  /**
   * Drags the mouse through the points given (x, y in the 173x131 content's pixels) over the
   * mask layer, scrolled into view first: a click elsewhere (Playwright scrolls what it clicks
   * into view) can leave the preview above the viewport, where a mouse event hits nothing.
   */
  async function strokeOver(first, ...rest) {
    const layer = page.locator('#mask-layer');
    await layer.scrollIntoViewIfNeeded();
    const box = await layer.boundingBox();
    const scale = Math.min(box.width / 173, box.height / 131);
    const at = ([x, y]) => [
      box.x + (box.width - 173 * scale) / 2 + x * scale,
      box.y + (box.height - 131 * scale) / 2 + y * scale,
    ];
    await page.mouse.move(...at(first));
    await page.mouse.down();
    for (const point of rest) await page.mouse.move(...at(point), { steps: 5 });
    await page.mouse.up();
  }

  before(async () => {
    inputs = await makeInputs();
    site = await startSite();
    browser = await launchChromium();
    context = await browser.newContext({
      acceptDownloads: true,
      viewport: { width: 1280, height: 900 },
    });
    context.on('request', (request) => {
      const url = request.url();
      if (!/^(blob|data):/.test(url) && new URL(url).origin !== site.origin) foreign.push(url);
    });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    await page.goto(`${site.origin}/`);
    await waitReady();
    await testId('model-variant').selectOption('fp32');
    await waitReady('fp32');
    await testId('backend').selectOption('wasm');
    await waitReady('on wasm');
  });

  after(async () => {
    await browser?.close();
    site?.server.close();
    if (inputs) await rm(inputs, { recursive: true, force: true });
  });

  it('offers labelled controls, off by default, usable from the keyboard', async () => {
    for (const id of ['keep-colors', 'mix', 'style-resolution', 'brush-size', 'brush-erase']) {
      const label = await testId(id).evaluate((el) => el.labels?.[0]?.textContent.trim() ?? '');
      assert.ok(label, `${id} has a label`);
    }
    for (const id of ['style2-input', 'mask-input']) {
      const label = await page.locator(`label[for="${id}"]`).textContent();
      assert.match(label, /…$/, `${id} has a visible label`);
    }
    assert.equal(await testId('keep-colors').inputValue(), '0');
    assert.equal(await page.locator('#keep-colors-value').textContent(), '0.00');
    assert.equal(await testId('mix').inputValue(), '0.5');
    assert.equal(await testId('mix').isDisabled(), true, 'no mix without a second style');
    assert.equal(await testId('style-resolution').inputValue(), '-1');
    const regionOff = await page.locator('#region').evaluate((fieldset) => fieldset.disabled);
    assert.equal(regionOff, true, 'no region without a content image');
    const stroke = await testId('style-resolution').locator('option').allTextContents();
    assert.equal(stroke.length, 5);
    await testId('keep-colors').focus();
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.locator('#keep-colors-value').textContent(), '0.05');
    await page.keyboard.press('ArrowLeft');
    assert.equal(await testId('keep-colors').inputValue(), '0');
    // The second style's panel opens the file chooser with Enter, like the others.
    const chooser = await chooseByKeyboard(page, '#style2-drop');
    assert.equal(chooser.isMultiple(), false);
  });

  it('stylizes with keep colours, a second style mixed in and a mask like the SavedModel', async (t) => {
    await testId('max-resolution').selectOption('256');
    await testId('content-input').setInputFiles(input('content.png'));
    await testId('style-input').setInputFiles(input('style-a.png'));
    await testId('stylize-button').click();
    await waitRun(++run);
    const plain = await downloadResult('plain.png');
    assert.doesNotMatch(await caption(), /keep colours|mix|region|stroke/);

    await testId('style2-input').setInputFiles(input('style-dark.png'));
    await waitRun(++run);
    assert.equal(await testId('mix').isDisabled(), false);
    assert.equal(await page.locator('#style2-preview').isVisible(), true, 'a thumbnail');
    await testId('keep-colors').fill('0.7');
    await waitRun(++run);
    await testId('mask-input').setInputFiles(input('mask.png'));
    await waitRun(++run);
    assert.match(
      await caption(),
      /; 1 iteration, strength 1\.00, keep colours 0\.70, mix 0\.50 with style-dark\.png, region mask from mask\.png; /,
    );
    const result = await downloadResult('controls.png');
    assert.deepEqual(await pngSize(result), { width: 173, height: 131 });
    const spec = {
      content: input('content.png'),
      style: input('style-a.png'),
      result,
      iterations: 1,
      strength: 1,
      max_resolution: 256,
      keep_colors: 0.7,
      style2: input('style-dark.png'),
      mix: 0.5,
      mask: input('mask.png'),
    };
    await assertLikeSavedModel(t, spec);
    // The comparison can tell: the same inputs with each control off are far from the page's.
    for (const off of [{ keep_colors: 0 }, { mix: 0 }, { mask: null }]) {
      const report = await compareWithSavedModel({ ...spec, ...off });
      t.diagnostic(`page vs SavedModel with ${JSON.stringify(off)}: ${JSON.stringify(report)}`);
      assert.ok(report.max_abs > 2 * MAX_LEVELS, `${JSON.stringify(off)}: ${report.max_abs}`);
    }
    // The plain run before them is today's output (the controls' defaults change nothing).
    await assertLikeSavedModel(t, { ...spec, result: plain, keep_colors: 0, mix: 0, mask: null });
    // The PNG says what made it.
    const { Comment: comment } = await pngText(result);
    assert.match(
      comment,
      /^SANet stylization of content\.png with style-a\.png; 1 iteration, strength 1\.00, keep colours 0\.70, mix 0\.50 with style-dark\.png, region mask from mask\.png; computed at 173×131; fp32 model/,
    );
    assert.equal((await imageInfo(result)).format, 'PNG');
  });

  it('passes axe’s accessibility checks with the controls in use', async (t) => {
    await page.addScriptTag({ path: createRequire(import.meta.url).resolve('axe-core') });
    const { violations, passes } = await page.evaluate(() => globalThis.axe.run(document));
    t.diagnostic(`axe: ${passes.length} rules passed`);
    const found = violations.map(
      ({ id, nodes }) => `${id}: ${nodes.map((node) => node.target.join(' ')).join(', ')}`,
    );
    assert.deepEqual(found, []);
  });

  it('paints a region with the brush, erases, inverts and clears it', async (t) => {
    await testId('region-clear').click();
    await waitRun(++run);
    assert.doesNotMatch(await caption(), /region/);
    await testId('region-paint').click();
    assert.equal(await testId('region-paint').getAttribute('aria-pressed'), 'true');
    // A stroke across the left third of the photo, on screen over the content's preview.
    await testId('brush-size').fill('10');
    await strokeOver([20, 30], [40, 60], [50, 100]);
    await waitRun(++run);
    assert.match(await caption(), /region mask \(painted\)/);
    let working = await assertWorkingRunLikeSavedModel(t);
    assert.deepEqual(await pngSize(working.mask), { width: 173, height: 131 });
    assert.equal(await maskLevel(working.mask, 40, 60), 255, 'painted: stylize');
    assert.equal(await maskLevel(working.mask, 150, 20), 0, 'not painted: keep');
    // Erase part of the stroke.
    await testId('brush-erase').check();
    await strokeOver([40, 52], [40, 68]);
    await waitRun(++run);
    working = await saveWorkingRun(page, inputs);
    assert.equal(await maskLevel(working.mask, 40, 60), 0, 'erased: keep');
    assert.equal(await maskLevel(working.mask, 50, 100), 255, 'the rest of the stroke stays');
    await testId('region-invert').click();
    await waitRun(++run);
    working = await saveWorkingRun(page, inputs);
    assert.equal(await maskLevel(working.mask, 50, 100), 0, 'inverted');
    assert.equal(await maskLevel(working.mask, 150, 20), 255, 'inverted');
    await testId('region-paint').click();
    assert.equal(await testId('region-paint').getAttribute('aria-pressed'), 'false');
    await testId('region-clear').click();
    await waitRun(++run);
    assert.doesNotMatch(await caption(), /region/);
    assert.equal(await page.locator('#mask-layer').isHidden(), true);
  });

  it('takes a mask of any size and shape', async (t) => {
    await testId('mask-input').setInputFiles(input('mask-small.png')); // 64x40, left half black
    await waitRun(++run);
    assert.match(await caption(), /region mask from mask-small\.png/);
    const working = await assertWorkingRunLikeSavedModel(t);
    assert.deepEqual(await pngSize(working.mask), { width: 173, height: 131 });
    assert.equal(await maskLevel(working.mask, 20, 65), 0);
    assert.equal(await maskLevel(working.mask, 150, 65), 255);
    // At desktop width, every control on (build/screenshots/controls.png, not committed).
    await mkdir(config.screenshots, { recursive: true });
    await page.screenshot({ path: join(config.screenshots, 'controls.png'), fullPage: true });
    // A new content image clears the region, and says so.
    await testId('content-input').setInputFiles(input('square.png'));
    await waitRun(++run);
    assert.doesNotMatch(await caption(), /region/);
    assert.match(await page.locator('#region-meta').textContent(), /cleared/);
    await testId('content-input').setInputFiles(input('content.png'));
    await waitRun(++run);
  });

  it('sizes the style by the stroke size', async (t) => {
    await testId('style-resolution').selectOption('256');
    await waitRun(++run);
    assert.match(await caption(), /, stroke 256 px; /);
    let working = await assertWorkingRunLikeSavedModel(t, { style_resolution: 256 });
    // style-a.png is 120x90: scaled up to a longest side of 256, like the second style.
    assert.deepEqual(await pngSize(working.style), { width: 256, height: 192 });
    assert.deepEqual(await pngSize(working.style2), { width: 224, height: 256 });
    await testId('style-resolution').selectOption('0');
    await waitRun(++run);
    assert.match(await caption(), /, stroke as the style’s own size; /);
    working = await saveWorkingRun(page, inputs);
    assert.deepEqual(await pngSize(working.style), { width: 120, height: 90 });
  });

  it('refuses a second style or mask that is no image in one line, keeping the result', async () => {
    const before = await caption();
    const shown = await page.locator('[data-testid="result"]').getAttribute('data-run');
    for (const [id, file, message] of [
      ['style2-input', 'notes.txt', /^“notes\.txt” is not an image \(text\/plain\)\./],
      ['mask-input', 'empty.png', /^“empty\.png” is empty\.$/],
      ['mask-input', 'broken.png', /^“broken\.png” is not an image this browser can read\./],
      ['style2-input', 'drawing.svg', /vector drawing \(SVG\)/],
    ]) {
      await testId(id).setInputFiles(input(file));
      await page.waitForFunction(
        (name) => document.querySelector('[data-testid="error"]').textContent.includes(name),
        file,
      );
      const error = await testId('error').textContent();
      assert.match(error, message);
      assert.doesNotMatch(error, /\n/, 'one line');
    }
    // Nothing ran: the result on screen is the one of the inputs still in place.
    assert.equal(await page.locator('[data-testid="result"]').getAttribute('data-run'), shown);
    assert.equal(await page.locator('[data-testid="result"]').isVisible(), true);
    assert.equal(await caption(), before);
    await testId('mix').fill('0.3');
    await waitRun(++run);
    assert.match(await caption(), /mix 0\.30 with style-dark\.png/);
    // Removing the second style takes the mix away.
    await testId('style2-remove').click();
    await waitRun(++run);
    assert.equal(await testId('mix').isDisabled(), true);
    assert.doesNotMatch(await caption(), /mix/);
  });

  it('remembers the controls across a reload, and not the images', async () => {
    await page.reload();
    failuresSeen = 0;
    run = 0;
    await waitReady();
    assert.equal(await testId('keep-colors').inputValue(), '0.7');
    assert.equal(await page.locator('#keep-colors-value').textContent(), '0.70');
    assert.equal(await testId('mix').inputValue(), '0.3');
    assert.equal(await testId('style-resolution').inputValue(), '0');
    assert.equal(await page.locator('#style2-preview').isHidden(), true);
    assert.equal(await page.locator('#mask-layer').isHidden(), true);
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(foreign, []);
  });
});
