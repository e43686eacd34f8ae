"""How long a page of the Dagster UI takes to show what it is for, in headless Chromium.

    python benchmarks/ui_timing.py URL --expect TEXT [--expect TEXT ...] [--timeout S]

Starts ``/usr/bin/chromium`` headless with a DevTools port, opens ``URL`` in a fresh
profile, and polls the page's visible text (``document.body.innerText``) every 100 ms
until every ``--expect`` text is on it: the page is then interactive for a user
looking for those. Prints the seconds from navigation to that moment (and to the
``load`` event), as one JSON object. Wall-clock time, not Chromium's virtual time.
Exits 1 when the texts do not all show within ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websockets

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--disable-component-update", "--disable-sync",
         "--window-size=1600,1000"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--expect", action="append", required=True,
                   help="text the page shows once it is usable (repeatable)")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--port", type=int, default=9333, help="DevTools port")
    p.add_argument("--screenshot", type=Path, help="save a PNG of the page when ready")
    return p.parse_args(argv)


def devtools_page(port: int, deadline: float) -> str:
    """The WebSocket URL of the browser's first page target."""
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                targets = json.load(r)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("Chromium's DevTools did not answer")
        time.sleep(0.1)


class Page:
    """A minimal DevTools client: commands by id, events ignored but ``load``."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.next_id = 0
        self.loaded_at: float | None = None

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        wanted = self.next_id
        await self.socket.send(json.dumps({"id": wanted, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.recv())
            if message.get("method") == "Page.loadEventFired" and self.loaded_at is None:
                self.loaded_at = time.monotonic()
            if message.get("id") == wanted:
                return dict(message.get("result", {}))


async def measure(args: argparse.Namespace, ws_url: str) -> dict[str, Any]:
    async with websockets.connect(ws_url, max_size=None) as socket:
        page = Page(socket)
        await page.call("Page.enable")
        started = time.monotonic()
        await page.call("Page.navigate", url=args.url)
        text = ""
        while time.monotonic() - started < args.timeout:
            result = await page.call("Runtime.evaluate",
                                     expression="document.body ? document.body.innerText : ''",
                                     returnByValue=True)
            text = str(result.get("result", {}).get("value") or "")
            if all(expected in text for expected in args.expect):
                ready = time.monotonic() - started
                if args.screenshot:
                    shot = await page.call("Page.captureScreenshot", format="png")
                    args.screenshot.write_bytes(base64.b64decode(shot["data"]))
                return {"url": args.url, "ready_s": round(ready, 2),
                        "load_event_s": (round(page.loaded_at - started, 2)
                                         if page.loaded_at else None),
                        "expected": args.expect}
            await asyncio.sleep(0.1)
        missing = [e for e in args.expect if e not in text]
        return {"url": args.url, "ready_s": None, "missing": missing,
                "text_tail": text[-300:]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile = Path(tempfile.mkdtemp(prefix="ui-timing-"))
    browser = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--remote-debugging-port={args.port}",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ws_url = devtools_page(args.port, time.monotonic() + 30)
        figures = asyncio.run(measure(args, ws_url))
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(figures))
    return 0 if figures.get("ready_s") is not None else 1


if __name__ == "__main__":
    sys.exit(main())
