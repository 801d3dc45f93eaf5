"""A real studio on loopback (uvicorn in a thread, on a free port) over a store, and a real Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines.config import PipelineConfig, local_config

TOKEN = "test-token-0123456789"
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-output" / "studio"


class Studio:
    """A running studio: its base URL and store."""

    def __init__(self, store: Path, config: PipelineConfig):
        import uvicorn

        from pipelines.studio.app import create_app

        self.store, self.config = store, config
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(store, config, TOKEN), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)

    def get(self, path: str, token: bool = True, headers: dict | None = None) -> tuple[int, str]:
        """GET a path (with the token's cookie unless ``token`` is False); (status, body)."""
        request = urllib.request.Request(self.url + path, headers={**({"Cookie": f"studio_token={TOKEN}"} if token
                                                                      else {}), **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def post(studio: Studio, path: str, body: dict | bytes, token_header: bool = True, cookie: bool = True
         ) -> tuple[int, dict]:
    """POST a JSON body (or these bytes) to a path; (status, the answer's JSON, or {"text": ...})."""
    headers = {"Content-Type": "application/json", **({"Cookie": f"studio_token={TOKEN}"} if cookie else {}),
               **({"X-Studio-Token": TOKEN} if token_header else {})}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(studio.url + path, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        return exc.code, json.loads(text) if text.startswith("{") else {"text": text}


def wait_until_ended(studio: Studio, execution_id: str):
    """The execution's record once its engine has ended (two minutes at most)."""
    from pipelines.local import executions

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        record = executions.load(studio.store, execution_id)
        if record.status != "Executing" and not executions.ExecutionLock(studio.store, execution_id).is_held_elsewhere():
            return record
        time.sleep(0.1)
    raise AssertionError(f"{execution_id} did not end")


@pytest.fixture
def start_studio():
    """Start studios over stores; each is stopped after the test."""
    started: list[Studio] = []

    def start(store: Path, **settings) -> Studio:
        store.mkdir(parents=True, exist_ok=True)
        settings.setdefault("mlflow_tracking_uri", "off")
        studio = Studio(store, local_config(PipelineConfig(**settings)))
        started.append(studio)
        return studio

    yield start
    for studio in started:
        studio.stop()


def chromium_path() -> str | None:
    return next((path for path in CHROMIUM if os.path.exists(path)), shutil.which("chromium"))


@pytest.fixture(scope="module")
def browser():
    """Chromium from the distribution, driven by Playwright; under CI=true it must be there."""
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if path is None or sync_playwright is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true: the studio's browser tests need Chromium (apt-get install chromium) and Playwright")
        pytest.skip("Chromium or Playwright is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, request):
    """A fresh browser page (1280 px wide) that fails the test on any script error it reports."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.set_default_timeout(30_000)
    yield opened
    context.close()
    assert not errors, f"the page raised script errors: {errors}"


def screenshot(page, name: str) -> Path:
    """Keep a screenshot of the page, at its width, in test-output/studio/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{page.viewport_size['width']}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def run_demo(store: Path, lambdas, definition: dict | None = None, name: str | None = None, **parameters) -> str:
    """Run the demo pipeline (or ``definition``, under ``name``) to its end in this process (as
    `python -m pipelines.run --definition` does); returns the execution id."""
    from pipelines.lead_scoring import BuiltPipeline
    from pipelines.local.target import LocalTarget
    from pipelines.progress import Progress
    from tests.pipelines.studio import demo

    config = local_config(PipelineConfig(mlflow_tracking_uri="off", local_lambdas=lambdas))
    built = BuiltPipeline(None, json.dumps(definition or demo.definition()), (), "", name or demo.NAME)
    with Progress("demo", stream=open(os.devnull, "w"), live=False) as progress:
        return LocalTarget(config, store=store).run(built, parameters, progress).execution_id


@pytest.fixture
def ran(tmp_path, start_studio, demo_lambdas):
    """A store with two executions of the demo (one succeeded, one failed), and a studio over it."""
    store = tmp_path / "store"
    succeeded = run_demo(store, demo_lambdas)
    failed = run_demo(store, demo_lambdas, Rows=5)
    return start_studio(store, local_lambdas=demo_lambdas), succeeded, failed


@pytest.fixture
def demo_lambdas(tmp_path):
    """The demo's handlers written out; its ``local_lambdas``."""
    from tests.pipelines.studio import demo

    return demo.write(tmp_path / "demo")[1]
