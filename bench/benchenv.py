"""Shared set-up of the benchmark scripts: a venv with the reference
implementations, re-entered by the script, and the CPU model for reports."""

import os
import platform
import subprocess
import sys
from pathlib import Path

VENV = Path(os.environ.get("FRANKLY_BENCH_VENV") or Path.home() / ".cache/frankly/bench-venv")


def ensure_venv(script: str, requirements: list[str], probe: str, build_deps: list[str] | None = None) -> None:
    """Create or complete the venv, then re-execute `script` inside it, single-threaded.

    `probe` is Python code that succeeds once the requirements are installed.
    If a plain install fails and `build_deps` is given, they are installed first
    and the requirements are built without build isolation.
    """
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = VENV / "bin/python"
    if not py.exists():
        print(f"creating venv {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if subprocess.run([py, "-c", probe], capture_output=True).returncode != 0:
        print(f"installing {' '.join(requirements)} into {VENV}", file=sys.stderr)
        pip = [str(py), "-m", "pip", "install", "--quiet"]
        if subprocess.run(pip + requirements).returncode != 0:
            if not build_deps:
                sys.exit("pip install failed")
            subprocess.run(pip + build_deps, check=True)
            subprocess.run(pip + ["--no-build-isolation"] + requirements, check=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.execv(py, [str(py), str(Path(script).resolve()), *sys.argv[1:]])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
