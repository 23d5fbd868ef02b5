#!/usr/bin/env python3
"""Benchmark HMA's lookup API: frankly against Meta's HMA (OpenMediaMatch), same hashes.

What it measures
  `GET /m/lookup?signal_type=pdq&signal=<hex>` over HTTP on loopback, served by

  * frankly: `frankly serve` with `match_api = true` (SQLite in a fresh data
    directory; the index lives in memory, loaded before the server listens);
  * HMA: Meta's Hasher-Matcher-Actioner 1.x (Flask "OpenMediaMatch"), from the
    ThreatExchange mirror at --threatexchange, extracted at run time into
    ~/.cache/frankly/bench/hma-src/<commit> (none of it is copied into this
    repository), run by gunicorn with --hma-workers sync workers on a
    throwaway PostgreSQL 15 cluster in a temporary directory, as HMA's
    Dockerfile runs it (jemalloc preloaded when libjemalloc2 is installed).

  Both hold the same --entries random PDQ hashes (fixed --seed) in one bank,
  BENCH, and get the same queries: --queries hashes, half of them banked
  hashes with 1 to 16 bits flipped, half random. The load generator is wrk
  (apt-get install wrk) with a Lua script cycling through the query list:
  a warm-up, then --duration seconds at --connections connections
  (saturation), then --duration seconds at 1 connection (latency). The
  servers run one after the other, never together, with nothing of the other
  left running. Before the load, every query is sent once and the answers
  are compared: both servers match exactly at PDQ's threshold 31, so they
  must return the same distances; every planted query must be found.

  Loading, each side its fastest legitimate way:
  * frankly: `frankly serve admin import-signals --bank BENCH --signal-type
    pdq --file HASHES` (falls back to the curation API, `POST /c/banks` and
    `POST /c/bank/BENCH/signal`, for small --entries when the command is
    missing), then the server start (index built from the database).
  * HMA: its migrations (`flask db upgrade`, as scripts/db-migrate.sh does),
    the bank row and one `bank_content` + `content_signal` row per hash by
    SQL COPY, exactly the rows HMA's `bank_add_content` writes
    (disable_until_ts = 1, create_time = now()), then HMA's own index build
    (`flask build_indices`, the function its TASK_INDEXER background task
    runs; the background task itself must not run in several gunicorn
    workers, HMA's app.py says), then gunicorn, whose workers each load the
    built index from PostgreSQL (TASK_INDEX_CACHE); measuring starts once
    /m/index/status reports all N hashes and every worker logged the load.

  HMA's processes (indexer, gunicorn tree) are watched: if their resident
  set exceeds --hma-max-rss-gb, or the machine's available memory falls
  below --min-free-gb, or the build takes longer than --hma-timeout, they are
  killed and the run reports what was measured up to then (time, peak RSS,
  error) and goes on with frankly alone.

How to run (from the repo root)
  python3 bench/hma_lookup.py [--entries 10000000] [--duration 30]
      [--connections 32] [--quick] [--only frankly|hma] [--hma-workers 2]
      [--json results.json]

  --quick is --entries 20000 --duration 5 --queries 200. The frankly binary
  is built with `cargo build --release -p frankly-cli` (CARGO_TARGET_DIR is
  honoured; --frankly-bin skips the build). HMA's Python dependencies are
  pip-installed (pinned below) into the venv ${FRANKLY_HMA_VENV:-
  ~/.cache/frankly/bench/hma-venv}, which the script re-enters; the hash file
  is cached in ~/.cache/frankly/bench/hma-lookup. Needs wrk, git and
  PostgreSQL 15 binaries (/usr/lib/postgresql/15/bin, or --pg-bin); as root,
  PostgreSQL runs as the `postgres` user. Everything the script starts is
  stopped at the end, also on errors and Ctrl-C. Exits 1 if an answer is
  wrong (a planted hash not found by frankly, different distances, HTTP errors).
"""

import argparse
import http.client
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchenv
from benchenv import cpu_model, ensure_venv

