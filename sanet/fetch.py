"""Download the original SANet release files from their public Yandex.Disk links.

Each link is resolved through Yandex.Disk's public API: `GET {api}?public_key=LINK` gives the
file's name and size, `GET {api}/download?public_key=LINK` a one-time download address. Files
are streamed to a hidden partial file, checked (size, then loading as a state dict) and only
then renamed into place, so an interrupted or failed download leaves nothing behind.
"""

import http.client
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from sanet.errors import SANetError
from sanet.weights import (
    DECODER_PATTERN,
    TRANSFORMER_PATTERN,
    VGG_FILE,
    load_model,
    read_state_dict,
    write_demo_weights,
)

API = "https://cloud-api.yandex.net/v1/disk/public/resources"
# The public links given in the README of the original SANet code (GlebSBrykin/SANET).
RELEASE_LINKS = {
    "vgg": "https://yadi.sk/d/7IrysY8q8dtneQ",
    "decoder": "https://yadi.sk/d/xsZ7j6FhK1dmfQ",
    "transformer": "https://yadi.sk/d/GhQe3g_iRzLKMQ",
}
TIMEOUT_S = 60
CHUNK = 1 << 20


def _name_ok(kind: str, name: str) -> bool:
    """The server names the file; accept only the release's own names (no paths)."""
    if kind == "vgg":
        return name == VGG_FILE
    pattern = DECODER_PATTERN if kind == "decoder" else TRANSFORMER_PATTERN
    return pattern.fullmatch(name) is not None


def _open(url: str) -> BinaryIO:
    request = urllib.request.Request(url, headers={"User-Agent": "sanet-web"})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise SANetError(f"{url}: the server answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        host = urllib.parse.urlsplit(url).netloc
        raise SANetError(
            f"cannot reach {host} ({reason}): check the network, or download the files by hand "
            f"from {', '.join(RELEASE_LINKS.values())}"
        ) from None


def _json(url: str) -> dict:
    with _open(url) as response:
        try:
            answer = json.loads(response.read())
        except ValueError:
            raise SANetError(f"{url}: the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise SANetError(f"{url}: unexpected answer {str(answer)[:80]}")
    return answer


def download(url: str, target: Path, expected_size: int, name: str) -> None:
    """Stream `url` to `target` atomically, with a progress bar on stderr."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        with _open(url) as response, open(partial, "wb") as stream:
            total = int(response.headers.get("Content-Length") or expected_size or 0)
            done = 0
            with tqdm(total=total or None, desc=name, unit="B", unit_scale=True,
                      unit_divisor=1024, file=sys.stderr) as bar:  # fmt: skip
                while chunk := response.read(CHUNK):
                    stream.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
        if (expected_size and done != expected_size) or (total and done != total):
            raise SANetError(
                f"{name}: download incomplete ({done} of {expected_size or total} bytes); run again"
            )
        read_state_dict(partial)  # raises a clear error for a damaged file
        partial.replace(target)
    except (OSError, http.client.HTTPException) as error:
        raise SANetError(
            f"{name}: download failed ({error or type(error).__name__}); run again"
        ) from None
    finally:
        partial.unlink(missing_ok=True)


def fetch_release(directory: Path, api: str = API) -> list[str]:
    """Download whichever release files are missing from `directory`; returns status lines."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for kind, link in RELEASE_LINKS.items():
        query = urllib.parse.urlencode({"public_key": link})
        meta = _json(f"{api}?{query}")
        name, size = str(meta.get("name", "")), int(meta.get("size") or 0)
        if not _name_ok(kind, name):
            raise SANetError(f"{link}: unexpected file name {name!r} for the {kind} checkpoint")
        target = directory / name
        if _complete(target, size):
            lines.append(f"{name}: already present")
            continue
        href = _json(f"{api}/download?{query}").get("href")
        if not isinstance(href, str) or not href.startswith(("http://", "https://")):
            raise SANetError(f"{link}: the API gave no download address")
        download(href, target, size, name)
        lines.append(f"{name}: downloaded ({size / 2**20:.1f} MB)")
    model, files = load_model(directory)
    lines.append(f"ok: iteration {files.iteration}, widths {model.widths}")
    return lines


def _complete(target: Path, size: int) -> bool:
    if not target.is_file() or (size and target.stat().st_size != size):
        return False
    try:
        read_state_dict(target)
    except SANetError:
        return False
    return True


def release_or_demo(directory: Path, demo_directory: Path, say: Callable[[str], None]) -> Path:
    """The release files in `directory`, fetched if absent; when they cannot be had (no
    network), UNTRAINED demo weights written to `demo_directory`, with loud warnings."""
    try:
        for line in fetch_release(directory):
            say(line)
        return directory
    except SANetError as error:
        say(f"WARNING: no release weights ({error})")
        say("WARNING: falling back to UNTRAINED demo weights: the model will not really stylize")
        write_demo_weights(demo_directory)
        return demo_directory
