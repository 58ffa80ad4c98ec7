"""`fastspec serve` as a command: a subprocess on 127.0.0.1 and a free port with --log-format json
serves a completion, writes one JSON line per request, and stops on SIGTERM."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from fastspec.server.main import free_port  # noqa: E402
from test_server import http_request, post, write_model  # noqa: E402


def test_serve_help_lists_the_options():
    out = subprocess.run([sys.executable, "-m", "fastspec", "serve", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0
    for opt in ("--model", "--draft", "--host", "--port", "--parallel", "--context", "--threads", "--log-format",
                "--max-queue", "--prefix-cache-mb", "--tree-nodes", "--lookup-min"):
        assert opt in out.stdout


@pytest.mark.slow
def test_serve_subprocess_json_logs(tmp_path):
    path = write_model(tmp_path / "cli.gguf", n_layers=2, hidden=64)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fastspec", "serve", "--model", str(path), "--port", str(port),
                             "--parallel", "2", "--context", "256", "--threads", "1", "--max-queue", "4",
                             "--prefix-cache-mb", "8", "--draft", "ngram", "--log-format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if http_request(url, "GET", "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        status, _, body = post(url, "/v1/completions", {"prompt": "sea", "max_tokens": 7, "temperature": 0})
        assert status == 200 and body["usage"]["completion_tokens"] == 7
        assert post(url, "/v1/completions", {"prompt": "sea", "temperature": 3})[0] == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, -signal.SIGTERM), err  # uvicorn re-raises the signal it caught
    lines = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert len(lines) == len(err.splitlines())  # every line is JSON, uvicorn's too
    reqs = [x for x in lines if x.get("event") == "request"]
    assert [r["status"] for r in reqs] == [200, 400]
    assert reqs[0]["completion_tokens"] == 7 and "tok_per_s" in reqs[0] and "acceptance" in reqs[0]
    assert "prefix_cached_tokens" in reqs[0]