REPO = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache/frankly/bench"
HMA_VENV = Path(os.environ.get("FRANKLY_HMA_VENV") or CACHE / "hma-venv")
THREATEXCHANGE = Path("/work/.mirror/facebook+ThreatExchange/repo")
# HMA's pyproject dependencies (flask, flask_sqlalchemy, flask_migrate,
# psycopg2, requests, threatexchange, flask_apscheduler, python-dateutil,
# python-json-logger, flask-openapi3[swagger]) and its `prod` extra
# (gunicorn), pinned; psycopg2-binary is the same module as psycopg2 without
# a libpq build. SQLAlchemy 2.1 breaks HMA 1.1.7, hence < 2.1.
HMA_REQUIREMENTS = [
    "Flask==3.1.3", "Flask-SQLAlchemy==3.1.1", "SQLAlchemy==2.0.58", "Flask-Migrate==4.1.0",
    "alembic==1.20.1", "psycopg2-binary==2.9.13", "requests==2.34.2", "threatexchange==1.2.17",
    "faiss-cpu==1.15.1", "numpy==2.4.6", "Flask-APScheduler==1.13.1", "APScheduler==3.11.3",
    "python-dateutil==4.0.0", "python-json-logger==4.2.0", "flask-openapi3[swagger]==4.3.2",
    "pydantic==2.14.4", "Werkzeug==3.1.9", "gunicorn==27.0.1",
]
HMA_PROBE = (
    "import importlib.metadata as m, sys\n"
    f"pins = {[r.replace('[swagger]', '') for r in HMA_REQUIREMENTS]!r}\n"
    "sys.exit(any(m.version(p.split('==')[0]) != p.split('==')[1] for p in pins))"
)
JEMALLOC = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
BANK = "BENCH"
LOOKUP = "/m/lookup?signal_type=pdq&signal="
WRK_LUA = r"""
local paths, n = {}, 0
local counter = 0
id = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  for line in io.lines(args[1]) do
    n = n + 1
    paths[n] = line
  end
  i = (id * 7919) % n
end
function request()
  i = i % n + 1
  return wrk.format("GET", paths[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=10_000_000, help="PDQ hashes in the bank (default 10000000)")
    ap.add_argument("--queries", type=int, default=1000, help="distinct query hashes, half planted (default 1000)")
    ap.add_argument("--duration", type=int, default=30, help="seconds per measured wrk run (default 30)")
    ap.add_argument("--warmup", type=int, default=5, help="seconds of warm-up before measuring (default 5)")
    ap.add_argument("--connections", type=int, default=32, help="connections at saturation (default 32)")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1, to leave a core)")
    ap.add_argument("--quick", action="store_true", help="smoke run: --entries 20000 --duration 5 --queries 200")
    ap.add_argument("--only", choices=["frankly", "hma"], help="run one server only")
    ap.add_argument("--seed", type=int, default=1, help="data seed (default 1)")
    ap.add_argument("--hma-workers", type=int, default=2,
                    help="gunicorn sync workers for HMA (default 2: one a core; each holds its own index, about "
                         "7 GiB at 10M hashes)")
    ap.add_argument("--hma-timeout", type=int, default=5400, help="seconds allowed for HMA's load and index (default 5400)")
    ap.add_argument("--hma-max-rss-gb", type=float, default=17.0, help="kill HMA above this RSS (default 17)")
    ap.add_argument("--min-free-gb", type=float, default=1.5, help="kill HMA below this MemAvailable (default 1.5)")
    ap.add_argument("--threatexchange", type=Path, default=THREATEXCHANGE, help="ThreatExchange git dir (bare mirror)")
    ap.add_argument("--pg-bin", type=Path, default=Path("/usr/lib/postgresql/15/bin"))
    ap.add_argument("--frankly-bin", type=Path, help="use this frankly binary (skips cargo build)")
    ap.add_argument("--json", type=Path, help="also write machine-readable results here")
    args = ap.parse_args()
    if args.quick:
        args.entries, args.duration, args.queries, args.warmup = 20_000, 5, 200, 2
    return args


# ---------------------------------------------------------------- processes

STARTED: list[subprocess.Popen] = []
CLEANUPS: list = []


def spawn(argv, log: Path, **kw) -> subprocess.Popen:
    """Start a process in its own process group, output to `log`."""
    out = open(log, "ab")
    p = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, **kw)
    out.close()
    STARTED.append(p)
    return p


def stop(p: subprocess.Popen, sig=signal.SIGTERM, wait: float = 20) -> None:
    """Stop a process we started, and its process group (its workers)."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(p.pid, signal.SIGKILL)  # leftovers of the group
    except (ProcessLookupError, PermissionError):
        pass
    if p.poll() is None:
        p.wait(10)
    if p in STARTED:
        STARTED.remove(p)


