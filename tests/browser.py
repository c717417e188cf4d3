"""A page opened in headless Chromium, asked questions through the DevTools protocol.

Chromium speaks the protocol over a pipe (``--remote-debugging-pipe``: it reads commands on
fd 3 and writes replies on fd 4, NUL-separated JSON), so no WebSocket client and no driver
package is needed. Debian's package is ``chromium``; :func:`chromium` is None where it is not
installed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

INSTALL_HINT = "install Debian's chromium package (sudo apt-get install chromium) to run it"


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


def evaluate_on_page(page: Path, expression: str, screenshot: Path | None = None) -> Any:
    """Open ``page`` (a local file), wait for its load to complete, and return the value of the
    JavaScript ``expression`` in it; optionally save a full-page PNG screenshot."""
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    # Chromium's helper processes may still write to the profile as it is removed.
    with tempfile.TemporaryDirectory(
        prefix="ganorch-chromium-", ignore_cleanup_errors=True
    ) as profile:
        browser = subprocess.Popen(
            [
                chromium(),
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1200,900",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(3, 4),  # kept open in the child, where _onto_3_and_4 put the pipes
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: _onto_3_and_4(to_browser_r, from_browser_w),
            start_new_session=True,  # its helper processes go with it
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        session = _Session(os.fdopen(to_browser_w, "wb"), os.fdopen(from_browser_r, "rb"))
        try:
            url = page.resolve().as_uri()
            target = session.call("Target.createTarget", url=url)["targetId"]
            sid = session.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            deadline = time.monotonic() + 60
            # A new tab is a complete about:blank until it has navigated: wait for the page.
            loaded = "[location.href, document.readyState]"
            while session.evaluate(sid, loaded) != [url, "complete"]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{page} did not finish loading within 60 s")
                time.sleep(0.1)
            value = session.evaluate(sid, expression)
            if screenshot is not None:
                shot = session.call(
                    "Page.captureScreenshot", sid, format="png", captureBeyondViewport=True
                )
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            return value
        finally:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()


def _onto_3_and_4(commands: int, replies: int) -> None:
    """In the child: the pipe ends become fds 3 and 4 (copied above 10 first, so that neither
    is overwritten by the other's move)."""
    import fcntl

    commands, replies = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands, replies))
    os.dup2(commands, 3)
    os.dup2(replies, 4)


class _Session:
    def __init__(self, write, read) -> None:
        self.write, self.read, self.next_id, self.buffer = write, read, 0, b""

    def call(self, method: str, session_id: str | None = None, **params: Any) -> dict:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session_id:
            message["sessionId"] = session_id
        self.write.write(json.dumps(message).encode() + b"\0")
        self.write.flush()
        while True:
            reply = self._message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, session_id: str, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", session_id, expression=expression, returnByValue=True
        )
        return result["result"].get("value")

    def _message(self) -> dict:
        while b"\0" not in self.buffer:
            chunk = os.read(self.read.fileno(), 1 << 16)
            if not chunk:
                raise ConnectionError("chromium closed the DevTools pipe")
            self.buffer += chunk
        text, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(text)
