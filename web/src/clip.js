// Video files in the page: read what a clip holds before any work, then decode it frame by frame,
// hand each frame to a stylizing function and encode the results into a new file, with the
// browser's own codecs (WebCodecs) through Mediabunny's demuxers and muxers. Nothing leaves
// the device. The page imports this module on demand (video-panel.js): Mediabunny is most of
// the page's script, and only a clip needs it.
import {
  ALL_FORMATS,
  BlobSource,
  BufferTarget,
  canEncodeVideo,
  Conversion,
  Input,
  Mp4OutputFormat,
  Output,
  Quality,
  QUALITY_VERY_HIGH,
  WebMOutputFormat,
} from 'mediabunny';

/**
 * The result's video quality. Stylized texture needs more than a camera's usual bitrate: VP9 (in
 * WebM) at a constant quantizer of 24, like the CLI's CRF 24 (sanet/video.py QUALITY); H.264 (in
 * MP4), which has no constant-quality mode in WebCodecs here, at BITS_PER_PIXEL bits per pixel
 * and frame, at least MIN_BITRATE. A browser that cannot encode the codec gets the container's
 * first one it can, at Mediabunny's "very high" quality.
 */
const VP9_QUANTIZER = 24;
const BITS_PER_PIXEL = 0.4;
const MIN_BITRATE = 1e6;

/** The codec and quality for `clip` in WebM (else MP4), as the browser can encode them. */
async function videoEncoding(clip, webm) {
  const { width, height, fps } = clip;
  const [codec, quality] = webm
    ? ['vp9', new Quality({ quantizer: VP9_QUANTIZER })]
    : [
        'avc',
        new Quality({ bitrate: Math.max(MIN_BITRATE, BITS_PER_PIXEL * width * height * fps) }),
      ];
  return (await canEncodeVideo(codec, { width, height, quality }))
    ? { codec, quality }
    : { quality: QUALITY_VERY_HIGH };
}

/** A problem with the clip the user chose, worded for the user. */
export class VideoInputError extends Error {
  constructor(message) {
    super(message);
    this.name = 'VideoInputError';
  }
}

/**
 * @typedef {{name: string, file: Blob, width: number, height: number, frames: number,
 *   fps: number, seconds: number, codec: string, audio: string|null}} Clip width and height:
 *   as shown (rotation applied); audio: the first audio track's codec, null without one
 */

const CHOOSE = 'Choose an MP4 or WebM video.';

/** Reads a clip's header and packet table (no frame is decoded); refuses what cannot be used. */
export async function probeClip(file, name) {
  if (file.size === 0) throw new VideoInputError(`“${name}” is empty.`);
  const input = new Input({ source: new BlobSource(file), formats: ALL_FORMATS });
  try {
    let track;
    try {
      track = await input.getPrimaryVideoTrack();
    } catch {
      throw new VideoInputError(`“${name}” is not a video this browser can read. ${CHOOSE}`);
    }
    if (!track) throw new VideoInputError(`“${name}” holds no video. ${CHOOSE}`);
    if (!track.codec || !(await track.canDecode())) {
      throw new VideoInputError(
        `“${name}” holds ${track.codec ?? 'an unknown kind of'} video, which this browser ` +
          `cannot decode. ${CHOOSE.replace('.', ' (H.264, VP8, VP9 or AV1).')}`,
      );
    }
    const [stats, seconds, audio] = await Promise.all([
      track.computePacketStats(),
      input.computeDuration([track]),
      input.getPrimaryAudioTrack(),
    ]);
    if (stats.packetCount === 0) throw new VideoInputError(`“${name}” has no frames.`);
    return {
      name,
      file,
      width: track.displayWidth,
      height: track.displayHeight,
      frames: stats.packetCount,
      fps: stats.averagePacketRate,
      seconds,
      codec: track.codec,
      audio: audio?.codec ?? null,
    };
  } finally {
    input.dispose();
  }
}

/**
 * @typedef {{blob: Blob, fileName: string, audio: string}} ClipResult audio: what became of
 *   the clip's sound, in words ('' without sound)
 */

/**
 * Decodes `clip`, passes each frame through `stylizeFrame(frame, index)` (a VideoSample in, a
 * canvas of the clip's size out) and encodes the results at the clip's size, with its frame
 * timing and, where this browser can, its audio: copied when the container takes its codec,
 * else re-encoded, else left out (and said so). WebM stays WebM; anything else becomes MP4.
 * A failure of `stylizeFrame` ends the run with that failure, and no file.
 * @returns {Promise<ClipResult>}
 */
export async function stylizeClip(clip, stylizeFrame) {
  const webm = /webm/i.test(clip.file.type) || /\.webm$/i.test(clip.name);
  const target = new BufferTarget();
  const output = new Output({
    format: webm ? new WebMOutputFormat() : new Mp4OutputFormat({ fastStart: 'in-memory' }),
    target,
  });
  const input = new Input({ source: new BlobSource(clip.file), formats: ALL_FORMATS });
  const encoding = await videoEncoding(clip, webm);
  let index = 0;
  try {
    const conversion = await Conversion.init({
      input,
      output,
      tracks: 'primary',
      showWarnings: false,
      video: {
        forceTranscode: true,
        ...encoding,
        // A clip stored sideways with a rotation flag reaches stylizeFrame upright.
        allowTransformationMetadata: false,
        process: (sample) => stylizeFrame(sample, index++),
        processedWidth: clip.width,
        processedHeight: clip.height,
      },
    });
    if (!conversion.isValid) throw new VideoInputError(`“${clip.name}” cannot be converted here.`);
    let audio = '';
    if (clip.audio) {
      const dropped = conversion.discardedTracks.find(({ track }) => track.type === 'audio');
      audio = dropped
        ? `the sound (${clip.audio}) is left out: this browser cannot ${
            dropped.reason === 'undecodable_source_codec' ? 'decode it' : 'encode it for this file'
          }`
        : 'sound kept';
    }
    await conversion.execute();
    const stem = clip.name.replace(/\.[^.]+$/, '') || 'video';
    return {
      blob: new Blob([target.buffer], { type: webm ? 'video/webm' : 'video/mp4' }),
      fileName: `${stem}-stylized.${webm ? 'webm' : 'mp4'}`,
      audio,
    };
  } finally {
    input.dispose();
  }
}
