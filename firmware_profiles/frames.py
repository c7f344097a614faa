"""The frame template language of a profile: ASCII text templates and binary layouts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from firmware_profiles.checksums import ChecksumName  # noqa: TC001  (pydantic needs it)
from firmware_profiles.outputs import FrozenModel

Endian = Literal["big", "little"]


class FieldOptions(FrozenModel):
    """How one named field's value becomes its raw wire value: raw = value * scale + offset."""

    scale: float = Field(1, gt=0, description="Multiply the value by this (10: tenths).")
    offset: int = Field(0, description="Then add this (1: 1-based zone numbering).")
    map: dict[int, int | str] | None = Field(
        None, description="Value -> raw (or ASCII token) table instead of scale/offset."
    )
    per_zone: bool = Field(False, description="Repeat the field once per zone, profile order.")
    separator: str = Field("", description="ASCII only: text between per-zone repeats.")
    bit_base: int = Field(0, ge=0, description="mask only: motor number of bit 0.")
    include_checksum: bool = Field(False, description="length only: count the checksum too.")
    adjust: int = Field(0, description="length only: add this to the counted bytes.")


class ConstItem(FrozenModel):
    """Fixed bytes: a header, a command id."""

    const: Annotated[int, Field(ge=0, le=255)] | list[Annotated[int, Field(ge=0, le=255)]] = (
        Field(description="One byte or a list of bytes.")
    )


class FieldItem(FieldOptions):
    """An unsigned integer field named after the value it carries (or mask / length)."""

    field: str = Field(description="Value name: zone, level, duration, value, mode, mask, ...")
    size: Literal[1, 2, 4] = Field(1, description="Bytes.")
    endian: Endian = "big"


class ChecksumItem(FrozenModel):
    """A checksum over the bytes from `start` up to this field."""

    checksum: ChecksumName
    endian: Endian = "big"
    start: int = Field(0, ge=0, description="First byte covered (0: the frame's first byte).")


def _item_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("const", "field", "checksum"):
            if key in value:
                return key
        return None
    for cls, tag in ((ConstItem, "const"), (FieldItem, "field"), (ChecksumItem, "checksum")):
        if isinstance(value, cls):
            return tag
    return None


LayoutItem = Annotated[
    Annotated[ConstItem, Tag("const")]
    | Annotated[FieldItem, Tag("field")]
    | Annotated[ChecksumItem, Tag("checksum")],
    Discriminator(
        _item_kind,
        custom_error_type="layout_item",
        custom_error_message="each layout item needs one of the keys const, field or checksum",
    ),
]


class FrameSpec(FrozenModel):
    """One frame: `text` (ASCII template) with `fields` options, or a binary `layout`."""

    text: str | None = Field(None, description='ASCII template, e.g. "Z{zone}L{level:02d}\\r\\n".')
    fields: dict[str, FieldOptions] = Field(
        default_factory=dict, description="ASCII only: options per field named in the text."
    )
    layout: tuple[LayoutItem, ...] | None = Field(None, description="Binary: the fields in order.")


class AsciiChecksum(FrozenModel):
    """How the `{checksum}` field of ASCII templates is computed and written (hex digits)."""

    algo: ChecksumName
    start: int = Field(0, ge=0, description="First byte covered; it ends where {checksum} starts.")
    uppercase: bool = True


class Frames(FrozenModel):
    """The frames the controller sends; missing ones are commands the cushion lacks."""

    encoding: Literal["ascii", "binary"]
    line_ending: str | None = Field(None, description="ASCII: the text ending every frame.")
    checksum: AsciiChecksum | None = Field(None, description="ASCII: the {checksum} field.")
    set_zone: FrameSpec | None = None
    set_all: FrameSpec | None = None
    set_frequency: FrameSpec | None = None
    set_heat: FrameSpec | None = None
    set_mode: FrameSpec | None = None
    press: dict[str, FrameSpec] = Field(default_factory=dict, description="Buttons by name.")
    stop: FrameSpec | None = Field(None, description="Required: idempotent all outputs off.")
    keepalive: FrameSpec | None = None
    query: FrameSpec | None = None


class Replies(FrozenModel):
    """The frames the cushion sends back, in the same template language."""

    ack: FrameSpec | None = None
    nak: FrameSpec | None = Field(None, description="Carries a `code` field.")
    status: FrameSpec | None = None
    boot: FrameSpec | None = Field(
        None,
        description="Sent by the cushion unasked when it has started (a boot banner): a "
        "restart mid-session is then noticed at once, before the next update.",
    )