def cleanup() -> None:
    while CLEANUPS:
        try:
            CLEANUPS.pop()()
        except Exception as e:  # keep cleaning
            print(f"cleanup: {e}", file=sys.stderr)
    for p in list(STARTED):
        stop(p, wait=5)


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_of(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> int:
    return sum(rss_of(p) for p in tree_pids(root))


def cpu_seconds(roots: list[int]) -> float:
    """User + system CPU of the process trees (with their reaped children)."""
    ticks = 0
    for root in roots:
        for pid in tree_pids(root):
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
            except (OSError, ValueError, IndexError):
                pass
    return ticks / os.sysconf("SC_CLK_TCK")


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 1 << 62


class Watch:
    """Samples a process tree's RSS; kills the group past the memory limits."""

    def __init__(self, p: subprocess.Popen, max_rss: float, min_free: float, reaped_by_caller: bool = False):
        self.p, self.max_rss, self.min_free = p, max_rss, min_free
        # A caller that reaps the child itself (wait4) must not have it reaped here.
        self.alive = (lambda: Path(f"/proc/{p.pid}").exists()) if reaped_by_caller else (lambda: p.poll() is None)
        self.peak, self.killed, self.t0 = 0, None, time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set() and self.alive():
            rss = tree_rss(self.p.pid)
            self.peak = max(self.peak, rss)
            free = mem_available()
            if rss > self.max_rss or free < self.min_free:
                self.killed = (f"killed by the benchmark after {time.time() - self.t0:.0f} s: RSS {gib(rss)} "
                               f"(limit {gib(self.max_rss)}), machine MemAvailable {gib(free)} "
                               f"(floor {gib(self.min_free)})")
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            self._stop.wait(0.5)

    def close(self):
        self._stop.set()
        self._thread.join()


def gib(n: float) -> str:
    return f"{n / (1 << 30):.2f} GiB"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_timed(argv, log: Path, watch_limits=None, timeout=None, **kw) -> dict:
    """Run to completion; wall time, exit status and the child's peak RSS (wait4)."""
    t0 = time.perf_counter()
    p = spawn(argv, log, **kw)
    watch = Watch(p, *watch_limits, reaped_by_caller=True) if watch_limits else None
    deadline = None if timeout is None else time.monotonic() + timeout
    timed_out = False
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if deadline and time.monotonic() > deadline:
            timed_out = True
            os.killpg(p.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(p.pid, 0)
            break
        time.sleep(0.2)
    p.returncode = os.waitstatus_to_exitcode(status)
    STARTED.remove(p)
    wall = time.perf_counter() - t0
    if watch:
        watch.close()
    res = {"wall_s": wall, "rc": p.returncode, "maxrss_bytes": usage.ru_maxrss * 1024}
    if watch:
        res["peak_tree_rss_bytes"] = watch.peak
        if watch.killed:
            res["error"] = watch.killed
    if timed_out:
        res["error"] = f"timed out after {timeout} s"
    return res


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------- HTTP

class Client:
    """A keep-alive HTTP/1.1 client for checks and loading (not for timing)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def request(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                if attempt:
                    raise
        raise AssertionError

    def json(self, method: str, path: str, body=None):
        status, data = self.request(method, path, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {data[:300]!r}")
        return json.loads(data)

    def close(self):
        self.conn.close()


def wait_http(port: int, p: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"server exited with {p.returncode}:\n{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"no server on port {port} after {timeout} s:\n{tail(log)}")


def index_size(client: Client) -> int:
    status, data = client.request("GET", "/m/index/status?signal_type=pdq")
    if status != 200:
        return -1
    return int(json.loads(data).get("pdq", {}).get("size", -1))


# ---------------------------------------------------------------- data

def hashes_file(n: int, seed: int) -> Path:
    """N random 256-bit hashes, 64 hex digits a line, cached."""
    path = CACHE / "hma-lookup" / f"pdq-{n}-seed{seed}.txt"
    if path.exists() and path.stat().st_size == 65 * n:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    t0 = time.perf_counter()
    with open(tmp, "w") as f:
        left = n
        while left:
            m = min(left, 1_000_000)
            hx = rnd.randbytes(32 * m).hex()
            f.write("\n".join(hx[i:i + 64] for i in range(0, 64 * m, 64)))
            f.write("\n")
            left -= m
    tmp.rename(path)
    print(f"wrote {n:,} hashes to {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def make_queries(path: Path, n: int, count: int, seed: int) -> list[dict]:
    """Half planted (a banked hash, 1 to 16 bits flipped), half random; alternating."""
    rnd = random.Random(seed + 1)
    picks = sorted(rnd.randrange(n) for _ in range((count + 1) // 2))
    wanted = {}
    with open(path, "rb") as f:
        for idx in picks:
            f.seek(65 * idx)
            wanted[idx] = f.read(64).decode()
    queries = []
    planted = [wanted[i] for i in picks]
    rnd.shuffle(planted)
    for q in range(count):
        if q % 2 == 0:
            h = int(planted[q // 2], 16)
            k = rnd.randint(1, 16)
            for bit in rnd.sample(range(256), k):
                h ^= 1 << bit
            queries.append({"hash": f"{h:064x}", "planted": True, "flipped": k})
        else:
            queries.append({"hash": rnd.randbytes(32).hex(), "planted": False, "flipped": None})
    return queries


def check_answers(client: Client, queries: list[dict]) -> list[dict]:
    """Send every query once; the sorted distances of the matches in BENCH."""
    out = []
    for q in queries:
        res = client.json("GET", LOOKUP + q["hash"])
        dists = sorted(int(m["distance"]) for m in res.get(BANK, []))
        out.append({"distances": dists, "found": bool(q["planted"] and dists and dists[0] <= q["flipped"])})
    return out


# ---------------------------------------------------------------- wrk

def run_wrk(port: int, paths_file: Path, lua: Path, connections: int, threads: int, seconds: int) -> dict:
    argv = ["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{seconds}s",
            "--timeout", "30s", "-s", str(lua), f"http://127.0.0.1:{port}", "--", str(paths_file)]
    out = subprocess.run(argv, capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    r = json.loads(line[len("WRK_JSON "):])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["errors"] = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    r["connections"], r["threads"], r["seconds"] = connections, min(threads, connections), seconds
    return r


def measure(name: str, port: int, args, work: Path, roots: list[int]) -> dict:
    """wrk runs; `roots` are the server's process trees, for its CPU time per request."""
    paths_file, lua = work / "paths.txt", work / "lookup.lua"
    print(f"{name}: warm-up {args.warmup} s, {args.duration} s at {args.connections} connections, "
          f"{args.duration} s at 1 connection", file=sys.stderr, flush=True)
    run_wrk(port, paths_file, lua, args.connections, args.wrk_threads, args.warmup)
    load0 = os.getloadavg()[0]
    runs = []
    for c, t in ((args.connections, args.wrk_threads), (1, 1)):
        cpu0 = cpu_seconds(roots)
        r = run_wrk(port, paths_file, lua, c, t, args.duration)
        r["server_cpu_s"] = cpu_seconds(roots) - cpu0
        r["server_cpu_ms_per_request"] = 1e3 * r["server_cpu_s"] / max(r["requests"], 1)
        runs.append(r)
    sat, one = runs
    # The 1-minute load average before and after, to show what else ran (its
    # own load adds about 1 at saturation).
    sat["loadavg_before"], one["loadavg_after"] = load0, os.getloadavg()[0]
    for r in (sat, one):
        print(f"  {name} c={r['connections']}: {r['rps']:.0f} req/s, p50 {r['p50_us'] / 1e3:.2f} ms, "
              f"p99 {r['p99_us'] / 1e3:.2f} ms, errors {r['errors']}, server CPU "
              f"{r['server_cpu_ms_per_request']:.3f} ms/request", file=sys.stderr, flush=True)
    return {"saturation": sat, "single": one}


# ---------------------------------------------------------------- frankly

def frankly_bin(args) -> Path:
    if args.frankly_bin:
        return args.frankly_bin
    cmd = ["cargo", "build", "--release", "-p", "frankly-cli"]
    print(f"building: {shlex.join(cmd)} (waits for the target dir's lock)", file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR") or "target")
    return (target if target.is_absolute() else REPO / target) / "release/frankly"


def run_frankly(args, hashes: Path, queries: list[dict], work: Path) -> dict:
    binary = frankly_bin(args)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    tree = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"], capture_output=True, text=True)
    version += f" (git {tree.stdout.strip() or '?'})"
    data, log = work / "frankly-data", work / "frankly.log"
    port = free_port()
    config = work / "frankly.toml"
    config.write_text(f'listen = "127.0.0.1:{port}"\ndata_dir = "{data}"\nmatch_api = true\n'
                      'match_api_open_scopes = ["match", "hash", "curate"]\n')
    res: dict = {"server": "frankly", "version": version, "entries": args.entries}
    admin_help = subprocess.run([binary, "serve", "admin", "--help"], capture_output=True, text=True).stdout
    importer = "import-signals" in admin_help
    if importer:
        argv = [binary, "serve", "admin", "import-signals", "--config", config, "--data-dir", data,
                "--bank", BANK, "--signal-type", "pdq", "--file", hashes]
        print(f"frankly: {shlex.join(map(str, argv))}", file=sys.stderr, flush=True)
        imp = run_timed(argv, work / "frankly-import.log")
        if imp["rc"] != 0:
            raise RuntimeError(f"import-signals failed:\n{tail(work / 'frankly-import.log')}")
        res["load"] = {"method": "frankly serve admin import-signals", **imp}
        print(f"  frankly import: {imp['wall_s']:.1f} s, peak RSS {gib(imp['maxrss_bytes'])}", file=sys.stderr)
    elif args.entries > 200_000:
        raise RuntimeError("this frankly has no `serve admin import-signals`; the HTTP fallback is for "
                           "--entries <= 200000")
    t0 = time.perf_counter()
    server = spawn([binary, "serve", "--config", config, "--data-dir", data, "--listen", f"127.0.0.1:{port}"], log)
    try:
        wait_http(port, server, 3600, log)
        client = Client(port)
        index_size(client)  # answers once the index is loaded
        res["start_s"] = time.perf_counter() - t0
        if not importer:
            t1 = time.perf_counter()
            client.json("POST", "/c/banks", {"name": BANK})
            with open(hashes) as f:
                for line in f:
                    client.json("POST", f"/c/bank/{BANK}/signal", {"pdq": line.strip()})
            res["load"] = {"method": "curation API (POST /c/bank/BENCH/signal), one keep-alive connection",
                           "wall_s": time.perf_counter() - t1}
        size = index_size(client)
        if size != args.entries:
            raise RuntimeError(f"frankly's index holds {size} pdq hashes, expected {args.entries}")
        res["rss_bytes"] = tree_rss(server.pid)
        print(f"  frankly: listening after {res['start_s']:.1f} s, index {size:,}, RSS {gib(res['rss_bytes'])}",
              file=sys.stderr, flush=True)
        res["answers"] = check_answers(client, queries)
        client.close()
        res["load_runs"] = measure("frankly", port, args, work, [server.pid])
        res["rss_after_bytes"] = tree_rss(server.pid)
    finally:
        stop(server, signal.SIGINT)
        shutil.rmtree(data, ignore_errors=True)
    return res


# ---------------------------------------------------------------- HMA

def hma_source(git_dir: Path) -> tuple[Path, str]:
    """Extract hasher-matcher-actioner at the mirror's HEAD into the cache."""
    if not git_dir.exists():
        raise RuntimeError(f"no ThreatExchange mirror at {git_dir}")
    commit = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    dest = CACHE / "hma-src" / commit
    root = dest / "hasher-matcher-actioner"
    if not (root / "src/OpenMediaMatch/app.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "--git-dir", git_dir, "archive", commit, "hasher-matcher-actioner"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout, check=True)
        archive.wait()
        if not (root / "src/OpenMediaMatch/app.py").exists():
            raise RuntimeError(f"git archive of {git_dir} gave no hasher-matcher-actioner/src")
    return root, commit


class Postgres:
    """A throwaway PostgreSQL cluster in a temporary directory."""

    def __init__(self, pg_bin: Path, work: Path):
        self.bin, self.dir, self.port = pg_bin, work / "pg", free_port()
        self.dir.mkdir()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(work, 0o755)
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.url = f"postgresql+psycopg2://hma@127.0.0.1:{self.port}/hma"
        self.dsn = f"host=127.0.0.1 port={self.port} user=hma dbname=hma"
        self.started = False

    def run(self, *argv, **kw):
        return subprocess.run(self.as_user + [str(a) for a in argv], check=True, capture_output=True, text=True, **kw)

    def start(self):
        self.run(self.bin / "initdb", "-D", self.data, "-U", "hma", "-A", "trust", "--no-sync", "-E", "UTF8")
        opts = (f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 -c shared_buffers=1GB "
                "-c max_wal_size=8GB -c maintenance_work_mem=512MB -c max_connections=200")
        self.run(self.bin / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-o", opts, "start")
        self.started = True
        CLEANUPS.append(self.stop)
        self.run(self.bin / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "hma", "hma")
        self.version = self.run(self.bin / "postgres", "--version").stdout.strip()

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self):
        if self.started:
            self.started = False
            subprocess.run(self.as_user + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                                           "stop"], capture_output=True)


class RowStream:
    """A file-like object COPY reads: one formatted row per hash line."""

    def __init__(self, path: Path, row):
        self.f, self.row, self.chunk, self.pos, self.id = open(path), row, "", 0, 0

    def read(self, size=-1):
        if self.pos >= len(self.chunk):
            lines = self.f.readlines(1 << 20)
            if not lines:
                self.f.close()
                return ""
            parts = []
            for line in lines:
                self.id += 1
                parts.append(self.row(self.id, line[:64]))
            self.chunk, self.pos = "".join(parts), 0
        end = len(self.chunk) if size is None or size < 0 else self.pos + size
        out = self.chunk[self.pos:end]
        self.pos += len(out)
        return out

    readline = read


def hma_bulk_load(dsn: str, hashes: Path) -> dict:
    """HMA's rows by COPY: the bank, then per hash the rows bank_add_content writes."""
    import psycopg2

    t0 = time.perf_counter()
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("INSERT INTO bank (name, enabled_ratio) VALUES (%s, 1.0) RETURNING id", (BANK,))
        bank_id = cur.fetchone()[0]
        cur.copy_expert("COPY bank_content (id, bank_id, disable_until_ts) FROM STDIN",
                        RowStream(hashes, lambda i, h: f"{i}\t{bank_id}\t1\n"), size=1 << 20)
        t1 = time.perf_counter()
        cur.copy_expert("COPY content_signal (content_id, signal_type, signal_val) FROM STDIN",
                        RowStream(hashes, lambda i, h: f"{i}\tpdq\t{h}\n"), size=1 << 20)
        cur.execute("SELECT setval('bank_content_id_seq', (SELECT max(id) FROM bank_content))")
        t2 = time.perf_counter()
    conn.close()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE bank_content")
        cur.execute("VACUUM ANALYZE content_signal")
        cur.execute("SELECT pg_database_size('hma')")
        size = cur.fetchone()[0]
    conn.close()
    return {"method": "SQL COPY into bank_content and content_signal (HMA's schema)", "wall_s": time.perf_counter() - t0,
            "bank_content_s": t1 - t0, "content_signal_s": t2 - t1, "db_bytes": size}


def omm_config(path: Path, url: str) -> None:
    path.write_text(f'''# Written by frankly's bench/hma_lookup.py: a single instance with the matcher
# and curator roles, background index build off (run by `flask build_indices`),
# index cache on, as reference_omm_configs/ describe them.
from logging.config import dictConfig
from OpenMediaMatch.storage.postgres.impl import DefaultOMMStore

DATABASE_URI = "{url}"
PRODUCTION = True
ROLE_HASHER = False
ROLE_MATCHER = True
ROLE_CURATOR = True
UI_ENABLED = False
TASK_FETCHER = False
TASK_INDEXER = False
TASK_INDEX_CACHE = True
STORAGE_IFACE_INSTANCE = DefaultOMMStore()
dictConfig({{
    "version": 1,
    "formatters": {{"default": {{"format": "[%(asctime)s] pid=%(process)d %(levelname)s in %(module)s: %(message)s"}}}},
    "handlers": {{"wsgi": {{"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "default"}}}},
    "root": {{"level": "INFO", "handlers": ["wsgi"]}},
}})
''')


def run_hma(args, hashes: Path, queries: list[dict], work: Path) -> dict:
    root, commit = hma_source(args.threatexchange)
    version = (root / "version.txt").read_text().strip()
    res: dict = {"server": "hma", "version": f"OpenMediaMatch {version} (ThreatExchange {commit[:12]})",
                 "commit": commit, "entries": args.entries, "workers": args.hma_workers,
                 "pip": HMA_REQUIREMENTS, "jemalloc": JEMALLOC.exists()}
    src = root / "src"
    pg = Postgres(args.pg_bin, work)
    pg.start()
    res["postgres"] = pg.version
    config = work / "omm_config.py"
    omm_config(config, pg.url)
    tmp = work / "hma-tmp"
    tmp.mkdir()
    env = dict(os.environ, OMM_CONFIG=str(config), PYTHONPATH=str(src), TMPDIR=str(tmp))
    if JEMALLOC.exists():
        env["LD_PRELOAD"] = str(JEMALLOC)  # as HMA's Dockerfile does
    vbin = Path(sys.prefix) / "bin"
    limits = (args.hma_max_rss_gb * (1 << 30), args.min_free_gb * (1 << 30))

    mig = run_timed([vbin / "flask", "--app", "OpenMediaMatch.app", "db", "upgrade", "--directory",
                     "OpenMediaMatch/migrations"], work / "hma-migrate.log", cwd=src,
                    env=dict(env, MIGRATION_COMMAND="1"))
    if mig["rc"] != 0:
        raise RuntimeError(f"HMA migrations failed:\n{tail(work / 'hma-migrate.log')}")
    print("HMA: loading by COPY ...", file=sys.stderr, flush=True)
    res["load"] = hma_bulk_load(pg.dsn, hashes)
    print(f"  HMA COPY: {res['load']['wall_s']:.1f} s, database {gib(res['load']['db_bytes'])}",
          file=sys.stderr, flush=True)

    print("HMA: flask build_indices ...", file=sys.stderr, flush=True)
    build = run_timed([vbin / "flask", "--app", "OpenMediaMatch.app", "build_indices"], work / "hma-build.log",
                      watch_limits=limits, timeout=args.hma_timeout, cwd=src, env=env)
    res["index_build"] = build
    print(f"  HMA build_indices: {build['wall_s']:.1f} s, rc {build['rc']}, peak RSS "
          f"{gib(build.get('peak_tree_rss_bytes', 0))}", file=sys.stderr, flush=True)
    if build["rc"] != 0 or "error" in build:
        res["failed"] = build.get("error") or f"flask build_indices exited {build['rc']}:\n{tail(work / 'hma-build.log')}"
        pg.stop()
        return res

    port, log = free_port(), work / "hma-gunicorn.log"
    t0 = time.perf_counter()
    server = spawn([vbin / "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(args.hma_workers),
                    "--timeout", "900", "--backlog", "2048", "OpenMediaMatch.app:create_app()"], log, cwd=src, env=env)
    watch = Watch(server, *limits)
    try:
        wait_http(port, server, 600, log)
        client = Client(port)
        deadline = time.monotonic() + args.hma_timeout
        loaded: set[str] = set()
        while True:
            if watch.killed or server.poll() is not None:
                raise RuntimeError(watch.killed or f"gunicorn exited {server.returncode}:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not loaded after {args.hma_timeout} s")
            text = log.read_text(errors="replace")
            if "WORKER TIMEOUT" in text or "Worker exiting" in text or "was sent SIG" in text:
                raise RuntimeError(f"a gunicorn worker died while loading:\n{tail(log)}")
            loaded = set(re.findall(r"pid=(\d+) INFO .*CachedIndex\[pdq\] Updated checkpoint", text))
            if len(loaded) >= args.hma_workers and index_size(client) == args.entries:
                break
            time.sleep(1)
        res["workers_ready_s"] = time.perf_counter() - t0
        # /status: a worker whose load took longer than INDEX_CACHE_MAX_STALE_SEC
        # (65 s) says INDEX-STALE until its next refresh (every 30 s): wait
        # for 4 answers per worker in a row that are 200, for up to 120 s.
        good, statuses, until = 0, {}, time.monotonic() + 120
        while good < 4 * args.hma_workers and time.monotonic() < until:
            status, body = client.request("GET", "/status")
            key = f"{status} {body.decode(errors='replace')[:40]}"
            statuses[key] = statuses.get(key, 0) + 1
            good = good + 1 if status == 200 else 0
            if status != 200:
                time.sleep(1)
        res["status_ready_s"] = time.perf_counter() - t0 if good else None
        res["status_answers"] = statuses
        if not good:
            print(f"  HMA /status not 200 after 120 s: {statuses}", file=sys.stderr)
        res["rss_bytes"] = tree_rss(server.pid)
        res["peak_rss_loading_bytes"] = watch.peak
        print(f"  HMA: {args.hma_workers} workers loaded the index {res['workers_ready_s']:.1f} s after start, "
              f"RSS {gib(res['rss_bytes'])} (peak {gib(watch.peak)})", file=sys.stderr, flush=True)
        res["answers"] = check_answers(client, queries)
        client.close()
        res["load_runs"] = measure("HMA", port, args, work, [server.pid, pg.postmaster_pid()])
        res["rss_after_bytes"] = tree_rss(server.pid)
        if watch.killed:
            raise RuntimeError(watch.killed)
    except RuntimeError as e:
        res["failed"] = str(e)
        res["peak_rss_loading_bytes"] = watch.peak
    finally:
        watch.close()
        stop(server)
        pg.stop()
    return res


# ---------------------------------------------------------------- report

def summarise_answers(queries, res) -> dict:
    ans = res.get("answers")
    if not ans:
        return {}
    planted = [a for q, a in zip(queries, ans) if q["planted"]]
    rand = [a for q, a in zip(queries, ans) if not q["planted"]]
    return {"planted_found": sum(a["found"] for a in planted), "planted": len(planted),
            "random_with_matches": sum(bool(a["distances"]) for a in rand), "random": len(rand)}


def print_table(args, queries, results: dict) -> bool:
    fr, hma = results.get("frankly"), results.get("hma")
    ok = True

    def val(res, *keys):
        try:
            v = res
            for k in keys:
                v = v[k]
            return v
        except (KeyError, TypeError):
            return None

    rows = []
    c = args.connections

    def row(label, key, scale, fmt, lower_better):
        a, b = (None if r is None else val(r, *key) for r in (fr, hma))
        a = None if a is None else a * scale
        b = None if b is None else b * scale
        ratio = "-"
        if a and b:
            ratio = f"{(b / a if lower_better else a / b):.1f}x"
        rows.append([label, "-" if a is None else format(a, fmt), "-" if b is None else format(b, fmt), ratio])

    row(f"req/s, {c} connections", ("load_runs", "saturation", "rps"), 1, ",.0f", False)
    row(f"p50 ms, {c} connections", ("load_runs", "saturation", "p50_us"), 1e-3, ".2f", True)
    row(f"p99 ms, {c} connections", ("load_runs", "saturation", "p99_us"), 1e-3, ".2f", True)
    row("req/s, 1 connection", ("load_runs", "single", "rps"), 1, ",.0f", False)
    row("p50 ms, 1 connection", ("load_runs", "single", "p50_us"), 1e-3, ".2f", True)
    row("p99 ms, 1 connection", ("load_runs", "single", "p99_us"), 1e-3, ".2f", True)
    row(f"server CPU ms/request, {c} conn.", ("load_runs", "saturation", "server_cpu_ms_per_request"), 1, ".3f", True)
    row("load s (import / COPY)", ("load", "wall_s"), 1, ".1f", True)
    rows.append(["index s (start / build_indices + worker loads)",
                 "-" if val(fr, "start_s") is None else f"{fr['start_s']:.1f}",
                 "-" if val(hma, "index_build", "wall_s") is None else
                 f"{hma['index_build']['wall_s']:.1f} + {val(hma, 'workers_ready_s') or 0:.1f}", "-"])
    row("server RSS GiB after the runs", ("rss_after_bytes",), 1 / (1 << 30), ".2f", True)
    for name, res in (("frankly", fr), ("HMA", hma)):
        if res:
            s = summarise_answers(queries, res)
            res["answer_summary"] = s
    rows.append(["planted found", *(f"{r['answer_summary']['planted_found']}/{r['answer_summary']['planted']}"
                                    if r and r.get("answer_summary") else "-" for r in (fr, hma)), "-"])
    rows.append(["random queries with a match", *(f"{r['answer_summary']['random_with_matches']}/"
                                                  f"{r['answer_summary']['random']}"
                                                  if r and r.get("answer_summary") else "-" for r in (fr, hma)), "-"])
    header = ["", "frankly", f"HMA ({args.hma_workers} workers)", "frankly advantage"]
    table = [header] + rows
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    print()
    for i, r in enumerate(table):
        print("  ".join(x.ljust(w) if j == 0 else x.rjust(w) for j, (x, w) in enumerate(zip(r, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print("(frankly advantage: HMA / frankly for times and memory, frankly / HMA for req/s)")

    for name, res in (("frankly", fr), ("HMA", hma)):
        if not res:
            continue
        if res.get("failed"):
            print(f"\n{name} FAILED: {res['failed']}")
            ok = False
        for kind in ("saturation", "single"):
            r = val(res, "load_runs", kind)
            if r and r["errors"]:
                print(f"{name}: {r['errors']} HTTP errors in the {kind} run: {r}")
                ok = False
    if fr and fr.get("answers"):
        s = fr["answer_summary"]
        if s["planted_found"] != s["planted"]:
            print(f"frankly missed {s['planted'] - s['planted_found']} planted queries")
            ok = False
    if fr and hma and fr.get("answers") and hma.get("answers"):
        same = sum(a["distances"] == b["distances"] for a, b in zip(fr["answers"], hma["answers"]))
        print(f"answers (sorted match distances) identical on {same}/{len(queries)} queries")
        results["identical_answers"] = same
        ok &= same == len(queries)
    return ok


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="hma-lookup-"))
    CLEANUPS.append(lambda: shutil.rmtree(work, ignore_errors=True))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                     "entries": args.entries, "queries": args.queries, "seed": args.seed,
                     "duration_s": args.duration, "connections": args.connections,
                     "wrk_threads": args.wrk_threads,
                     "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]}
    try:
        print(f"cpu: {results['cpu']} ({results['cores']} cores), {results['wrk']}")
        print(f"entries {args.entries:,}, {args.queries} queries (half planted, 1-16 bits flipped), seed {args.seed}, "
              f"{args.duration} s at {args.connections} connections ({args.wrk_threads} wrk thread) and at 1",
              flush=True)
        hashes = hashes_file(args.entries, args.seed)
        queries = make_queries(hashes, args.entries, args.queries, args.seed)
        (work / "paths.txt").write_text("".join(LOOKUP + q["hash"] + "\n" for q in queries))
        (work / "lookup.lua").write_text(WRK_LUA)
        for name, run in (("frankly", run_frankly), ("hma", run_hma)):
            if args.only in (None, name):
                try:
                    results[name] = run(args, hashes, queries, work)
                except (RuntimeError, subprocess.CalledProcessError) as e:
                    results[name] = {"server": name, "version": "?", "failed": str(e)}
        for name in ("frankly", "hma"):
            r = results.get(name)
            if r:
                print(f"{name}: {r['version']}")
        if results.get("hma"):
            h = results["hma"]
            print(f"HMA: {args.hma_workers} gunicorn sync workers, jemalloc {'on' if JEMALLOC.exists() else 'off'}, "
                  f"{h.get('postgres', '')}; pip: {' '.join(HMA_REQUIREMENTS)}")
            b = h.get("index_build") or {}
            if b:
                print(f"HMA flask build_indices: {b['wall_s']:.1f} s, peak RSS {gib(b.get('peak_tree_rss_bytes', 0))}"
                      + (f", workers loaded {h['workers_ready_s']:.1f} s after gunicorn start, peak RSS while "
                         f"loading {gib(h['peak_rss_loading_bytes'])}" if h.get("workers_ready_s") else ""))
            if h.get("status_answers"):
                ready = h.get("status_ready_s")
                print(f"HMA /status answers while waiting: {h['status_answers']}"
                      + (f"; steadily 200 {ready:.1f} s after gunicorn start" if ready else ""))
        ok = print_table(args, queries, results)
        if args.json:
            for name in ("frankly", "hma"):
                if results.get(name):
                    results[name].pop("answers", None)
            args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        return 0 if ok else 1
    finally:
        cleanup()


if __name__ == "__main__":
    if "--only" not in sys.argv or "hma" in sys.argv:  # HMA's dependencies: enter their venv
        benchenv.VENV = HMA_VENV
        ensure_venv(__file__, HMA_REQUIREMENTS, HMA_PROBE)
    sys.exit(main())
