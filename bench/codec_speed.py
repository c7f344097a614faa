"""Per-operation cost of the codec for every built-in profile, beside the generic path.

Run: .venv/bin/python bench/codec_speed.py [--count N] [--rounds R] [--simulate]

For each profile a session-like stream is made (slow level patterns per zone, keepalives,
acks, an occasional status), then each operation runs over the whole stream on a fresh codec:
  memo     the public path (Codec.encode, CommandParser.feed, Codec.encode_reply,
           ReplyParser.feed), which remembers what it has already encoded or parsed;
  generic  the same codec with its memo bypassed: every frame encoded or parsed in full,
           which is what every call cost before the memo.
Figures are microseconds per call, the best of several rounds (timing noise only adds).
"distinct" is the share of calls whose argument was not seen before in the stream: those
take the generic path plus the memo's own cost (about 0.3 us).
--simulate also times a whole 26-minute program end to end on the virtual clock.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from firmware_profiles import Codec, Profile, builtin_profiles, load_profile
from firmware_profiles.commands import (
    Command,
    Keepalive,
    Press,
    Query,
    Reply,
    SetAll,
    SetZone,
)


def session_commands(profile: Profile, count: int) -> list[Command]:
    """A stream shaped like a session at 20 Hz: pulsing zones under a slowly climbing ceiling,
    a new rhythm every 30 s, keepalives between (stepping cushions: presses and queries)."""
    zones = len(profile.zones)
    scale = profile.intensity
    lease = profile.limits.lease_s
    out: list[Command] = []
    t = 0
    while len(out) < count:
        t += 1
        if profile.control == "stepping":
            buttons = ("intensity_up", "intensity_up", "intensity_down", "next_mode")
            out.append(Press(buttons[t % len(buttons)]) if t % 5 else Query())  # type: ignore[arg-type]
            continue
        ceiling = min(1.0, round(t / 1200, 2))  # the ramp rule: climbs slowly from zero
        period = 4 + (t // 600) % 5  # a new technique rhythm every 30 s
        levels = tuple(
            scale.to_device(ceiling * (1.0 if (t // period + z) % 3 else 0.4))
            for z in range(zones)
        )
        if profile.supports("set_all") and t % 3:
            out.append(SetAll(levels))
        elif profile.supports("set_zone"):
            out.append(SetZone(t % zones, levels[t % zones], lease))
        if t % 10 == 0 and profile.supports("keepalive"):
            out.append(Keepalive())
    return out[:count]


def new_commands(codec: Codec, count: int) -> list[Command]:
    """Up to count commands, no two alike: the memo's worst case (every call a miss)."""
    profile = codec.profile
    rng = random.Random(7)
    zones, lo, hi = len(profile.zones), profile.intensity.min, profile.intensity.max
    leased = codec.leased("set_zone") or codec.leased("set_all")
    seen: dict[Command, None] = {}
    for _ in range(20 * count):
        if len(seen) >= count or profile.control == "stepping":
            break
        lease = rng.randrange(100) / 10 if leased else None
        if profile.supports("set_all"):
            seen[SetAll(tuple(rng.randint(lo, hi) for _ in range(zones)), lease)] = None
        else:
            seen[SetZone(rng.randrange(zones), rng.randint(lo, hi), lease)] = None
    return list(seen)


