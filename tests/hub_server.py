"""A tiny stand-in for the Hugging Face hub on 127.0.0.1, for download tests.

It serves repos in the hub's HTTP layout:

* ``GET /api/models/<org>/<name>/revision/<rev>?blobs=true`` → ``{"sha", "siblings"}`` with
  each file's size, git blob id and, for ``*.safetensors``, an ``lfs`` entry with sha256;
* ``GET /<org>/<name>/resolve/<commit-or-rev>/<file>`` → the bytes, with ``ETag``,
  ``X-Repo-Commit``, ``Content-Length``, ``Accept-Ranges`` and ``Range`` support (206).

Knobs for failure tests: ``cut[name] = n`` sends only the first ``n`` bytes of a file (with
the full ``Content-Length``, then closes the connection); ``delay`` sleeps between 16 kB
writes (a slow line); ``ignore_range`` answers 200 with the whole file; ``redirect_to``
(another FakeHub) answers file requests with a 302 to it, as the hub does to its CDN. Every request is
logged in ``requests`` and ``range_requests`` counts the ones with a ``Range`` header.

Use the ``hub_server`` fixture: it points ``HF_ENDPOINT`` at the server, ``HF_HUB_CACHE`` at
a fresh folder in ``tmp_path`` and clears ``HF_HUB_OFFLINE``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    commit: str
    files: dict[str, bytes]
    revisions: dict[str, str] = field(default_factory=dict)  # name → commit


class FakeHub:
    """State of the fake hub (repos, knobs, request log)."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.cut: dict[str, int] = {}
        self.delay = 0.0
        self.ignore_range = False
        self.redirect_to: FakeHub | None = None
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def range_requests(self) -> int:
        return sum(1 for _, h in self.requests if "Range" in h)

    def file_requests(self, name: str, repo: str | None = None) -> list[dict[str, str]]:
        """Headers of the requests for file ``name`` (of ``repo``, or any)."""
        return [
            h
            for p, h in self.requests
            if "/resolve/" in p
            and p.endswith("/" + name)
            and (repo is None or p.startswith(f"/{repo}/"))
        ]

    def add_folder(
        self,
        repo_id: str,
        folder: Path,
        *,
        extra: dict[str, bytes] | None = None,
        revisions: dict[str, str] | None = None,
    ) -> Repo:
        files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
        files.update(extra or {})
        commit = hashlib.sha1(repo_id.encode() + b"".join(files.values())).hexdigest()
        repo = Repo(commit, files, {"main": commit, **(revisions or {})})
        self.repos[repo_id] = repo
        return repo

    def siblings(self, repo: Repo) -> list[dict]:
        out = []
        for name, data in repo.files.items():
            s = {"rfilename": name, "size": len(data), "blobId": git_blob_id(data)}
            if name.endswith(".safetensors"):
                s["lfs"] = {
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "size": len(data),
                    "pointerSize": 134,
                }
            out.append(s)
        return out


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send_json(self, code: int, obj: dict, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            path = urllib.parse.urlsplit(self.path).path
            with hub.lock:
                hub.requests.append((path, dict(self.headers)))
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path)
            if m:
                repo = hub.repos.get(m.group(1))
                if repo is None:
                    return self._send_json(
                        404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"}
                    )
                rev = urllib.parse.unquote(m.group(2))
                commit = repo.revisions.get(rev, rev if rev == repo.commit else None)
                if commit is None:
                    return self._send_json(
                        404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"}
                    )
                return self._send_json(
                    200, {"id": m.group(1), "sha": commit, "siblings": hub.siblings(repo)}
                )
            if hub.redirect_to is not None and "/resolve/" in path:  # weights come from a CDN
                self.send_response(302)
                self.send_header("Location", hub.redirect_to.url + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            repo = hub.repos.get(m.group(1)) if m else None
            name = urllib.parse.unquote(m.group(3)) if m else ""
            if repo is None or name not in repo.files:
                return self._send_json(
                    404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"}
                )
            data = repo.files[name]
            start = 0
            rng = self.headers.get("Range")
            if rng and not hub.ignore_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            self.send_response(206 if start else 200)
            etag = (
                hashlib.sha256(data).hexdigest()
                if name.endswith(".safetensors")
                else git_blob_id(data)
            )
            self.send_header("ETag", f'"{etag}"')
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            end = min(len(data), hub.cut.get(name, len(data)))
            pos = start
            try:
                while pos < end:
                    step = min(16384, end - pos)
                    self.wfile.write(data[pos : pos + step])
                    self.wfile.flush()
                    pos += step
                    if hub.delay:
                        time.sleep(hub.delay)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return
            if end < len(data):  # cut short: close without the rest
                self.close_connection = True

    return Handler


def start_fake_hub() -> FakeHub:
    hub = FakeHub()
    hub.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.server.daemon_threads = True
    threading.Thread(target=hub.server.serve_forever, name="fake-hub", daemon=True).start()
    return hub


@pytest.fixture
def hub_server(tmp_path, monkeypatch):
    """A fake hub on 127.0.0.1 with ``HF_ENDPOINT`` / ``HF_HUB_CACHE`` pointing at it."""
    hub = start_fake_hub()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield hub
    assert hub.server is not None
    hub.server.shutdown()
    hub.server.server_close()
