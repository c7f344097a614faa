"""Shared fixtures: the simulator's pytest plugin and helpers to run sessions on it."""

from __future__ import annotations

import os
import tempfile

pytest_plugins = ["hil.pytest_plugin", "tests.mqtt_broker"]

# Every `cushion run` a test starts (in-process or as a subprocess) journals into a scratch
# file, never into the user's own data directory.
os.environ["CUSHION_JOURNAL"] = os.path.join(
    tempfile.mkdtemp(prefix="cushion-tests-"), "journal.sqlite3"
)

# Nor into the user's config or data folders: a scratch config whose screening is answered
# today, all "no" (so `cushion run` without a terminal may start), and an empty data folder
# for user programs and profiles.
_SCRATCH = tempfile.mkdtemp(prefix="cushion-tests-")
os.environ["CUSHION_DATA_DIR"] = os.path.join(_SCRATCH, "data")
os.environ["CUSHION_CONFIG"] = os.path.join(_SCRATCH, "config.toml")


def _answered_config() -> str:
    """Return the text of a config file whose screening is answered today, all no."""
    import datetime

    from protocols.contraindications import CHECKLIST

    answers = "".join(f"{c.key} = false\n" for c in CHECKLIST)
    return (f"[screening]\nanswered_on = {datetime.date.today().isoformat()}\n\n"
            f"[screening.answers]\n{answers}")


with open(os.environ["CUSHION_CONFIG"], "w", encoding="utf-8") as _file:
    _file.write(_answered_config())
