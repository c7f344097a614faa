"""The README's first command, in a real terminal, under load: does it finish clean?

Run: .venv/bin/python bench/first_run.py [--runs 10] [--parallel 2] [--load 2] [--idle]

Each run is ``.venv/bin/cushion run lumbar-classic --speed 26`` with its stdin, stdout and
stderr on a fresh pseudo-terminal (80x24, TERM=xterm-256color), so the live display is on,
exactly as a person would type it. Nothing is added to the product: the bench reads the
terminal's byte stream (every redraw of the live display) and the exit code. A run is clean
when it exits 0 and its terminal never showed ``nak`` or ``fault:``.

Each run is a new user's first run: a fresh config and journal, so the screening checklist
and the pain question come first; the bench answers every question "n" as it appears on the
screen (one key each, as a person would), then the session starts.

The load is ``--load`` pure-Python busy loops (default: one per core, so both cores of a
2-core machine are busy besides the runs themselves); ``--idle`` runs without them.
``os.getloadavg()`` is sampled at the end of every run. ``--parallel`` runs that many at
once (each is a separate terminal and process), to keep the total load time short.
``--root DIR`` runs ``python -m controller`` from another checkout (a git worktree with a
change under test, or the commit before one) instead of ``.venv/bin/cushion``.
The config, journal and data folders are temporary, one set per run, never the user's.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import benchlib

CUSHION = benchlib.ROOT / ".venv" / "bin" / "cushion"
_QUESTION = re.compile(rb"\[y/[nN]\]")
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


@dataclass
class Result:
    """One run in a terminal."""

    exit_code: int
    wall_s: float
    naks: int  # redraws (or lines) that showed a nak
    faults: int  # redraws (or lines) that showed a fault
    load: float  # 1-minute load average at the end
    tail: str  # the last words on the screen
    text: str  # everything the terminal showed, escape sequences removed

    @property
    def clean(self) -> bool:
        return self.exit_code == 0 and not self.naks and not self.faults


def run_in_terminal(
    argv: list[str], env: dict[str, str], timeout_s: float, cwd: str | None = None
) -> Result:
    """Run `argv` on a fresh pty (80x24) and return its exit code and what the screen showed."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
    )
    os.close(slave)
    out = bytearray()
    deadline = start + timeout_s
    answered = 0
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every slave end closed, the child is gone
                break
            if not chunk:
                break
            out += chunk
            # Answer each "[y/n]" / "[y/N]" question once, as it appears, with "n".
            asked = len(_QUESTION.findall(out))
            if asked > answered:
                os.write(master, b"n" * (asked - answered))
                answered = asked
        else:
            proc.kill()
        code = proc.wait(10)
    finally:
        os.close(master)
    wall = time.monotonic() - start
    text = _ANSI.sub(b"", bytes(out)).decode("utf-8", "replace")
    words = " ".join(text.split())
    return Result(
        exit_code=code,
        wall_s=wall,
        naks=len(re.findall(r"\bnak\b", text)),
        faults=text.count("fault:"),
        load=os.getloadavg()[0],
        tail=words[-300:],
        text=text,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (default 1)")
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2, help="busy loops")
    parser.add_argument("--idle", action="store_true", help="no busy loops")
    parser.add_argument("--program", default="lumbar-classic")
    parser.add_argument("--speed", default="26")
    parser.add_argument("--timeout", type=float, default=240.0, help="per run (s)")
    parser.add_argument(
        "--root",
        help="run the controller from this checkout (python -m controller with PYTHONPATH) "
        "instead of .venv/bin/cushion, e.g. a git worktree with a change under test",
    )
    parser.add_argument("--keep", help="write each run's terminal text into this folder")
    args = parser.parse_args(argv)
    load = 0 if args.idle else args.load

    print(benchlib.machine())
    cmd = [str(CUSHION), "run", args.program, "--speed", args.speed]
    if args.root:
        cmd = [sys.executable, "-m", "controller", *cmd[1:]]
    print(f"checkout: {args.root or benchlib.ROOT}")
    print(
        f"command: {' '.join(cmd[1:])} in an 80x24 terminal; {args.runs} runs, "
        f"{args.parallel} at a time, {load} busy loop(s)"
    )
    results: list[Result] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="first-run-") as data_home:
        env = {**os.environ, "TERM": "xterm-256color", "XDG_DATA_HOME": data_home}
        if args.root:
            env["PYTHONPATH"] = os.path.abspath(args.root)
        env.pop("NO_COLOR", None)

        def one(n: int) -> Result:
            # Every run is a new user: no config (so no screening answers), no journal.
            home = os.path.join(data_home, f"run{n + 1}")
            os.makedirs(home)
            mine = {
                **env,
                "XDG_DATA_HOME": home,
                "CUSHION_CONFIG": os.path.join(home, "config.toml"),
                "CUSHION_JOURNAL": os.path.join(home, "journal.sqlite3"),
                "CUSHION_DATA_DIR": os.path.join(home, "cushion"),
            }
            result = run_in_terminal(cmd, mine, args.timeout, args.root)
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                with open(os.path.join(args.keep, f"run{n + 1}.txt"), "w") as f:
                    f.write(result.text)
            with lock:
                results.append(result)
                mark = "clean" if result.clean else "NOT CLEAN"
                print(
                    f"run {n + 1:2}: exit {result.exit_code}, {result.wall_s:5.1f} s, "
                    f"nak {result.naks}, fault {result.faults}, load {result.load:.2f}: {mark}"
                    + ("" if result.clean else f"\n         ...{result.tail}"),
                    flush=True,
                )
            return result

        ctx = benchlib.busy_cores(load) if load else contextlib.nullcontext([])
        t0 = time.monotonic()
        with ctx, ThreadPoolExecutor(max(1, args.parallel)) as pool:
            list(pool.map(one, range(args.runs)))
        total = time.monotonic() - t0
    clean = sum(r.clean for r in results)
    loads = [r.load for r in results]
    print(
        f"clean {clean} of {len(results)}; with a nak {sum(bool(r.naks) for r in results)}, "
        f"with a fault {sum(bool(r.faults) for r in results)}, exit codes "
        f"{sorted({r.exit_code for r in results})}; load {min(loads):.2f}-{max(loads):.2f}; "
        f"{total:.0f} s in all"
    )
    return 0 if clean == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
