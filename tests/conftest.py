"""Shared fixtures: the simulator's pytest plugin and helpers to run sessions on it."""

from __future__ import annotations

import os
import tempfile

pytest_plugins = ["hil.pytest_plugin"]

# Every `cushion run` a test starts (in-process or as a subprocess) journals into a scratch
# file, never into the user's own data directory.
os.environ["CUSHION_JOURNAL"] = os.path.join(
    tempfile.mkdtemp(prefix="cushion-tests-"), "journal.sqlite3"
)
