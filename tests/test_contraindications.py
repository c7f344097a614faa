"""Contraindications in programs: keyed entries, the old free-text form, the built-ins' lists,
and user programs and profiles found by name."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_profiles import builtin_profiles, load_profile
from protocols import ProgramError, builtin_programs, load_program
from protocols.contraindications import BY_KEY, CHECKLIST, CONTRAINDICATIONS

CLI = [sys.executable, "-m", "controller.cli"]
SHORT = builtin_programs()["lumbar-short"].read_text()
CONTRA = re.compile(r"^contraindications = \[\n.*?^\]\n", re.M | re.S)


def with_contraindications(block: str, name: str = "mine") -> str:
    """Return lumbar-short renamed, its contraindications replaced by `block`."""
    text = CONTRA.sub(block, SHORT, count=1).replace('name = "lumbar-short"', f'name = "{name}"')
    assert block in text
    return text


def cushion(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120,
                          check=False, env=env)


# -- the built-ins ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(builtin_programs()))
def test_builtins_list_every_contraindication_by_key_with_its_lines(name: str) -> None:
    program = load_program(name)
    heats = any(s.heat for p in program.phases for s in p.steps)
    wanted = [c.key for c in CONTRAINDICATIONS if heats or c.key != "reduced_sensation"]
    assert list(program.screening_keys) == wanted
    for entry in program.contraindications:
        item = BY_KEY[str(entry.key)]
        assert item.cite() in entry.text, entry
    text = {c.key: c.text for c in program.contraindications}
    # The ones the lists once missed or narrowed (issue 9), with the article's lines.
    assert "162" in text["osteomyelitis"]
    assert "depression" in text["psychiatric"] and "163" in text["psychiatric"]
    assert "fungus" in text["skin"] and "155" in text["skin"] and "533" in text["skin"]
    assert "538" in text["skin_allergy"] and "540" in text["abdominal_tenderness"]
    assert "third" not in text["hypertension"] and "158" in text["hypertension"]
    assert "any part of the spine" in text["tumour"] and "494" in text["tumour"]


def test_every_article_item_cites_lines_and_device_items_say_so() -> None:
    for item in CONTRAINDICATIONS:
        assert item.lines or item.source == "device guidance", item.key
        assert item.question.endswith("?") and item.reason
    assert {"implant", "thrombosis", "reduced_sensation", "recent_surgery", "pregnancy"} <= set(
        BY_KEY)
    assert "acute_pain" not in {c.key for c in CHECKLIST}  # asked at each session instead


@pytest.mark.parametrize("name", ["lumbar-osteochondrosis", "radiculitis-gentle"])
def test_disease_named_programs_say_the_choice_is_a_doctors(name: str) -> None:
    program = load_program(name)
    disease = "osteochondrosis" if "osteochondrosis" in name else "radiculitis"
    assert disease in program.title.lower()
    assert "doctor's choice" in program.summary
    assert all(n in program.summary for n in ("184-186", "270", "316"))


# -- the format -------------------------------------------------------------------------------


def test_old_free_text_entries_still_load_and_a_key_string_is_that_key(tmp_path: Path) -> None:
    path = tmp_path / "old.toml"
    path.write_text(with_contraindications(
        'contraindications = ["acute pain", "pacemaker or other implants", "tumour"]\n'))
    program = load_program(path)
    assert [c.key for c in program.contraindications] == [None, None, "tumour"]
    assert program.contraindications[0].text == "acute pain"
    assert program.contraindications[2].text == BY_KEY["tumour"].label()
    assert program.screening_keys == ("tumour",)


def test_a_table_entry_without_text_takes_the_catalogue_text(tmp_path: Path) -> None:
    path = tmp_path / "keyed.toml"
    path.write_text(with_contraindications(
        'contraindications = [\n  { key = "edema" },\n  { text = "my own note" },\n]\n'))
    program = load_program(path)
    assert program.contraindications[0].text == "edema, swelling from fluid (line 535)"
    assert program.contraindications[1].key is None


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ('{ key = "tumor", text = "t" }', "no contraindication key 'tumor'"),
        ("{ }", "needs a key or a text"),
        ('{ key = "edema", why = "x" }', "'why' is not a known key"),
        ("42", "a string (a key or free text) or a table"),
    ],
)
def test_bad_entries_name_the_line_of_the_entry(tmp_path: Path, entry: str, needle: str) -> None:
    block = f'contraindications = [\n  {{ key = "edema" }},\n  {entry},\n]\n'
    path = tmp_path / "bad.toml"
    text = with_contraindications(block)
    path.write_text(text)
    with pytest.raises(ProgramError) as info:
        load_program(path)
    lines = text.splitlines()
    assert lines[(info.value.line or 0) - 1].strip() == f"{entry},", info.value
    assert needle in info.value.message
    assert str(info.value.key).startswith("program.contraindications.1")


# -- cushion plan and programs ----------------------------------------------------------------


def test_plan_shows_the_contraindications_in_text_and_json() -> None:
    text = cushion("plan", "lumbar-classic")
    assert text.returncode == 0, text.stderr
    assert "Not for use with" in text.stdout and "a doctor decides" in text.stdout
    assert "chronic osteomyelitis (line 162)" in text.stdout
    data = json.loads(cushion("plan", "radiculitis-gentle", "--json").stdout)
    keys = [c["key"] for c in data["contraindications"]]
    assert keys[0] == "acute_pain" and "reduced_sensation" in keys
    assert all(c["text"] for c in data["contraindications"])


def test_programs_long_shows_summaries_and_contraindications() -> None:
    done = cushion("programs", "--long")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Not for use with") == len(builtin_programs())
    assert "doctor's choice" in done.stdout and "pain when the abdomen is pressed" in done.stdout


# -- user programs and profiles ---------------------------------------------------------------


def test_user_programs_and_profiles_are_found_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    (data / "programs").mkdir(parents=True)
    (data / "profiles").mkdir()
    (data / "programs" / "my-evening.toml").write_text(
        with_contraindications('contraindications = ["tumour"]\n', name="my-evening"))
    # A user file with a built-in's name: the built-in keeps its name.
    (data / "programs" / "lumbar-classic.toml").write_text(
        with_contraindications('contraindications = ["tumour"]\n', name="lumbar-classic"))
    lp4 = builtin_profiles()["lp4-ascii"].read_text()
    (data / "profiles" / "my-cushion.toml").write_text(
        lp4.replace('name = "lp4-ascii"', 'name = "my-cushion"', 1))
    monkeypatch.setenv("CUSHION_DATA_DIR", str(data))
    assert load_program("my-evening").name == "my-evening"
    assert load_program("lumbar-classic").duration_s > 20 * 60  # the built-in, not the copy
    assert load_profile("my-cushion").name == "my-cushion"
    with pytest.raises(ProgramError) as info:
        load_program("my-morning")
    assert "my-evening" in str(info.value) and str(data / "programs") in str(info.value)
    env = dict(os.environ, CUSHION_DATA_DIR=str(data), COLUMNS="200")
    listed = cushion("programs", env=env)
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"my-evening .* yours", listed.stdout)
    assert "lumbar-classic.toml is not used" in listed.stderr
    run = cushion("run", "my-evening", "--profile", "my-cushion", "--speed", "max", "--json",
                  env=env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[0])["profile"] == "my-cushion"
