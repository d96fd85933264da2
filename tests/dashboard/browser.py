"""Headless Chromium (Debian's ``chromium``) for page tests: DOM dumps and screenshots."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "chromium is not installed: scripts/test.sh installs Debian's 'chromium' package"
    )


def _run(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        )


def dump_dom(page: Path) -> str:
    """The DOM as Chromium built it from the page."""
    return _run(page, "--dump-dom").stdout


def screenshot(page: Path, out: Path, size: str = "1400,1800") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(page, f"--screenshot={out}", f"--window-size={size}")
    return out
