"""npm projects of the client tests: installed from their committed lock files with `npm ci`."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def npm_ci(project: Path) -> None:
    """Install `project`'s lock file unless this exact lock is installed already (`make test` runs
    the same `npm ci` first; this covers a test run on its own)."""
    lock = (project / "package-lock.json").read_bytes()
    stamp = project / "node_modules" / ".streamchat-lock"
    digest = hashlib.sha256(lock).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    npm = shutil.which("npm")
    assert npm, "npm (Node.js 20 or newer) is needed for the client tests"
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=project, capture_output=True,
                            text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    stamp.write_text(digest)


def quiet_env(base_url: str, api_key: str, home: Path | None = None) -> dict[str, str]:
    """An environment that points a client at `base_url` and keeps it from reaching anything else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE", "OTEL_"))}
    env.update({
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "NO_COLOR": "1",
        "HOME": str(home or Path(tempfile.mkdtemp(prefix="streamchat-client-home-"))),
    })  # fmt: skip
    return env
