// Video rules of the page, defined once: what a clip run may take (said before it starts), the
// progress it reports in frames, and the live view's frame rate. No DOM here (unit-tested in Node).
import { formatDuration } from './estimate.js';

/** The file types the clip picker offers. */
export const CLIP_TYPES = ['video/mp4', 'video/webm', 'video/quicktime', 'video/x-matroska'];

/**
 * What a clip run may take, said on the page before it starts. The work limit follows this
 * device's measured speed; the result is held in memory until it is saved, hence the length
 * and frame-size limits.
 */
export const VIDEO_LIMITS = Object.freeze({
  workMs: 30 * 60 * 1000,
  seconds: 10 * 60,
  width: 3840,
  height: 2160,
});

/**
 * @typedef {{frameSize: {width: number, height: number}, styles: {width: number,
 *   height: number}[], frameMs: number, memoryMb: number, budgetMb: number}} Plan the working
 *   sizes of a clip's frames and of the style (and a second style mixed in) at a resolution, the
 *   estimated time and memory of one frame on this device (memory.js), and the memory it allows
 */

/** Why `clip` cannot be stylized within VIDEO_LIMITS at `plan` (null: it can). */
export function clipObstacle(clip, plan, backend) {
  const { width, height, seconds, workMs } = VIDEO_LIMITS;
  const name = `“${clip.name}”`;
  if (Math.max(clip.width, clip.height) > width || Math.min(clip.width, clip.height) > height) {
    return `${name} is ${clip.width}×${clip.height}; frames up to ${width}×${height} are accepted.`;
  }
  if (clip.seconds > seconds) {
    return `${name} lasts ${formatDuration(clip.seconds * 1000)}; clips up to ${formatDuration(seconds * 1000)} are accepted.`;
  }
  if (plan.memoryMb > plan.budgetMb) {
    return (
      `${name} needs about ${plan.memoryMb} MB of memory a frame at this resolution, more than ` +
      `the ${plan.budgetMb} MB this device allows on ${backend}. Choose a lower resolution.`
    );
  }
  const total = clip.frames * plan.frameMs;
  if (total > workMs) {
    return (
      `${name} would need about ${formatDuration(total)} on ${backend} (${clip.frames} frames); ` +
      `the limit is ${formatDuration(workMs)}, about ${maxFrames(plan)} frames at this ` +
      'resolution and speed. Choose a lower resolution or a shorter clip.'
    );
  }
  return null;
}

/** The limits in words, for the page to show before anything starts. */
export function describeLimits() {
  const { width, height, seconds, workMs } = VIDEO_LIMITS;
  return (
    `Clips up to ${formatDuration(seconds * 1000)} long with frames up to ${width}×${height}, ` +
    `and up to ${formatDuration(workMs)} of work at this device’s measured speed; the time a ` +
    'clip needs is shown before it starts.'
  );
}

/** How many frames fit in VIDEO_LIMITS.workMs at `plan`. */
export const maxFrames = (plan) => Math.floor(VIDEO_LIMITS.workMs / plan.frameMs);

/** "frame 12 of 240, about 3 min left": the time left from the frames done so far. */
export function describeProgress(done, total, spentMs, plannedFrameMs) {
  const frameMs = done > 0 ? spentMs / done : plannedFrameMs;
  const left = (total - done) * frameMs;
  return `frame ${Math.min(done + 1, total)} of ${total}, about ${formatDuration(left)} left`;
}

/** Frames per second from the completion times (ms) of the last frames; null under two. */
export function framesPerSecond(times) {
  if (times.length < 2) return null;
  return ((times.length - 1) * 1000) / (times.at(-1) - times[0]);
}
