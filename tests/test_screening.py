"""The screening as a person meets it: questions in a real terminal, refusals, the config file.

Every `cushion` here is a real process with its own scratch config, journal and data folder;
the terminal tests drive a real pseudo-terminal with pexpect.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.cli import main
from controller.config import load_config
from controller.errors import ConfigError
from protocols.contraindications import CHECKLIST

CLI = [sys.executable, "-m", "controller.cli"]
N = len(CHECKLIST)
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def answered(on: dt.date | None = None, yes: tuple[str, ...] = (), skip: tuple[str, ...] = (),
             head: str = "") -> str:
    """Return a config text whose screening was answered on `on`."""
    on = on or dt.date.today()  # the day of the call: a suite may run past midnight
    answers = "".join(f"{c.key} = {str(c.key in yes).lower()}\n" for c in CHECKLIST
                      if c.key not in skip)
    return f"{head}[screening]\nanswered_on = {on.isoformat()}\n\n[screening.answers]\n{answers}"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """Environment of a user of their own: config, journal and data folder in tmp_path."""
    return dict(
        os.environ,
        CUSHION_CONFIG=str(tmp_path / "config.toml"),
        CUSHION_JOURNAL=str(tmp_path / "journal.sqlite3"),
        CUSHION_DATA_DIR=str(tmp_path / "data"),
        COLUMNS="1000",  # prose wraps at the width: keep each paragraph on one line
    )


def cushion(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the CLI without a terminal (stdin a pipe) and return what it did."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                          check=False, env=env, input=stdin)


def terminal(env: dict[str, str], *args: str) -> pexpect.spawn:
    """Start the CLI in a real pseudo-terminal."""
    return pexpect.spawn(CLI[0], [*CLI[1:], *args], env=env, encoding="utf-8", timeout=60,
                         dimensions=(50, 1000))


def config_of(env: dict[str, str]) -> Path:
    return Path(env["CUSHION_CONFIG"])


def sessions(env: dict[str, str]) -> list[dict[str, object]]:
    done = cushion(env, "history", "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


# -- in a terminal ---------------------------------------------------------------------------


def test_first_run_asks_the_checklist_and_the_pain_question(home: dict[str, str]) -> None:
    config_of(home).write_text("# my cushion\n[limits]\nmax_intensity = 0.6  # gentle\n")
    child = terminal(home, "run", "lumbar-short", "--speed", "max")
    child.expect("not medical advice")
    child.expect("a doctor decides")
    child.expect("power switch is the emergency stop")
    for n in range(1, N + 1):
        child.expect(rf"{n}/{N} .*\? \[y/n\] ")
        if n == 1:
            child.send("x")  # not an answer: the question waits for y or n
        child.send("n")
        child.expect("no")
    child.expect("answers saved to")
    child.expect_exact("Pronounced or acute pain right now? [y/N] ")
    child.send("n")
    child.expect("session done")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    text = config_of(home).read_text()
    assert text.startswith("# my cushion\n[limits]\nmax_intensity = 0.6  # gentle\n")
    cfg, limits = load_config(config_of(home))
    assert limits.max_intensity == 0.6
    assert cfg.screening.answered_on == dt.date.today()
    assert cfg.screening.answers == {c.key: False for c in CHECKLIST}
    assert [s["screening_skipped"] for s in sessions(home)] == [False]


def test_answers_typed_ahead_are_all_kept(home: dict[str, str]) -> None:
    # A person who knows the questions types every answer at once, as soon as the first
    # question shows: no key may be lost between questions (a per-key mode switch with a
    # flush would drop them and leave the checklist waiting).
    child = terminal(home, "run", "lumbar-short", "--speed", "max")
    child.expect(rf"1/{N} .*\? \[y/n\] ")
    child.send("n" * (N + 1))  # the checklist, then the pain question
    child.expect("answers saved to")
    child.expect("session done")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    cfg, _ = load_config(config_of(home))
    assert cfg.screening.answers == {c.key: False for c in CHECKLIST}


def test_answered_screening_asks_only_about_pain_and_a_yes_refuses_the_day(
    home: dict[str, str],
) -> None:
    config_of(home).write_text(answered())
    child = terminal(home, "run", "lumbar-short", "--speed", "max")
    child.expect_exact("Pronounced or acute pain right now? [y/N] ")
    assert "[y/n]" not in (child.before or "")
    child.send("y")
    child.expect("no session today")
    child.expect("line 290")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert load_config(config_of(home))[0].screening.pain_on == dt.date.today()
    # Later the same day, with or without a terminal, even with --yes: refused, with the reason.
    later = cushion(home, "run", "lumbar-short", "--speed", "max", "--json", "--yes")
    assert later.returncode == 2
    assert "no session today" in later.stderr and "line 290" in later.stderr
    again = terminal(home, "run", "lumbar-short", "--speed", "max")
    again.expect("no session today")
    again.expect(pexpect.EOF)
    again.close()
    assert again.exitstatus == 2 and "[y/N]" not in (again.before or "")
    assert sessions(home) == []
    # The day after, the question is asked again.
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    text = re.sub(r"(?m)^pain_on = .*$", f"pain_on = {yesterday}", config_of(home).read_text())
    config_of(home).write_text(text)
    assert load_config(config_of(home))[0].screening.pain_on != dt.date.today()
    child = terminal(home, "run", "lumbar-short", "--speed", "max")
    child.expect_exact("[y/N] ")
    child.send("\r")  # Enter: the default, no
    child.expect("session done")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_ctrl_c_in_the_questions_leaves_and_saves_nothing(home: dict[str, str]) -> None:
    child = terminal(home, "run", "lumbar-short", "--speed", "max")
    child.expect(r"1/\d+ .*\[y/n\] ")
    child.send("n")
    child.expect(r"2/\d+ .*\[y/n\] ")
    child.send("\x03")
    child.expect("interrupted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert not config_of(home).exists() and sessions(home) == []


def test_a_key_not_yet_asked_is_asked_alone(home: dict[str, str]) -> None:
    config_of(home).write_text(answered(skip=("marfan",)))
    child = terminal(home, "run", "lumbar-short", "--speed", "max")
    child.expect(r"1/1 Do you have Marfan syndrome\? \[y/n\] ")
    child.send("y")
    child.expect_exact("[y/N] ")
    child.send("n")
    child.expect("does not start")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    cfg, _ = load_config(config_of(home))
    assert cfg.screening.answers["marfan"] is True
    assert cfg.screening.answered_on == dt.date.today()  # unchanged: only one question was asked


def test_cushion_screening_re_asks_in_a_terminal(home: dict[str, str]) -> None:
    config_of(home).write_text(answered())
    child = terminal(home, "screening")
    for n in range(1, N + 1):
        child.expect(rf"{n}/{N} ")
        child.send("y" if CHECKLIST[n - 1].key == "edema" else "n")
    child.expect("answers saved")
    child.expect("yes to: edema")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert load_config(config_of(home))[0].screening.answers["edema"] is True
    done = cushion(home, "run", "lumbar-short", "--speed", "max", "--json")
    assert done.returncode == 2 and "edema" in done.stderr and "line 535" in done.stderr


# -- without a terminal ----------------------------------------------------------------------


def test_a_listed_contraindication_refuses_the_program(home: dict[str, str]) -> None:
    config_of(home).write_text(answered(yes=("hypertension",)))
    done = cushion(home, "run", "lumbar-classic", "--speed", "max", "--json")
    assert done.returncode == 2, done.stderr
    assert "hypertension" in done.stderr and "158" in done.stderr
    assert "a doctor decides" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and sessions(home) == []


def test_unanswered_screening_without_a_terminal_is_refused(home: dict[str, str]) -> None:
    done = cushion(home, "run", "lumbar-short", "--speed", "max", stdin="n\n" * 40)
    assert done.returncode == 2
    assert "cushion screening" in done.stderr and "--yes" in done.stderr
    assert "[y/n]" not in done.stderr  # nothing was asked: stdin is not a terminal
    assert not config_of(home).exists()
    json_run = cushion(home, "run", "lumbar-short", "--speed", "max", "--json")
    assert json_run.returncode == 2 and json_run.stdout == ""


def test_a_screening_90_days_old_is_due_again(home: dict[str, str]) -> None:
    config_of(home).write_text(answered(on=dt.date.today() - dt.timedelta(days=90)))
    done = cushion(home, "run", "lumbar-short", "--speed", "max")
    assert done.returncode == 2 and "due again" in done.stderr
    config_of(home).write_text(answered(on=dt.date.today() - dt.timedelta(days=89)))
    assert cushion(home, "run", "lumbar-short", "--speed", "max", "--json").returncode == 0


def test_yes_skips_the_questions_and_the_journal_says_so(home: dict[str, str]) -> None:
    done = cushion(home, "run", "lumbar-short", "--speed", "max", "--json", "--yes")
    assert done.returncode == 0, done.stderr
    config_of(home).write_text("[screening]\nunattended = true\n")
    done = cushion(home, "run", "lumbar-short", "--speed", "max", "--json")
    assert done.returncode == 0, done.stderr
    assert [s["screening_skipped"] for s in sessions(home)] == [True, True]
    # Skipping asks nothing; answers already kept still count.
    config_of(home).write_text(answered(yes=("tumour",)))
    done = cushion(home, "run", "lumbar-short", "--speed", "max", "--json", "--yes")
    assert done.returncode == 2 and "tumour" in done.stderr and "494" in done.stderr


def test_reduced_sensation_keeps_heat_off(home: dict[str, str]) -> None:
    def heats() -> set[object]:
        done = cushion(home, "run", "radiculitis-gentle", "--profile", "lp4-ascii", "--speed",
                       "max", "--json")
        assert done.returncode == 0, done.stderr
        return {e.get("heat") for e in map(json.loads, done.stdout.splitlines())
                if e["kind"] == "setpoint"} - {None, 0}

    config_of(home).write_text(answered())
    assert heats()  # the program warms the back first
    config_of(home).write_text(answered(yes=("reduced_sensation",)))
    assert heats() == set()


def test_answers_follow_the_person_not_a_config_file(home: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "rig.toml"
    other.write_text("[limits]\nmax_intensity = 0.5\n")
    config_of(home).write_text(answered(yes=("edema",)))
    done = cushion(home, "run", "lumbar-short", "--speed", "max", "--config", str(other))
    assert done.returncode == 2 and "edema" in done.stderr
    other.write_text("[limits]\nmax_intensity = 0.5\n\n" + answered())
    done = cushion(home, "run", "lumbar-short", "--speed", "max", "--config", str(other), "--json")
    assert done.returncode == 0, done.stderr


# -- cushion config ----------------------------------------------------------------------------


def test_config_set_lowers_limits_and_refuses_a_raise(home: dict[str, str]) -> None:
    config_of(home).write_text("# mine\n[limits]\nmax_intensity = 0.6  # gentle\n")
    raised = cushion(home, "config", "set", "limits.max_intensity", "0.9")
    assert raised.returncode == 2
    assert "limits.max_intensity" in raised.stderr and "only lowers" in raised.stderr
    assert "Traceback" not in raised.stderr
    assert cushion(home, "config", "set", "limits.max_intensity", "none").returncode == 2
    assert cushion(home, "config", "set", "limits.final_ramp_down_s", "30").returncode == 2
    assert cushion(home, "config", "set", "limits.allow_raise", "true").returncode == 2
    lowered = cushion(home, "config", "set", "limits.max_intensity", "50%")
    assert lowered.returncode == 0, lowered.stderr
    assert cushion(home, "config", "set", "defaults.profile", "vb6-binary").returncode == 0
    bad = cushion(home, "config", "set", "defaults.profile", "lp9")
    assert bad.returncode == 2 and "lp9" in bad.stderr
    assert cushion(home, "config", "set", "screening.tumour", "maybe").returncode == 2
    unknown = cushion(home, "config", "set", "limits.max_intensty", "0.5")
    assert unknown.returncode == 2 and "limits.max_intensity" in unknown.stderr  # listed
    text = config_of(home).read_text()
    assert text.startswith("# mine\n[limits]\nmax_intensity = 0.5  # gentle\n")
    cfg, limits = load_config(config_of(home))
    assert limits.max_intensity == 0.5 and cfg.defaults.profile == "vb6-binary"


def test_config_set_screening_answers_and_clearing_the_pain_day(home: dict[str, str]) -> None:
    config_of(home).write_text(answered() + "\n[limits]\nsparing = true\n")
    assert cushion(home, "config", "set", "screening.nausea", "yes").returncode == 0
    done = cushion(home, "run", "lumbar-short", "--speed", "max", "--json")
    assert done.returncode == 2 and "nausea" in done.stderr and "539" in done.stderr
    assert cushion(home, "config", "set", "screening.answers.nausea", "no").returncode == 0
    today = dt.date.today()
    text = config_of(home).read_text().replace("[screening]\n", f"[screening]\npain_on = {today}\n")
    config_of(home).write_text(text)
    assert cushion(home, "run", "lumbar-short", "--speed", "max", "--json").returncode == 2
    assert cushion(home, "config", "set", "screening.pain_on", "none").returncode == 0
    assert cushion(home, "run", "lumbar-short", "--speed", "max", "--json").returncode == 0
    assert load_config(config_of(home))[1].sparing is True


def test_config_set_course_within_its_bounds(home: dict[str, str]) -> None:
    done = cushion(home, "config", "set", "course.max_sessions_per_day", "1")
    assert done.returncode == 0, done.stderr
    cfg, _ = load_config(config_of(home))
    assert cfg.course.max_sessions_per_day == 1
    assert config_of(home).read_text().endswith("\n")
    for value in ("5", "abc", "nan"):
        refused = cushion(home, "config", "set", "course.max_sessions_per_day", value)
        assert refused.returncode == 2, refused.stderr
        assert "course.max_sessions_per_day" in refused.stderr and "Traceback" not in refused.stderr
    assert load_config(config_of(home))[0].course.max_sessions_per_day == 1  # left as it was
    shown = cushion(home, "config", "show", "--json")
    assert json.loads(shown.stdout)["course"]["max_sessions_per_day"] == 1


def test_config_show_says_where_and_what(home: dict[str, str]) -> None:
    config_of(home).write_text(answered(yes=("edema",), head="[limits]\nmax_intensity = 0.5\n\n"))
    shown = cushion(home, "config", "show")
    assert shown.returncode == 0, shown.stderr
    assert home["CUSHION_CONFIG"] in shown.stdout and home["CUSHION_DATA_DIR"] in shown.stdout
    assert "yes to: edema" in shown.stdout and "0.5 *" in shown.stdout
    data = json.loads(cushion(home, "config", "show", "--json").stdout)
    assert data["limits"]["max_intensity"] == 0.5
    assert data["screening"]["yes"] == ["edema"] and data["screening"]["due"] is False
    assert data["user_programs"] == str(Path(home["CUSHION_DATA_DIR"]) / "programs")
    listed = json.loads(cushion(home, "screening", "--show", "--json").stdout)
    assert {i["key"] for i in listed["items"]} >= {"osteomyelitis", "skin_allergy", "acute_pain"}


# -- the [screening] table, validated like every other table ----------------------------------


@pytest.mark.parametrize(
    ("text", "key", "needle"),
    [
        ("[screening]\nanswered_on = 2999-01-01\n", "screening.answered_on", "future"),
        ("[screening]\nanswered_on = \"soon\"\n", "screening.answered_on", "date"),
        ("[screening]\npain_on = 12\n", "screening.pain_on", "date"),
        ("[screening]\nunattended = 1\n", "screening.unattended", "bool"),
        ("[screening]\nunattended = \"yes\"\n", "screening.unattended", "bool"),
        ("[screening.answers]\ntumour = \"no\"\n", "screening.answers.tumour", "bool"),
        ("[screening.answers]\ntumor = false\n", "screening.answers.tumor", "tumour"),
        ("[screening.answers]\nacute_pain = false\n", "screening.answers.acute_pain", "known"),
        ("[screening]\nanswers = []\n", "screening.answers", "dict"),
        ("[screening]\nasked = 2024-01-01\n", "screening.asked", "not a known key"),
        ("[screening]\nanswers = { edema = nan }\n", "screening.answers.edema", "bool"),
    ],
)
def test_bad_screening_values_name_key_and_line(
    tmp_path: Path, text: str, key: str, needle: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[limits]\nsparing = true\n\n" + text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key and info.value.file == str(path)
    assert info.value.line == len(("[limits]\nsparing = true\n\n" + text).splitlines())
    assert needle in info.value.describe()


def test_a_bad_screening_table_is_exit_2_for_run(home: dict[str, str]) -> None:
    config_of(home).write_text("[screening]\nunattended = \"yes\"\n")
    done = cushion(home, "run", "lumbar-short", "--speed", "max", "--json")
    assert done.returncode == 2 and "config.toml:2" in done.stderr
    assert "Traceback" not in done.stderr


SETTABLE = [
    "limits.max_intensity", "limits.sparing", "limits.ramp_per_s", "limits.final_ramp_down_s",
    "limits.heat_max", "limits.allow_raise", "limits.nope", "defaults.profile", "defaults.port",
    "screening.tumour", "screening.answers.edema", "screening.acute_pain", "screening.unattended",
    "screening.pain_on", "screening.answered_on", "screening", "device.x.max_intensity", "",
]
VALUES = ["0.5", "50%", "0", "-1", "1e309", "nan", "inf", "yes", "no", "none", "", "lp4-ascii",
          "/dev/ttyUSB0", "serial:/dev/x?baud=abc", "2024-01-01", "[1]", '"', "\x00", "é"]


@FUZZ
@given(key=st.sampled_from(SETTABLE) | st.text(max_size=30),
       value=st.sampled_from(VALUES) | st.text(max_size=30))
def test_config_set_only_accepts_or_refuses(tmp_path: Path, key: str, value: str) -> None:
    """Any KEY VALUE: exit 0 and a file that still loads, or exit 2 with one paragraph."""
    path = tmp_path / "fuzz.toml"
    path.write_text("# kept\n[limits]\nmax_intensity = 0.6\n\n" + answered())
    before = path.read_text()
    result = CliRunner().invoke(main, ["config", "set", "--config", str(path), key, value])
    assert result.exit_code in (0, 2), (result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), result.exception
    _, limits = load_config(path)
    assert limits.max_intensity <= 0.6
    if result.exit_code == 2:
        assert path.read_text() == before
    else:
        assert path.read_text().startswith("# kept\n")
