"""Open a page in Debian's headless Chromium: the DOM after its scripts ran, and a
screenshot. No network: flags turn off every background connection."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-extensions",
    "--virtual-time-budget=10000",
)


@dataclass(frozen=True)
class Rendered:
    dom: str
    screenshot: Path


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("chromium is not installed (scripts/test installs it)")
    return path


def render(page: Path, workdir: Path, *, width: int = 1280, height: int = 3000) -> Rendered:
    """Load `page`, let its scripts run, and return the serialised DOM and a screenshot."""
    profile = workdir / "chromium-profile"
    shot = workdir / "screenshot.png"
    result = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={shot}",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return Rendered(dom=result.stdout.decode(), screenshot=shot)
