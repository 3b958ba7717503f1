"""A headless Chromium driven over the DevTools protocol, for tests that open a page as a person
would: Debian's chromium (no browser download), a fresh profile, no network use of its own, and a
small client over websocket-client (requirements.txt) instead of a WebDriver stack.

    with Chromium.start(tmp_path) as browser:
        browser.open(Path("report/index.html"))
        rows = browser.evaluate("document.querySelectorAll('tr').length")
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",  # any free port, written to DevToolsActivePort in the profile
    "--window-size=1400,1000",
)
NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    return next((path for name in NAMES if (path := shutil.which(name))), None)


class Chromium:
    """One headless browser process and a DevTools connection to its page."""

    def __init__(self, process: subprocess.Popen, socket: Any) -> None:
        self.process, self.socket = process, socket
        self.ids = itertools.count(1)

    @classmethod
    def start(cls, tmp: Path, timeout: float = 60.0) -> Chromium:
        import websocket

        binary = find_chromium()
        if binary is None:
            raise FileNotFoundError("no chromium on PATH")
        profile = tmp / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "chromium.log").open("wb"),
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log = (tmp / "chromium.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"chromium did not open its DevTools port:\n{log}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as answer:
            targets = json.loads(answer.read())
        page = next(t for t in targets if t.get("type") == "page")
        socket = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True
        )
        return cls(process, socket)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command and its result (events in between are skipped)."""
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, page: Path, timeout: float = 60.0) -> None:
        """Load a file and wait until it and its images have loaded."""
        self.call("Page.enable")
        self.call("Page.navigate", url=page.resolve().as_uri())
        deadline = time.monotonic() + timeout
        while self.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{page} did not finish loading in {timeout} s")
            time.sleep(0.1)

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the middle of the element."""
        box = self.evaluate(
            f"(function(){{var e=document.querySelector({json.dumps(selector)});e.scrollIntoView();"
            f"var r=e.getBoundingClientRect();return [r.left+r.width/2,r.top+r.height/2];}})()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path
