"""`sanet weights fetch` against a local stand-in for Yandex.Disk's public API."""

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tqdm import tqdm

from sanet import SANetError
from sanet.cli import main
from sanet.fetch import RELEASE_LINKS, fetch_release

KIND_BY_LINK = {link: kind for kind, link in RELEASE_LINKS.items()}


class Disk(ThreadingHTTPServer):
    """Serves metadata, download addresses and files; `mode` breaks it on purpose."""

    def __init__(self, files):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files = files  # kind -> (name, bytes)
        self.mode = "ok"
        self.downloads = 0

    @property
    def api(self):
        return f"http://127.0.0.1:{self.server_address[1]}/v1/disk/public/resources"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body, length=None):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        disk: Disk = self.server
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if disk.mode == "404":
            return self.send(404, b'{"error": "DiskNotFoundError"}')
        if url.path.startswith("/v1/disk/public/resources"):
            name, data = disk.files[KIND_BY_LINK[query["public_key"][0]]]
            if url.path.endswith("/download"):
                answer = {"href": f"http://127.0.0.1:{disk.server_address[1]}/files/{name}"}
            else:
                answer = {
                    "name": disk.mode if disk.mode.startswith("../") else name,
                    "size": len(data),
                }
            return self.send(200, json.dumps(answer).encode())
        name = url.path.rsplit("/", 1)[-1]
        data = next(d for n, d in disk.files.values() if n == name)
        disk.downloads += 1
        if disk.mode == "truncated":
            return self.send(200, data[: len(data) // 3], length=len(data))
        return self.send(200, data)


@pytest.fixture
def disk(release):
    directory, _ = release
    files = {
        kind: (path.name, path.read_bytes())
        for kind, path in (
            ("vgg", directory / "vgg_normalised.pth"),
            ("decoder", directory / "decoder_iter_500000.pth"),
            ("transformer", directory / "transformer_iter_500000.pth"),
        )
    }
    server = Disk(files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_fetch_downloads_validates_and_skips_present_files(disk, tmp_path, capsys):
    target = tmp_path / "weights"
    assert main(["weights", "fetch", str(target), "--api", disk.api]) == 0
    out, err = capsys.readouterr()
    assert "ok: iteration 500000" in out
    assert "B/s" in err  # the progress bar
    assert sorted(p.name for p in target.iterdir()) == sorted(n for n, _ in disk.files.values())
    for name, data in disk.files.values():
        assert (target / name).read_bytes() == data
    assert main(["weights", "fetch", str(target), "--api", disk.api]) == 0
    assert capsys.readouterr().out.count("already present") == 3
    assert disk.downloads == 3


def test_damaged_local_file_is_fetched_again(disk, tmp_path):
    fetch_release(tmp_path, disk.api)
    name = disk.files["decoder"][0]
    (tmp_path / name).write_bytes(b"x" * len(disk.files["decoder"][1]))
    fetch_release(tmp_path, disk.api)
    assert (tmp_path / name).read_bytes() == disk.files["decoder"][1]


def test_http_error(disk, tmp_path):
    disk.mode = "404"
    with pytest.raises(SANetError, match="HTTP 404"):
        fetch_release(tmp_path, disk.api)
    assert list(tmp_path.iterdir()) == []


def test_truncated_transfer_leaves_nothing(disk, tmp_path):
    disk.mode = "truncated"
    with pytest.raises(SANetError, match=r"incomplete|failed"):
        fetch_release(tmp_path, disk.api)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_nothing(disk, tmp_path, monkeypatch):
    class Interrupted(tqdm):
        def update(self, n=1):
            raise KeyboardInterrupt

    monkeypatch.setattr("sanet.fetch.tqdm", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch_release(tmp_path, disk.api)
    assert list(tmp_path.iterdir()) == []


def test_server_cannot_choose_the_path(disk, tmp_path):
    disk.mode = "../../escape.pth"
    with pytest.raises(SANetError, match="unexpected file name"):
        fetch_release(tmp_path / "w", disk.api)
    assert not (tmp_path / "escape.pth").exists()


def test_no_network_is_one_line(tmp_path, capsys):
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    code = main(["weights", "fetch", str(tmp_path), "--api", "http://127.0.0.1:9/v1"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "cannot reach 127.0.0.1:9" in err
