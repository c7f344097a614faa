"""Compile an ASCII text template ("Z{zone}L{level:02d}*{checksum}\\r\\n") to encode and match."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Any

from firmware_profiles.checksums import CHECKSUM_SIZES, CHECKSUMS
from firmware_profiles.commands import ProfileError
from firmware_profiles.fieldcodec import FieldCodec
from firmware_profiles.frames import AsciiChecksum, FieldOptions, FrameSpec
from firmware_profiles.problem import Problem

Loc = tuple[str | int, ...]
FieldFactory = Callable[[str, int | None, FieldOptions, int | None, Loc], FieldCodec]

_SPEC = re.compile(r"^(?:0([1-9]\d?))?([dXx]?)$")
_DIGITS = {"d": "[0-9]", "X": "[0-9A-F]", "x": "[0-9a-f]"}
_BASE = {"d": 10, "X": 16, "x": 16}


class BadChecksum(ValueError):
    """The frame matched its template but its checksum is wrong."""


@dataclass(frozen=True, slots=True)
class AsciiFrame:
    """A compiled ASCII frame: format string for encoding, regex for matching one line."""

    name: str
    head: str  # str.format template of everything before the checksum (or the whole frame)
    tail: str  # literal text after the checksum, line ending included
    fields: tuple[FieldCodec, ...]
    bases: tuple[int, ...]  # 10 or 16 per field; 0 for a mapped text token
    regex: re.Pattern[str]  # matches the frame without its line ending
    checksum: Callable[[bytes | bytearray], int] | None
    checksum_start: int
    checksum_format: str
    mask_base: int | None  # bit_base of a mask field, None if the frame has none
    first: str  # the template's first character if it is literal, else ""

    def encode(self, values: Mapping[str, Any]) -> bytes:
        """Return the frame bytes for a flat values dict."""
        raws: list[int | str] = []
        try:
            for f in self.fields:
                value = values[f.key]
                if f.fast and type(value) is int and f.lo <= value + f.offset <= f.hi:
                    raws.append(value + f.offset)
                else:
                    raws.append(f.to_raw(value))
        except KeyError as exc:
            raise ProfileError(f"{self.name} needs a value for '{exc.args[0]}'.") from None
        head = self.head.format(*raws).encode("ascii")
        if self.checksum is None:
            return head
        digits = format(self.checksum(head[self.checksum_start :]), self.checksum_format)
        return head + (digits + self.tail).encode("ascii")

    def decode(self, line: str) -> dict[str, int | float] | None:
        """Return the values of a line (no line ending) if it is this frame, else None.

        Raises BadChecksum or ValueError when the line has this frame's shape but is wrong.
        """
        m = self.regex.fullmatch(line)
        if m is None:
            return None
        groups = m.groups()
        if self.checksum is not None:
            start = m.start(len(groups))
            data = line[self.checksum_start : start].encode("latin-1")
            if int(groups[-1], 16) != self.checksum(data):
                raise BadChecksum("bad checksum")
        out: dict[str, int | float] = {}
        for f, base, text in zip(self.fields, self.bases, groups, strict=False):
            if f.fast:
                out[f.key] = int(text, base) - f.offset
            else:
                out[f.key] = f.from_raw(int(text, base) if base else text)
        return out


def compile_ascii(
    name: str,
    spec: FrameSpec,
    loc: Loc,
    *,
    line_ending: str,
    checksum: AsciiChecksum | None,
    zones: int,
    make_field: FieldFactory,
) -> AsciiFrame:
    """Compile one ASCII frame spec; Problem (at loc) if the template is malformed."""
    text = spec.text
    if text is None or spec.layout is not None:
        raise Problem(loc, "an ASCII profile's frame needs `text` and no `layout`.",
                      'Write e.g. text = "PING\\r\\n".')
    tloc = (*loc, "text")
    if not text.endswith(line_ending) or line_ending in text[: -len(line_ending)]:
        raise Problem(tloc, f"the template must end with the line ending {line_ending!r} "
                      "and contain it nowhere else.", "Fix the text or frames.line_ending.")
    try:
        parsed = list(Formatter().parse(text[: -len(line_ending)]))
    except ValueError as exc:
        raise Problem(tloc, f"the template is malformed: {exc}.",
                      "Write fields as {name} or {name:02d}; double a literal brace.") from exc

    head: list[str] = []
    tail: list[str] = []
    regex: list[str] = []
    fields: list[FieldCodec] = []
    bases: list[int] = []
    cs_fn: Callable[[bytes | bytearray], int] | None = None
    cs_fmt = ""
    mask_base: int | None = None
    used: set[str] = set()
    prev_variable = False
    for literal, field, fmt, conversion in parsed:
        if literal:
            if cs_fn:
                tail.append(literal)
            else:
                head.append(literal.replace("{", "{{").replace("}", "}}"))
            regex.append(re.escape(literal))
            prev_variable = False
        if field is None:
            continue
        if cs_fn is not None:
            raise Problem(tloc, "{checksum} must be the last field of the template.")
        if conversion or not field.isidentifier():
            raise Problem(tloc, f"field '{{{field}}}' is not a plain name.",
                          "Write fields as {name} or {name:02d}.")
        if field == "checksum":
            if checksum is None:
                raise Problem(tloc, "the template uses {checksum} but frames.checksum is not set.",
                              'Add checksum = { algo = "xor8" } under [frames].')
            cs_fn = CHECKSUMS[checksum.algo]
            digits = 2 * CHECKSUM_SIZES[checksum.algo]
            cs_fmt = f"0{digits}{'X' if checksum.uppercase else 'x'}"
            regex.append(f"({_DIGITS[cs_fmt[-1]]}{{{digits}}})")
            continue
        if field in used:
            raise Problem(tloc, f"field '{field}' appears twice.")
        used.add(field)
        m = _SPEC.match(fmt or "")
        if m is None:
            raise Problem(tloc, f"field '{field}' has format '{fmt}'.",
                          "Use d, 0Nd (N digits), X, 0NX, x or 0Nx.")
        width: int | None = int(m.group(1)) if m.group(1) else None
        kind = m.group(2) or "d"
        if width is None and prev_variable:
            raise Problem(tloc, f"field '{field}' follows another variable-width field "
                          "directly, so the two cannot be told apart.",
                          "Give one a fixed width, e.g. {x:02d}.")
        opts = spec.fields.get(field, FieldOptions())
        if field == "mask":
            mask_base = opts.bit_base
        capacity = None if width is None else _BASE[kind] ** width - 1
        indices: list[int | None] = list(range(zones)) if opts.per_zone else [None]
        for n, index in enumerate(indices):
            if n:
                head.append(opts.separator.replace("{", "{{").replace("}", "}}"))
                regex.append(re.escape(opts.separator))
            floc = (*loc, "fields", field) if field in spec.fields else tloc
            codec = make_field(field, index, opts, capacity, floc)
            tokens = codec.from_map is not None and any(isinstance(k, str) for k in codec.from_map)
            i = len(fields)
            fields.append(codec)
            if tokens:
                assert codec.from_map is not None
                alts = sorted((str(k) for k in codec.from_map), key=len, reverse=True)
                regex.append("(" + "|".join(map(re.escape, alts)) + ")")
                head.append(f"{{{i}}}")
                bases.append(0)
            else:
                chars = _DIGITS[kind]
                regex.append(f"({chars}{{{width}}})" if width else f"({chars}+)")
                head.append(f"{{{i}:{'0' + str(width) if width else ''}{kind}}}")
                bases.append(_BASE[kind])
        prev_variable = width is None and not opts.separator
    unknown = set(spec.fields) - used
    if unknown:
        raise Problem((*loc, "fields", sorted(unknown)[0]),
                      f"options for '{sorted(unknown)[0]}', which the text does not use.",
                      "Remove them or add the field to the text.")
    ending = line_ending.replace("{", "{{").replace("}", "}}")
    return AsciiFrame(
        name=name,
        head="".join(head) if cs_fn else "".join(head) + ending,
        tail="".join(tail) + line_ending if cs_fn else "",
        fields=tuple(fields),
        bases=tuple(bases),
        regex=re.compile("".join(regex)),
        checksum=cs_fn,
        checksum_start=checksum.start if checksum else 0,
        checksum_format=cs_fmt,
        mask_base=mask_base,
        first=parsed[0][0][:1] if parsed and parsed[0][0] else "",
    )
