"""Load-time limits a program must respect, with the article line each number comes from."""

from __future__ import annotations

from typing import Final

# Article, line 270: "not less than 20 and not more than 40 minutes".
MAX_SESSION_S: Final = 40 * 60.0
MIN_RECOMMENDED_S: Final = 20 * 60.0
# Article, line 89 and 142: each technique 2-3 times; 10 leaves room without inviting abuse.
MAX_REPETITIONS: Final = 10
# Article, line 132: the final phase reduces the strength gradually; "ends low" means at most this.
FINAL_END_MAX: Final = 0.10
# Article, line 282: all effects begin with minimal intensity; a first step above this gets a note.
GENTLE_START_MAX: Final = 0.30
# Fastest pattern rate (intermittent vibration tops out at 8 Hz); bounds the segment count.
MAX_TEMPO_HZ: Final = 10.0
MAX_FREQUENCY_HZ: Final = 300.0
