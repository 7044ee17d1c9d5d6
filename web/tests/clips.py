"""Video clips for the page's video tests, made and read with PyAV (which carries its own FFmpeg).

python web/tests/clips.py make OUT.mp4|OUT.webm FRAMES [RATE [VIDEO_CODEC]] [--no-audio] [--turn]
    writes a small clip (64x48, RATE frames per second, default 12, a smooth pattern that moves
    a little each frame; H.264 + AAC in MP4, VP9 + Opus in WebM, or VIDEO_CODEC, an FFmpeg
    encoder's name), with a sine tone unless --no-audio; --turn stores it with a display flag
    of 90 degrees, as phones store portrait clips (shown 48x64).
python web/tests/clips.py info CLIP
    prints the clip's video codec, frame count (decoded), stored sizes, display rotation of its
    first frame, average frame rate and audio codec (null without audio) as JSON.
python web/tests/clips.py frame CLIP K OUT.png
    writes the K-th decoded frame (0-based), as displayed (its rotation flag applied), as a PNG.
python web/tests/clips.py diff A.png B.png
    prints the mean and largest absolute difference of two same-sized images, and the mean
    absolute difference of their luma (BT.709), in 8-bit levels.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

WIDTH, HEIGHT = 64, 48
CODECS = {".mp4": ("libx264", "aac"), ".webm": ("libvpx-vp9", "libopus")}
SAMPLE_RATE = 48_000
BT709, LIMITED = 1, 1  # the ISO/IEC 23091-4 code of BT.709, and FFmpeg's limited ("MPEG") range
_AS_TAGGED = {"dst_colorspace": "ITU709", "dst_color_range": "MPEG"}
BT709_LUMA = np.array([0.2126, 0.7152, 0.0722])


def _frame(index: int) -> np.ndarray:
    """A smooth RGB pattern, shifted by two pixels per frame (uint8 [HEIGHT, WIDTH, 3])."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    x = (x + 2 * index) / WIDTH
    y = y / HEIGHT
    rgb = np.stack(
        [
            0.5 + 0.4 * np.sin(2 * np.pi * x),
            0.5 + 0.4 * np.cos(2 * np.pi * (y + 0.5 * x)),
            0.2 + 0.6 * y,
        ],
        -1,
    )
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def make(path: Path, frames: int, rate: int, codec: str | None, audio: bool, turn: bool) -> None:
    video_codec, audio_codec = CODECS[path.suffix]
    video_codec = codec or video_codec
    with av.open(str(path), "w") as out:
        video = out.add_stream(video_codec, rate=rate)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        # Tagged BT.709, limited range (what browsers assume of untagged video; FFmpeg assumes
        # BT.601), so that every decoder turns it into the same RGB.
        context = video.codec_context
        context.colorspace = context.color_primaries = context.color_trc = BT709
        context.color_range = LIMITED
        if turn:
            video.set_display_rotation(90)
        video.options = {"libx264": {"crf": "10"}, "libvpx-vp9": {"crf": "10", "b": "0"}}.get(
            video_codec, {}
        )
        sound = out.add_stream(audio_codec, rate=SAMPLE_RATE) if audio else None
        for index in range(frames):
            rgb = av.VideoFrame.from_ndarray(_frame(index), format="rgb24")
            out.mux(video.encode(rgb.reformat(format="yuv420p", **_AS_TAGGED)))
        out.mux(video.encode())
        if sound is not None:
            samples = round(SAMPLE_RATE * frames / rate)
            tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / SAMPLE_RATE)
            chunk = 960
            for start in range(0, samples, chunk):
                part = tone[start : start + chunk].astype(np.float32)[None, :]
                block = av.AudioFrame.from_ndarray(part, format="fltp", layout="mono")
                block.sample_rate = SAMPLE_RATE
                block.pts = start
                block.time_base = Fraction(1, SAMPLE_RATE)
                out.mux(sound.encode(block))
            out.mux(sound.encode())


def info(path: Path) -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        sizes = [(f.width, f.height) for f in decoded]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        rate = stream.average_rate or stream.guessed_rate
        return {
            "codec": stream.codec_context.name,
            "frames": len(sizes),
            "sizes": sorted(set(sizes)),
            "rotation": decoded[0].rotation if decoded else None,
            "fps": float(rate) if rate else None,
            "audio": audio,
        }


def _rgb(frame: av.VideoFrame) -> Image.Image:
    """A decoded frame in RGB by its own colour tags (BT.709 or BT.601, limited or full range;
    untagged: BT.709, limited, as browsers read it)."""
    full = frame.color_range == 2
    space = "ITU601" if frame.colorspace in (5, 6) else "ITU709"
    rgb = frame.reformat(
        format="rgb24",
        src_colorspace=space,
        src_color_range="JPEG" if full else "MPEG",
        dst_colorspace=space,
        dst_color_range="JPEG",
    )
    return rgb.to_image()


def frame(path: Path, index: int, out: Path) -> None:
    with av.open(str(path)) as container:
        for k, decoded in enumerate(container.decode(container.streams.video[0])):
            if k == index:
                upright = np.rot90(np.asarray(_rgb(decoded)), round(decoded.rotation / 90))
                Image.fromarray(np.ascontiguousarray(upright)).save(out)
                return
    raise SystemExit(f"{path}: no frame {index}")


def diff(a: Path, b: Path) -> dict:
    first, second = (np.asarray(Image.open(p).convert("RGB"), np.float64) for p in (a, b))
    if first.shape != second.shape:
        return {"sizes": [list(first.shape), list(second.shape)]}
    error = np.abs(first - second)
    luma = np.abs((first - second) @ BT709_LUMA)
    return {"mean": float(error.mean()), "max": float(error.max()), "luma_mean": float(luma.mean())}


def main(argv: list[str]) -> int:
    args = [a for a in argv if a not in ("--no-audio", "--turn")]
    if args[:1] == ["make"] and 3 <= len(args) <= 5:
        rate = int(args[3]) if len(args) > 3 else 12
        codec = args[4] if len(args) > 4 else None
        make(Path(args[1]), int(args[2]), rate, codec, "--no-audio" not in argv, "--turn" in argv)
    elif argv[:1] == ["info"] and len(argv) == 2:
        print(json.dumps(info(Path(argv[1]))))
    elif argv[:1] == ["frame"] and len(argv) == 4:
        frame(Path(argv[1]), int(argv[2]), Path(argv[3]))
    elif argv[:1] == ["diff"] and len(argv) == 3:
        print(json.dumps(diff(Path(argv[1]), Path(argv[2]))))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
