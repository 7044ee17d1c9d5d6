"""`sanet video` and the frame API: size, rate, audio, one style encoding, per-image equality,
flicker, and bad input that leaves nothing behind."""

import resource
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
from PIL import Image
from test_cli import bad_call, run_cli

from sanet import Stylizer
from sanet.flicker import flicker, pan_clip, scene, still_clip
from sanet.frames import FrameStylizer
from sanet.video import stylize_video

RATE = 12


def write_clip(path, frames, rate=RATE, audio=True, pix_fmt="yuv420p", rotation=0, pts=None):
    """Encode float frames [H, W, 3] as .mp4 (H.264, AAC), .webm (VP9, Opus) or .h264 (a raw
    stream: no container, no timestamps, no sound), with a 440 Hz sine wave as long as the
    frames when `audio`. No frames: one second of sound alone. `rotation`: a display flag
    (degrees counterclockwise), as phones store portrait clips. `pts`: each frame's time in
    1/`rate` s (default 0, 1, 2, ...)."""
    mp4 = path.suffix in (".mp4", ".h264")
    with av.open(str(path), "w") as container:
        video = None
        if frames:
            video = container.add_stream("libx264" if mp4 else "libvpx-vp9", rate=rate)
            video.height, video.width = frames[0].shape[:2]
            video.pix_fmt = pix_fmt
            if rotation:
                video.set_display_rotation(rotation)
        sound = container.add_stream("aac" if mp4 else "libopus", rate=48000) if audio else None
        for index, frame in enumerate(frames):
            pixels = np.round(frame * 255).astype(np.uint8)
            image = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            image.pts = pts[index] if pts else index
            container.mux(video.encode(image))
        if sound:
            seconds = np.arange(48000 * (len(frames) or rate) // rate) / 48000
            wave = (0.3 * np.sin(2 * np.pi * 440 * seconds)).astype(np.float32)[None]
            samples = av.AudioFrame.from_ndarray(wave, format="flt", layout="mono")
            samples.sample_rate, samples.pts = 48000, 0
            container.mux(sound.encode(samples))
            container.mux(sound.encode(None))
        if video:
            container.mux(video.encode(None))
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    directory = tmp_path_factory.mktemp("media")
    Image.fromarray((scene(40, 40, seed=9) * 255).astype(np.uint8)).save(directory / "style.png")
    clip = pan_clip(32, 48, 8, step=2)
    return {
        "style": directory / "style.png",
        "frames": clip,
        "mp4": write_clip(directory / "clip.mp4", clip),
        "webm": write_clip(directory / "clip.webm", clip),
    }


def read_video(path):
    """(frames as uint8 arrays, video stream facts, audio codec and seconds or None)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        facts = (video.codec_context.name, video.width, video.height, video.average_rate)
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        audio = None
        if container.streams.audio:
            container.seek(0)
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(audio=0))
            audio = (stream.codec_context.name, samples / stream.rate)
    return frames, facts, audio


@pytest.mark.parametrize(
    ("source", "suffix", "codecs"),
    [("mp4", ".mp4", ("h264", "aac")),  # audio copied
     ("mp4", ".webm", ("vp9", "opus")),  # audio re-encoded
     ("webm", ".webm", ("vp9", "opus")),
     ("webm", ".mp4", ("h264", "aac"))],
)  # fmt: skip
def test_video_keeps_size_rate_and_audio(media, demo_weights, tmp_path, source, suffix, codecs):
    output = tmp_path / f"out{suffix}"
    done = run_cli("video", media[source], media["style"], "-o", output, "--weights",
                   demo_weights, "--iterations", "2", "--strength", "0.8",
                   "--style-resolution", "24", "--stabilize", "0.5")  # fmt: skip
    assert done.returncode == 0, done.stderr
    frames, (codec, width, height, rate), audio = read_video(output)
    assert len(frames) == 8 and (codec, width, height) == (codecs[0], 48, 32)
    assert rate == pytest.approx(RATE, rel=2e-3)  # WebM's timestamps are whole milliseconds
    assert audio[0] == codecs[1] and abs(audio[1] - 8 / RATE) < 0.05
    assert "8/8" in done.stderr and "UNTRAINED" in done.stderr and "Traceback" not in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == [output.name]


def test_odd_size_silent_raw_stream(demo_weights, tmp_path):
    """No container, so no timestamps or sound, at a size 4:2:0 cannot hold."""
    frames = still_clip(33, 47, 4)
    source = write_clip(tmp_path / "odd.h264", frames, audio=False, pix_fmt="yuv444p")
    Image.fromarray((scene(20, 20) * 255).astype(np.uint8)).save(tmp_path / "style.png")
    output = tmp_path / "out.mp4"
    done = run_cli("video", source, tmp_path / "style.png", "-o", output, "--weights",
                   demo_weights, "--max-resolution", "32")  # fmt: skip
    assert done.returncode == 0, done.stderr
    frames, (_, width, height, _), audio = read_video(output)
    assert len(frames) == 4 and (width, height) == (47, 33) and audio is None


def test_variable_frame_rate_keeps_each_frames_time(tmp_path):
    times = [0, 1, 2, 5, 6, 10]  # in 1/12 s: gaps of 3 and 4 frames
    source = write_clip(tmp_path / "vfr.mp4", still_clip(32, 48, 6), audio=False, pts=times)
    output = tmp_path / "out.webm"
    stylize_video(source, output, lambda shape: lambda frame: frame / 255.0, progress=False)
    with av.open(str(output)) as container:
        seen = [frame.time for frame in container.decode(video=0)]
    assert seen == pytest.approx([t / RATE for t in times], abs=0.002)  # WebM keeps ms


def test_rotated_clip_is_stylized_and_written_upright(tmp_path):
    source = write_clip(tmp_path / "phone.mp4", pan_clip(32, 48, 3), audio=False, rotation=90)
    shapes = []

    def make_clip(shape):
        shapes.append(shape)
        return lambda frame: frame / 255.0  # the identity: only the geometry is under test

    stylize_video(source, tmp_path / "out.mp4", make_clip, progress=False)
    frames, (_, width, height, _), _ = read_video(tmp_path / "out.mp4")
    assert shapes == [(48, 32)] and (width, height) == (32, 48)
    with av.open(str(source)) as container:
        first = next(container.decode(video=0))
        assert first.rotation == 90  # the flag the output must apply
        upright = np.rot90(first.to_ndarray(format="rgb24"))  # 90 degrees counterclockwise
    assert np.abs(frames[0].astype(float) - upright).mean() < 4  # H.264 loss only


@pytest.mark.parametrize("iterations", [1, 2])
def test_style_encoded_once_and_frames_equal_single_images(media, demo_weights, iterations):
    stylizer = Stylizer.from_checkpoints(demo_weights)
    style = np.asarray(Image.open(media["style"]))
    calls = []
    hook = stylizer.model.encoder.register_forward_hook(lambda *_: calls.append(1))
    seen = []

    def make_clip(shape):
        clip = FrameStylizer(
            stylizer, style, shape, iterations, 0.7, max_resolution=40, style_resolution=24
        )

        def record(frame):
            seen.append((frame, clip(frame)))
            return seen[-1][1]

        return record

    try:
        count = stylize_video(media["mp4"], media["mp4"].with_name("x.mp4"), make_clip, False)
    finally:
        hook.remove()
    assert count == len(seen) == 8
    assert len(calls) == 1 + 8 * iterations  # the style once, each frame per iteration
    for frame, result in seen:
        alone = stylizer.stylize(
            frame, style, iterations, 0.7, max_resolution=40, style_resolution=24
        )
        assert np.abs(result - alone).max() < 1e-4  # the parity suite's tolerance


def test_creative_controls_reach_every_frame_like_single_images(media, demo_weights):
    """Keep colours, a second style (encoded once, like the first) and a region mask of
    another size: each frame equals `Stylizer.stylize` with the same controls."""
    stylizer = Stylizer.from_checkpoints(demo_weights)
    style = np.asarray(Image.open(media["style"]))
    style2 = (scene(30, 50, seed=4) * 255).astype(np.uint8)
    mask = np.zeros((10, 30, 3), np.uint8)
    mask[:, 15:] = 255  # the right half
    controls = {"keep_colors": 0.6, "style2": style2, "mix": 0.4, "mask": mask}
    calls = []
    hook = stylizer.model.encoder.register_forward_hook(lambda *_: calls.append(1))
    frames = [(scene(32, 48, seed=seed) * 255).astype(np.uint8) for seed in (1, 2, 3)]
    try:
        clip = FrameStylizer(stylizer, style, (32, 48), 1, 0.8, max_resolution=40, **controls)
        results = [clip(frame) for frame in frames]
    finally:
        hook.remove()
    assert len(calls) == 2 + len(frames)  # both styles once, then each frame
    for frame, result in zip(frames, results, strict=True):
        alone = stylizer.stylize(frame, style, 1, 0.8, max_resolution=40, **controls)
        assert np.abs(result - alone).max() < 1e-4  # the parity suite's tolerance
        plain = stylizer.stylize(frame, style, 1, 0.8, max_resolution=40)
        assert np.abs(result - plain).max() > 0.05  # the controls did change the frame


def test_video_cli_takes_the_creative_controls(media, demo_weights, tmp_path):
    mask = tmp_path / "mask.png"
    Image.new("L", (8, 8), 255).save(mask)
    output = tmp_path / "out.webm"
    done = run_cli("video", media["webm"], media["style"], "-o", output, "--weights",
                   demo_weights, "--keep-colors", "0.5", "--style2", media["style"], "--mix",
                   "0.3", "--mask", mask)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with av.open(str(output)) as container:
        assert len(list(container.decode(video=0))) == 8


def test_flicker_measure():
    moving = pan_clip(24, 32, 5, step=3, noise=0.0)
    noisy = pan_clip(24, 32, 5, step=3, noise=0.05)
    assert flicker(noisy, noisy, shift=3) == pytest.approx(1.0)
    assert flicker(noisy, moving, shift=3) == 0.0  # the clean pan, exactly compensated
    # the same noise draws at three times the amplitude change three times as much
    still, louder = still_clip(24, 32, 5, noise=0.01), still_clip(24, 32, 5, noise=0.03)
    assert flicker(still, louder) == pytest.approx(3.0, rel=0.02)
    with pytest.raises(ValueError):
        flicker(noisy, noisy[:1])


@pytest.mark.parametrize(("clip", "shift"), [(still_clip(48, 64, 6), 0),
                                             (pan_clip(48, 64, 6, step=2), 2)])  # fmt: skip
def test_stabilize_reduces_flicker(demo_weights, clip, shift):
    stylizer = Stylizer.from_checkpoints(demo_weights)
    style = scene(48, 48, seed=4)

    def measure(stabilize):
        frames = FrameStylizer(stylizer, style, clip[0].shape[:2], stabilize=stabilize)
        return flicker(clip, [frames(frame) for frame in clip], shift)

    plain, stable = measure(0.0), measure(0.8)
    assert plain > 1.0  # untrained weights amplify sensor noise
    assert stable < 0.8 * plain


@pytest.mark.parametrize(
    ("change", "message"),
    [({"source": "notvideo.mp4"}, "not a video"),
     ({"source": "cut.mp4"}, "not a video, or damaged"),  # index at the end: cut off
     ({"source": "cut.webm"}, "truncated"),
     ({"source": "sound.mp4"}, "no video stream"),
     ({"source": "missing.mp4"}, "no such file"),
     ({"style": "notvideo.mp4"}, "not an image"),
     ({"output": "out.avi"}, "must end in .mp4"),
     ({"output": "nodir/out.mp4"}, "does not exist"),
     ({"output": "/proc/out.mp4"}, "not writable"),
     ({"extra": ["--stabilize", "1"]}, "below 1"),
     ({"extra": ["--stabilize", "-0.5"]}, "at least 0"),
     ({"extra": ["--strength", "2"]}, "between 0 and 1"),
     ({"extra": ["--mix", "0.5"]}, "--mix needs --style2"),
     ({"extra": ["--keep-colors", "1.5"]}, "between 0 and 1"),
     ({"style": "big.png", "extra": ["--max-resolution", "0", "--memory-budget", "1"]},
      "--max-resolution")],
)  # fmt: skip
def test_bad_input_is_one_line_and_leaves_no_output(
    capsys, media, demo_weights, tmp_path, change, message
):
    (tmp_path / "notvideo.mp4").write_text("hello")
    (tmp_path / "cut.mp4").write_bytes(media["mp4"].read_bytes()[:3000])
    (tmp_path / "cut.webm").write_bytes(media["webm"].read_bytes()[:6000])
    write_clip(tmp_path / "sound.mp4", [])
    if change.get("style") == "big.png":
        Image.new("RGB", (1200, 1200)).save(tmp_path / "big.png")
    source = tmp_path / change.get("source", "good.mp4")
    if "source" not in change:
        source.write_bytes(media["mp4"].read_bytes())
    style = tmp_path / change["style"] if "style" in change else media["style"]
    output = tmp_path / change.get("output", "out.mp4")
    before = sorted(tmp_path.rglob("*"))
    err = bad_call(capsys, "video", source, style, "-o", output, "--weights", demo_weights,
                   *change.get("extra", []))  # fmt: skip
    assert message in err
    assert not output.exists() and sorted(tmp_path.rglob("*")) == before


def test_full_disk_blames_the_output_and_leaves_nothing(media, demo_weights, tmp_path):
    def small_files():  # in the child: files stop growing at 2 kB, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    output = tmp_path / "out.mp4"
    command = [sys.executable, "-m", "sanet", "video", media["mp4"], media["style"], "-o",
               output, "--weights", demo_weights]  # fmt: skip
    done = subprocess.run(list(map(str, command)), capture_output=True, text=True,
                          preexec_fn=small_files, timeout=300)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith(f"sanet: error: {output}: could not write"), last
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_leaves_no_output(demo_weights, tmp_path):
    source = write_clip(tmp_path / "long.webm", still_clip(32, 48, 240), audio=False)
    Image.fromarray((scene(32, 32) * 255).astype(np.uint8)).save(tmp_path / "style.png")
    output = tmp_path / "out.mp4"
    command = [sys.executable, "-m", "sanet", "video", source, tmp_path / "style.png", "-o",
               output, "--weights", demo_weights]  # fmt: skip
    process = subprocess.Popen(list(map(str, command)), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.mp4.*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.mp4.*")), "the run never started writing"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.webm", "style.png"]
