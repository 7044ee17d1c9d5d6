// Video in the page: a clip stylized frame by frame into a video file, and the live webcam.
// The clips are made by the test itself (web/tests/clips.py, PyAV) and the results read back
// with PyAV; Chromium's fake camera stands in for a webcam.
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  clipObstacle,
  describeLimits,
  describeProgress,
  framesPerSecond,
  VIDEO_LIMITS,
} from '../src/video.js';
import { BUSY, createMachine, State } from '../src/machine.js';
import {
  armFault,
  config,
  downloadTo,
  launchChromium,
  LONG,
  makeInputs,
  pageReady,
  pngSize,
  python,
  startSite,
  tensorCounts,
  waitForRun,
} from './helpers.mjs';
// A decoded frame of the page's video against the page's single-image result for the same
// input frame, in 8-bit levels. Both start from the same H.264 frame, decoded by Chromium and by
// FFmpeg (1.6 levels apart on average, measured: their chroma upsampling differs), and the
// video's frame went through the browser's encoder once more, with 4:2:0 chroma: measured 1.0
// levels of luma and 3.8 of RGB (the stand-in model's output is grainy, which 4:2:0 blurs).
// An unstylized frame, another style, swapped channels or a shifted frame cost far more.
const LUMA_LEVELS = 2;
const RGB_LEVELS = 6;

const clips = (...args) => python(['web/tests/clips.py', ...args]);
const clipInfo = async (path) => JSON.parse(await clips('info', path));

describe('video rules', () => {
  const clip = { name: 'c.mp4', width: 640, height: 360, frames: 300, seconds: 10 };
  it('refuses, before starting, a clip over the work limit at this speed, and says the limit', () => {
    const plan = { frameMs: 10_000 }; // 10 s a frame: 300 frames need 50 min
    assert.equal(
      clipObstacle(clip, plan, 'wasm'),
      '“c.mp4” would need about 50 min on wasm (300 frames); the limit is 30 min, about 180 ' +
        'frames at this resolution and speed. Choose a lower resolution or a shorter clip.',
    );
    assert.equal(clipObstacle(clip, { frameMs: 5000 }, 'wasm'), null, '25 min is within it');
  });

  it('refuses a clip whose frames need more memory than this device allows', () => {
    const plan = { frameMs: 1, memoryMb: 3000, budgetMb: 2048 };
    assert.equal(
      clipObstacle(clip, plan, 'wasm'),
      '“c.mp4” needs about 3000 MB of memory a frame at this resolution, more than the 2048 MB ' +
        'this device allows on wasm. Choose a lower resolution.',
    );
    assert.equal(clipObstacle(clip, { ...plan, memoryMb: 2048 }, 'wasm'), null);
  });

  it('refuses clips longer than the length limit and frames larger than 4K', () => {
    const plan = { frameMs: 1 };
    assert.match(
      clipObstacle({ ...clip, seconds: VIDEO_LIMITS.seconds + 1 }, plan, 'wasm'),
      /^“c\.mp4” lasts 10 min; clips up to 10 min are accepted\.$/,
    );
    assert.match(
      clipObstacle({ ...clip, width: 4096, height: 2160 }, plan, 'wasm'),
      /^“c\.mp4” is 4096×2160; frames up to 3840×2160 are accepted\.$/,
    );
    assert.equal(clipObstacle({ ...clip, width: 2160, height: 3840 }, plan, 'wasm'), null);
  });

  it('states the limits in words', () => {
    assert.equal(
      describeLimits(),
      'Clips up to 10 min long with frames up to 3840×2160, and up to 30 min of work at this ' +
        'device’s measured speed; the time a clip needs is shown before it starts.',
    );
  });

  it('counts frames from one and takes the time left from the frames done', () => {
    assert.equal(describeProgress(0, 240, 0, 2000), 'frame 1 of 240, about 8 min left');
    assert.equal(describeProgress(12, 240, 6000, 2000), 'frame 13 of 240, about 2 min left');
    assert.equal(describeProgress(240, 240, 1000, 2000), 'frame 240 of 240, about 1 s left');
  });

  it('measures frames per second over the frames it was given', () => {
    assert.equal(framesPerSecond([5]), null);
    assert.equal(framesPerSecond([0, 250, 500, 750, 1000]), 4);
  });
});

