"""Video files: stylize a clip frame by frame into a new file with the same size, frame rate,
timing and audio. Media go through PyAV, whose wheels carry their own FFmpeg.

The output is written to a hidden file beside the target and renamed over it at the end; any
failure, Ctrl-C included, removes it, so a failed run leaves no file behind.
"""

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
from av.container import InputContainer, OutputContainer
from tqdm import tqdm

from sanet.errors import SANetError
from sanet.files import check_output_file

# extension: (container format, video codec, audio codec when re-encoding, audio it can copy)
FORMATS = {
    ".mp4": ("mp4", "libx264", "aac", {"aac", "mp3"}),
    ".webm": ("webm", "libvpx-vp9", "libopus", {"opus", "vorbis"}),
}
# Visually lossless for H.264; constant quality for VP9 at libvpx's faster "good" speed.
QUALITY = {
    "libx264": {"crf": "18", "preset": "medium"},
    "libvpx-vp9": {"crf": "24", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"},
}


def check_video_output(path: Path) -> None:
    """Fail before any work if `path` is not an .mp4 or .webm that can be written."""
    if path.suffix.lower() not in FORMATS:
        raise SANetError(f"{path}: output must end in .mp4 (H.264) or .webm (VP9)")
    check_output_file(path)


@contextmanager
def open_video(path: Path) -> Iterator[InputContainer]:
    """Open a video file for reading; every way it can fail is one SANetError line."""
    try:
        container = av.open(str(path))
    except FileNotFoundError:
        raise SANetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SANetError(f"{path}: is a directory, not a video") from None
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise SANetError(f"{path}: not a video, or damaged ({_reason(error)})") from None
    with container:
        if not container.streams.video:
            raise SANetError(f"{path}: has no video stream")
        yield container


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


@contextmanager
def _partial(path: Path) -> Iterator[Path]:
    """A new hidden file beside `path` (created with the user's umask), renamed to `path` when
    the block succeeds and removed whatever happens otherwise."""
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield partial
        os.replace(partial, path)
    except OSError as error:
        raise SANetError(f"{path}: could not write ({_reason(error)})") from None
    finally:
        partial.unlink(missing_ok=True)


def _add_streams(
    source: InputContainer, output: OutputContainer, suffix: str, turns: int
) -> tuple[av.VideoStream, av.AudioStream | None, bool]:
    """The output's video stream (the source's size, `turns` quarter turns applied, its rate
    and time base) and, if the source has audio, its audio stream: a copy when the container
    takes the codec, else re-encoded."""
    _, video_codec, audio_codec, copyable = FORMATS[suffix]
    video_in = source.streams.video[0]
    video = output.add_stream(video_codec, rate=video_in.average_rate or video_in.guessed_rate)
    video.width, video.height = video_in.codec_context.width, video_in.codec_context.height
    if turns % 2:
        video.width, video.height = video.height, video.width
    # 4:2:0 needs even sides (libx264 refuses odd ones); 4:4:4 takes any size.
    even = video.width % 2 == 0 and video.height % 2 == 0
    video.pix_fmt = "yuv420p" if even else "yuv444p"
    # Frames keep their timestamps exactly: a codec time base of 1/rate would round those of a
    # variable frame rate to the average rate's grid.
    video.time_base = video.codec_context.time_base = video_in.time_base
    video.options = QUALITY[video_codec]
    if not source.streams.audio:
        return video, None, False
    audio_in = source.streams.audio[0]
    if audio_in.codec_context.name in copyable:
        return video, output.add_stream_from_template(audio_in), True
    return video, output.add_stream(audio_codec, rate=audio_in.rate), False


Clip = Callable[[np.ndarray], np.ndarray]


def stylize_video(
    source: Path,
    output: Path,
    make_clip: Callable[[tuple[int, int]], Clip],
    progress: bool = True,
) -> int:
    """Stylize every frame of `source` into `output` (.mp4 or .webm, atomically); returns the
    number of frames. `make_clip((height, width))` is called once the video is open and before
    the output exists (e.g. a `FrameStylizer`, which checks the request); it returns the
    function that stylizes one uint8 frame [H, W, 3] after another into float [H, W, 3].

    Frames stored sideways with a rotation flag (a phone's portrait clip) are turned upright
    first, as players show them, and written upright."""
    check_video_output(output)
    with open_video(source) as container:
        frames, turns = _scan(container)
    with open_video(source) as container:  # read again from the start (raw streams cannot seek)
        context = container.streams.video[0].codec_context
        shape = (context.height, context.width)
        clip = make_clip(shape[::-1] if turns % 2 else shape)
        with _partial(output) as partial:
            count = _transcode(container, partial, output, clip, frames, turns, progress)
            if count < frames:
                raise SANetError(f"{source}: damaged: decoded {count} of {frames} frames")
    return count


def _scan(container: InputContainer) -> tuple[int, int]:
    """Read the file once before any work, decoding only the first frame: the number of video
    frames, and the counterclockwise quarter turns that show them upright. Fails if there is
    none, if the header counts more, or if every stream stops more than
    two frames short of the duration the header gives (a file cut off; only checked when the
    packets carry timestamps, which raw streams lack)."""
    stream = container.streams.video[0]
    frames, reached, turns = 0, None, None
    try:
        for packet in container.demux(stream, *container.streams.audio[:1]):
            if turns is None and packet.stream is stream:
                for frame in packet.decode():
                    turns = round((frame.rotation or 0) / 90) % 4
                    break
            if packet.pts is not None and packet.time_base:
                end = (packet.pts + (packet.duration or 0)) * packet.time_base
                reached = max(reached or 0.0, float(end))
            frames += packet.stream is stream and packet.size > 0
    except av.FFmpegError as error:
        raise SANetError(f"{container.name}: damaged video ({error})") from None
    if frames == 0:
        raise SANetError(f"{container.name}: has no video frames")
    if frames < (stream.frames or 0):
        raise SANetError(f"{container.name}: truncated: {frames} of {stream.frames} frames")
    rate = stream.average_rate or stream.guessed_rate or 1
    if container.duration is not None and reached is not None:
        duration = container.duration / av.time_base
        reached -= (container.start_time or 0) / av.time_base
        if reached < duration - 2 / rate:
            raise SANetError(
                f"{container.name}: truncated: it stops at {reached:.2f} s of {duration:.2f} s"
            )
    return frames, turns or 0


def _transcode(
    container: InputContainer,
    partial: Path,
    output_path: Path,
    clip: Clip,
    frames: int,
    turns: int,
    progress: bool,
) -> int:
    """Decode, stylize and encode every frame into `partial` (the future `output_path`), and
    pass the audio on; returns how many frames."""
    count, suffix = 0, output_path.suffix.lower()
    try:
        with (
            av.open(str(partial), "w", format=FORMATS[suffix][0]) as output,
            tqdm(total=frames, unit="frame", disable=not progress) as bar,
        ):
            video, audio, copy_audio = _add_streams(container, output, suffix, turns)
            streams = [container.streams.video[0], *container.streams.audio[:1]]
            for packet in container.demux(streams):
                if packet.stream.type == "audio":
                    _audio(output, packet, audio, copy_audio)
                    continue
                for frame in packet.decode():
                    upright = np.rot90(frame.to_ndarray(format="rgb24"), turns)
                    pixels = np.round(clip(upright) * 255.0)
                    out = av.VideoFrame.from_ndarray(pixels.astype(np.uint8), format="rgb24")
                    if frame.pts is None:  # a raw stream has no timestamps: keep its rate
                        out.pts, out.time_base = count, 1 / video.codec_context.framerate
                    else:
                        out.pts, out.time_base = frame.pts, frame.time_base
                    output.mux(video.encode(out))
                    count += 1
                    bar.update()
            output.mux(video.encode(None))
            if audio and not copy_audio:
                output.mux(audio.encode(None))
    except av.FFmpegError as error:
        if getattr(error, "filename", None) == str(partial):  # e.g. the disk is full
            raise SANetError(f"{output_path}: could not write ({_reason(error)})") from None
        raise SANetError(f"{container.name}: damaged or unsupported video ({error})") from None
    return count


def _audio(
    output: OutputContainer, packet: av.Packet, audio: av.AudioStream, copy_audio: bool
) -> None:
    if copy_audio:
        if packet.dts is not None:  # the demuxer's end-of-stream marker carries none
            packet.stream = audio
            output.mux(packet)
        return
    for frame in packet.decode():
        frame.pts = None  # let the encoder's own frame size set the timing
        output.mux(audio.encode(frame))