def session_replies(codec: Codec, count: int) -> list[Reply]:
    """Mostly acks, a status reply every 50th (levels climbing), as a cushion answers."""
    profile = codec.profile
    status_keys = codec.reply_fields("status")
    out: list[Reply] = []
    for n in range(count):
        if profile.supports("ack") and n % 50:
            out.append(Reply("ack"))
        elif status_keys:
            out.append(Reply("status", {k: (n // 50) % 4 for k in status_keys}))
    return out


def best_per_call(run: Callable[[], Any], calls: int, rounds: int) -> float:
    """Best time of `rounds` runs, per call, in microseconds."""
    best = math.inf
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / max(calls, 1) * 1e6


def measure(
    profile: Profile, count: int, rounds: int
) -> list[tuple[str, int, float, float, float]]:
    """Return (operation, calls, distinct share, memo us, generic us) for one profile."""
    probe = Codec(profile)
    commands = session_commands(profile, count)
    frames = [probe.encode(c) for c in commands]
    replies = session_replies(probe, count)
    reply_frames = [probe.encode_reply(r) for r in replies]

    def each(items: Sequence[Any], make: Callable[[Codec], Callable[[Any], object]]) -> Any:
        def run_memo() -> None:
            call = make(Codec(profile))  # a fresh codec: the memo starts empty every round
            for item in items:
                call(item)
        return run_memo

    def no_memo(parser: Any) -> Any:
        parser._engine._memo = None  # the generic path: parse every chunk in full
        return parser.feed

    new = new_commands(probe, count)
    new_frames = [probe.encode(c) for c in new]
    rows: list[tuple[str, Sequence[Any], Callable[[Any], Any], Callable[[Any], Any]]] = [
        ("encode", commands, lambda c: c.encode, lambda c: c._encode),
        ("  all new", new, lambda c: c.encode, lambda c: c._encode),
        ("command feed", frames, lambda c: c.command_parser().feed,
         lambda c: no_memo(c.command_parser())),
        ("  all new", new_frames, lambda c: c.command_parser().feed,
         lambda c: no_memo(c.command_parser())),
        ("encode_reply", replies, lambda c: c.encode_reply, lambda c: c._encode_reply),
        ("reply feed", reply_frames, lambda c: c.reply_parser().feed,
         lambda c: no_memo(c.reply_parser())),
    ]
    out = []
    for name, items, memo, generic in rows:
        if not items:
            continue
        fast = best_per_call(each(items, memo), len(items), rounds)
        slow = best_per_call(each(items, generic), len(items), rounds)
        distinct = len({repr(item) for item in items}) / len(items)
        out.append((name, len(items), distinct, fast, slow))
    return out


def simulate_seconds(name: str, rounds: int) -> float | str:
    """Best wall time of a whole lumbar-classic run on the virtual clock (or why it cannot run)."""
    from tests.support import simulate

    try:
        simulate("lumbar-classic", name)
    except Exception as exc:  # a program the profile refuses (too long for its auto-off)
        return type(exc).__name__
    return min(_timed(lambda: simulate("lumbar-classic", name)) for _ in range(rounds))


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="calls per operation")
    parser.add_argument("--rounds", type=int, default=5, help="runs per figure; best is kept")
    parser.add_argument("--simulate", action="store_true", help="also time a whole program")
    args = parser.parse_args()
    print(f"{'profile':15} {'operation':13} {'calls':>6} {'distinct':>8} {'memo us':>8}"
          f" {'generic us':>10} {'speed-up':>8}")
    for name in sorted(builtin_profiles()):
        profile = load_profile(name)
        total_fast = total_slow = 0.0
        for op, calls, distinct, fast, slow in measure(profile, args.count, args.rounds):
            if not op.startswith(" "):  # the worst-case rows are not part of the session
                total_fast += fast * calls
                total_slow += slow * calls
            print(f"{name:15} {op:13} {calls:6} {distinct:8.0%} {fast:8.2f} {slow:10.2f}"
                  f" {slow / fast:7.1f}x")
        print(f"{name:15} {'session total':13} {'':6} {'':8} {total_fast / 1e3:6.1f}ms "
              f"{total_slow / 1e3:8.1f}ms")
        if args.simulate:
            took = simulate_seconds(name, args.rounds)
            shown = took if isinstance(took, str) else f"{took:.3f} s"
            print(f"{name:15} {'simulate':13} lumbar-classic end to end: {shown}")


if __name__ == "__main__":
    main()