describe('the page state machine with video', () => {
  const ready = () => {
    const machine = createMachine(() => {});
    machine.send('described');
    machine.send('loaded');
    return machine;
  };

  it('runs a clip or the live view from ready only, one at a time, and back to ready', () => {
    const machine = ready();
    machine.send('video');
    assert.equal(machine.state, State.VIDEO);
    assert.ok(BUSY.includes(machine.state), 'Cancel shows, the model controls lock');
    for (const event of ['run', 'live', 'video', 'load', 'changed']) {
      assert.equal(machine.can(event), false, `no “${event}” during a clip`);
    }
    machine.send('finished');
    machine.send('live');
    assert.equal(machine.state, State.LIVE);
    assert.equal(machine.can('run'), false);
    machine.send('stopped');
    assert.equal(machine.state, State.READY);
  });

  it('cancels a clip or the live view by reloading the model', () => {
    for (const start of ['video', 'live']) {
      const machine = ready();
      machine.send(start);
      machine.send('cancel');
      assert.equal(machine.state, State.LOADING);
    }
  });
});

describe('video in the page', { timeout: 600_000 }, () => {
  let site;
  let browser;
  let page;
  let inputs;
  const foreignRequests = [];
  const downloads = [];

  const testId = (id) => page.locator(`[data-testid="${id}"]`);
  const bodyState = () => page.evaluate(() => document.body.dataset.state);
  const waitState = (state) =>
    page.waitForFunction((s) => document.body.dataset.state === s, state, { timeout: LONG });

  async function assertTensorsAtBaseline() {
    const { live, baseline } = await tensorCounts(page);
    assert.ok(baseline > 0, 'the model holds its weights as tensors');
    assert.equal(live, baseline, 'every tensor of the run was disposed');
  }

  async function save(testIdName, name) {
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      testId(testIdName).click(),
    ]);
    const path = join(inputs, name);
    await download.saveAs(path);
    return { path, suggested: download.suggestedFilename() };
  }

  /** Waits until the canvas `id` (video-preview, live-view) has shown at least `n` frames. */
  const waitFrames = (id, n) =>
    page.waitForFunction(
      ([id, n]) => Number(document.querySelector(`[data-testid="${id}"]`).dataset.frames) >= n,
      [id, n],
      { timeout: LONG },
    );

  /**
   * Frame `k` of the saved `video` (made from `source`) against the page's single-image result
   * for that input frame, with the same style and settings: the page's `run`-th result (the
   * first needs a click on Stylize; later ones follow the new content by themselves).
   */
  async function assertFrameLikeImage(source, video, k, run) {
    const frame = join(inputs, `frame-${k}-${run}.png`);
    await clips('frame', source, String(k), frame);
    await testId('content-input').setInputFiles(frame);
    if (run === 1) await testId('stylize-button').click();
    await waitForRun(page, run, 0);
    const single = await downloadTo(page, inputs, `single-${run}.png`);
    assert.deepEqual(await pngSize(single), await pngSize(frame));
    const videoFrame = join(inputs, `video-frame-${k}-${run}.png`);
    await clips('frame', video, String(k), videoFrame);
    const error = JSON.parse(await clips('diff', videoFrame, single));
    assert.ok(
      error.luma_mean < LUMA_LEVELS && error.mean < RGB_LEVELS,
      `frame ${k} of the video against the single image's: ${JSON.stringify(error)}`,
    );
  }

  /** Chooses a clip and waits until the page has said what it holds. */
  async function chooseClip(name) {
    await testId('video-input').setInputFiles(join(inputs, name));
    await page.waitForFunction(
      (n) => document.getElementById('video-meta').textContent.startsWith(`${n}:`),
      name,
    );
    return page.locator('#video-meta').textContent();
  }

  /** Runs the chosen clip to the end and saves the result. */
  async function stylizeClip(name) {
    await testId('video-start').click();
    const outcome = await page.waitForFunction(
      () =>
        ['done', 'error'].find(
          (s) => s === document.querySelector('[data-testid="status"]').dataset.state,
        ),
      null,
      { timeout: LONG },
    );
    if ((await outcome.jsonValue()) === 'error') {
      throw new Error(`the clip failed: ${await testId('error').textContent()}`);
    }
    assert.equal(await bodyState(), 'ready');
    return save('video-download', name);
  }

  before(async () => {
    inputs = await makeInputs();
    await Promise.all([
      clips('make', join(inputs, 'clip.mp4'), '8'),
      clips('make', join(inputs, 'clip.webm'), '6'),
      clips('make', join(inputs, 'slow.webm'), '10', '12', '--no-audio'),
      clips('make', join(inputs, 'long.mp4'), String(VIDEO_LIMITS.seconds + 1), '1', '--no-audio'),
      clips('make', join(inputs, 'mpeg4.mp4'), '4', '12', 'mpeg4', '--no-audio'),
      clips('make', join(inputs, 'phone.mp4'), '4', '12', '--no-audio', '--turn'),
      // A dark second style: mixed in, it changes every frame plainly.
      python([
        '-c',
        `from PIL import Image; Image.new('RGB', (40, 30), (20, 10, 30)).save('${join(inputs, 'dark.png')}')`,
      ]),
    ]);
    // Always the stand-in: the two decoders' 1.6 levels would be amplified far beyond codec loss
    // by an untrained model (the page's numerics on the real model are page.test.mjs's).
    site = await startSite(config.standinDir);
    browser = await launchChromium(); // with Chromium's fake camera (helpers.mjs)
    const context = await browser.newContext({ acceptDownloads: true });
    context.on('request', (request) => {
      const url = request.url();
      if (url.startsWith('blob:') || url.startsWith('data:')) return;
      if (new URL(url).origin !== site.origin) foreignRequests.push(url);
    });
    page = await context.newPage();
    page.on('download', (download) => downloads.push(download.suggestedFilename()));
    await page.goto(`${site.origin}/`);
    await pageReady(page);
    await testId('style-input').setInputFiles(join(inputs, 'style-a.png'));
  });

  after(async () => {
    await browser?.close();
    site?.server.close();
    if (inputs) await rm(inputs, { recursive: true, force: true });
  });

  it('stylizes an MP4 clip into an MP4 of the same frames, size, rate and sound', async () => {
    assert.equal(await page.locator('#video-limits').textContent(), describeLimits());
    const meta = await chooseClip('clip.mp4');
    assert.match(meta, /^clip\.mp4: 64×48, 8 frames at 12\.00 frames\/s \(1 s\), sound \(aac\)\./);
    assert.match(
      meta,
      /each frame is computed at 64×48: about .+ on \w+ \(limit 30 min, about \d+ frames\)/,
    );
    await page.evaluate(() => {
      window.statusLog = [];
      const status = document.querySelector('[data-testid="status"]');
      const record = () => window.statusLog.push(status.textContent);
      new MutationObserver(record).observe(status, { childList: true, subtree: true });
    });
    const { path, suggested } = await stylizeClip('out.mp4');
    assert.equal(suggested, 'clip-stylized.mp4');
    const statuses = await page.evaluate(() => window.statusLog);
    for (let frame = 1; frame <= 8; frame += 1) {
      const shown = new RegExp(`^Stylizing clip\\.mp4: frame ${frame} of 8, about .+ left$`);
      assert.ok(
        statuses.some((s) => shown.test(s)),
        `frame ${frame} of 8: ${statuses.join(' | ')}`,
      );
    }
    assert.equal(await testId('video-preview').getAttribute('data-frames'), '8');
    // The worker kept the style's encodings: the last frame re-used them (issue 14's "style
    // encoded once per clip"), and only those (each frame is a new content).
    const reused = page.locator('#diagnostics [data-key="Encodings re-used"] dd');
    assert.equal(await reused.textContent(), 'style');
    assert.match(await testId('video-result').textContent(), /8 frames at 64×48 .*; sound kept\./);
    assert.deepEqual(await clipInfo(path), {
      codec: 'h264',
      frames: 8,
      sizes: [[64, 48]],
      rotation: 0,
      fps: 12,
      audio: 'aac',
    });
    await assertTensorsAtBaseline();

    // Frame 5 of the result against the page's own single-image result for frame 5.
    await assertFrameLikeImage(join(inputs, 'clip.mp4'), path, 5, 1);
    assert.deepEqual(foreignRequests, []);
  });

  it('keeps WebM as WebM with its sound, takes a clip by drag and drop, and applies the controls', async () => {
    // A second style mixed in and keep colours reach every frame, as they reach an image.
    await testId('style2-input').setInputFiles(join(inputs, 'dark.png'));
    await waitForRun(page, 2, 0);
    await testId('keep-colors').fill('0.6');
    await waitForRun(page, 3, 0);
    const bytes = (await readFile(join(inputs, 'clip.webm'))).toString('base64');
    await page.evaluate((data) => {
      const raw = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([raw], 'dropped.webm', { type: 'video/webm' }));
      const zone = document.getElementById('video-drop');
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, cancelable: true }));
    }, bytes);
    await page.waitForFunction(() =>
      document.getElementById('video-meta').textContent.startsWith('dropped.webm: 64×48, 6 frames'),
    );
    assert.equal(await testId('video-download').isDisabled(), true, 'the last clip’s result went');
    const { path, suggested } = await stylizeClip('out.webm');
    assert.equal(suggested, 'dropped-stylized.webm');
    const info = await clipInfo(path);
    assert.deepEqual([info.frames, info.sizes, info.audio], [6, [[64, 48]], 'opus']);
    assert.ok(Math.abs(info.fps - 12) < 0.05, `${info.fps} frames/s`);
    await assertTensorsAtBaseline();
    await assertFrameLikeImage(join(inputs, 'clip.webm'), path, 3, 4);
  });

  it('stylizes a clip stored sideways (a phone’s portrait clip) upright, and writes it upright', async () => {
    assert.match(await chooseClip('phone.mp4'), /^phone\.mp4: 48×64, 4 frames/);
    const { path } = await stylizeClip('phone-out.mp4');
    const info = await clipInfo(path);
    assert.deepEqual([info.frames, info.sizes, info.rotation], [4, [[48, 64]], 0]);
    await assertFrameLikeImage(join(inputs, 'phone.mp4'), path, 2, 5);
  });

  it('refuses what it cannot do with one line, before any work', async () => {
    const refusals = {
      'notes.txt':
        /^“notes\.txt” is not a video this browser can read\. Choose an MP4 or WebM video\.$/,
      'mpeg4.mp4':
        /^“mpeg4\.mp4” holds .+ video, which this browser cannot decode\. Choose an MP4 or WebM video \(H\.264, VP8, VP9 or AV1\)\.$/,
    };
    for (const [name, expected] of Object.entries(refusals)) {
      await testId('video-input').setInputFiles(join(inputs, name));
      await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden);
      assert.match(await testId('error').textContent(), expected);
      assert.match(await page.locator('#video-meta').textContent(), /^phone\.mp4:/, 'kept');
    }
    await chooseClip('long.mp4');
    await testId('video-start').click();
    await page.waitForFunction(() => !document.querySelector('[data-testid="error"]').hidden);
    assert.equal(
      await testId('error').textContent(),
      '“long.mp4” lasts 10 min; clips up to 10 min are accepted.',
    );
    assert.equal(await bodyState(), 'ready', 'nothing started');
    assert.equal(await testId('video-download').isDisabled(), true);
  });

  it('cancels a clip midway: no video to save, memory back, and the page still works', async () => {
    await chooseClip('slow.webm');
    await armFault(page, { slowdown: 60_000 }); // about 1 s a frame at these sizes
    const before = downloads.length;
    await testId('video-start').click();
    await waitFrames('video-preview', 2);
    assert.equal(await bodyState(), 'video');
    assert.equal(await testId('stylize-button').isDisabled(), true);
    await testId('cancel-button').click();
    await waitState('ready');
    assert.equal(await testId('video-download').isDisabled(), true);
    assert.equal(await testId('video-preview').isHidden(), true, 'no half-done frames shown');
    assert.equal(await testId('error').isHidden(), true);
    assert.equal(downloads.length, before, 'nothing was saved');
    await assertTensorsAtBaseline();
    const { path } = await stylizeClip('after-cancel.webm'); // the fresh worker has no slowdown
    assert.equal((await clipInfo(path)).frames, 10);
  });

  it('stylizes the live webcam with frames per second, keeps a snapshot, and stops', async () => {
    await testId('live-start').click();
    await waitFrames('live-view', 4);
    assert.equal(await bodyState(), 'live');
    assert.match(await testId('live-fps').textContent(), /^\d+\.\d frames\/s at \d+×\d+$/);
    const [, width, height] = (await testId('live-fps').textContent()).match(/at (\d+)×(\d+)$/);
    assert.ok(Math.max(Number(width), Number(height)) <= 256, 'a low working resolution');
    const camera = await page.evaluate(() => {
      const video = document.getElementById('live-camera');
      return { width: video.videoWidth, height: video.videoHeight };
    });
    await testId('live-snapshot').click();
    const snapshot = await save('live-download', 'snapshot.png');
    assert.deepEqual(await pngSize(snapshot.path), camera, 'saved at the camera’s size');
    await testId('live-stop').click();
    await waitState('ready');
    assert.equal(await testId('live-stop').isHidden(), true);
    const streaming = await page.evaluate(
      () => document.getElementById('live-camera').srcObject !== null,
    );
    assert.equal(streaming, false, 'the camera is released');
    await assertTensorsAtBaseline();
    assert.deepEqual(foreignRequests, []);
  });
});
