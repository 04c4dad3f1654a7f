"""/docs renders offline in headless Chromium and its inline script makes a real prediction."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "runtime"))
from runtime_testkit import Server, make_digits_model, request  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_docs_page_is_self_contained(tmp_path: Path) -> None:
    make_digits_model(tmp_path / "digits.joblib")
    with Server(["--model", str(tmp_path / "digits.joblib")], tmp_path) as server:
        server.wait_ready()
        status, headers, page = request(server.port, "GET", "/docs")
        assert status == 200 and headers["content-type"].startswith("text/html")
        # No CDN: every src/href is relative (the page must work with no internet).
        assert not re.findall(rb'(?:src|href)="(?:https?:)?//', page)
        assert re.search(rb'<label for="in-input">input <small>[^<]*shape \[64\][^<]*</small>', page), page[:3000]


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install -y chromium)")
def test_docs_page_makes_a_prediction_in_headless_chromium(tmp_path: Path) -> None:
    make_digits_model(tmp_path / "digits.joblib")
    with Server(["--model", str(tmp_path / "digits.joblib")], tmp_path) as server:
        server.wait_ready()
        profile = tmp_path / "profile"
        dom = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
             f"http://127.0.0.1:{server.port}/docs?try=1"],
            capture_output=True, text=True, timeout=60, check=True).stdout
        # The inline script POSTed the example row to /predict and wrote the answer into #result.
        result = re.search(r'<pre id="result"[^>]*>(.*?)</pre>', dom, re.S)
        assert result is not None, dom[:2000]
        assert 'data-status="200"' in result.group(0)
        assert '{"output":' in result.group(1).replace("&quot;", '"')
        metrics = request(server.port, "GET", "/metrics")[2].decode()
        assert 'dockyard_requests_total{route="/predict",status="200"} 1' in metrics


def test_docs_page_shows_a_predictors_tensor_shapes_not_only_json_types(tmp_path: Path) -> None:
    (tmp_path / "shaped.py").write_text(
        "class Predictor:\n"
        "    input_shapes = {'pixels': (8, 8)}\n"
        "    def setup(self):\n        pass\n"
        "    def predict(self, pixels: list, scale: float = 1.0) -> float:\n"
        "        return scale\n")
    with Server(["--predictor", "shaped:Predictor", "--app-dir", str(tmp_path)], tmp_path) as server:
        server.wait_ready()
        page = request(server.port, "GET", "/docs")[2].decode()
    label = re.search(r'<label for="in-pixels">pixels <small>([^<]*)</small>', page)
    assert label is not None, page[:3000]
    assert "shape [8, 8]" in label.group(1), label.group(1)
