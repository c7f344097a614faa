"""Compile a binary layout (consts, integer fields, length, checksum) to fixed-offset slots."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from firmware_profiles.checksums import CHECKSUM_SIZES, CHECKSUMS, CHECKSUMS_FROM
from firmware_profiles.commands import ProfileError
from firmware_profiles.frames import ChecksumItem, ConstItem, FieldItem
from firmware_profiles.problem import Problem

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from firmware_profiles.ascii_template import FieldFactory, Loc
    from firmware_profiles.fieldcodec import FieldCodec
    from firmware_profiles.frames import FrameSpec


@dataclass(frozen=True, slots=True)
class Slot:
    """One integer field at a fixed offset."""

    offset: int
    size: int
    byteorder: str  # "big" | "little"
    field: FieldCodec


@dataclass(frozen=True, slots=True)
class BinaryFrame:
    """A compiled binary frame: fixed length, constant bytes, integer slots, one checksum."""

    name: str
    length: int
    template: bytes  # constants (and the length field) in place, zeros elsewhere
    consts: tuple[tuple[int, int], ...]  # (offset, byte) of every constant byte
    slots: tuple[Slot, ...]
    checksum: Callable[[bytes | bytearray], int] | None
    checksum_offset: int
    checksum_size: int
    checksum_start: int
    checksum_order: str
    mask_base: int | None

    runs: tuple[tuple[int, bytes], ...]  # (offset, bytes) of every run of constant bytes

    keys: tuple[str, ...]  # the slots' value keys, in frame order
    # Plain: every slot is one byte whose value is its raw byte, and the slots are contiguous
    # at [plain_start, plain_end), right before the checksum (if any). Such a frame is head +
    # the values as bytes + checksum + tail, the checksum continued from seed.
    plain: bool
    plain_ranges: tuple[tuple[int, int, int], ...]  # (slot, lo, hi) of slots not allowing 0..255
    plain_start: int
    plain_end: int
    head: bytes  # template[:plain_start], all constants
    tail: bytes  # the constants after the checksum (or after the slots when there is none)
    checksum_from: Callable[[int, bytes | bytearray], int] | None
    seed: int  # the checksum of template[checksum_start:plain_start]

    def encode_plain(self, raws: Iterable[int]) -> bytes:
        """Return a plain frame for its slot values in frame order; ValueError or TypeError if
        one is not an allowed byte (the generic `encode` then names the field and the range)."""
        body = bytes(raws)
        for at, lo, hi in self.plain_ranges:
            if not lo <= body[at] <= hi:
                raise ValueError(at)
        cs_from = self.checksum_from
        if cs_from is None:
            return self.head + body + self.tail
        crc = cs_from(self.seed, body)
        return self.head + body + crc.to_bytes(self.checksum_size, self.checksum_order) + self.tail  # type: ignore[arg-type]

    def read_plain(self, frame: bytes) -> tuple[int, ...] | None:
        """Return a plain frame's slot values if its constants and checksum are right, else None
        (frame must be exactly this frame's length)."""
        start = self.plain_start
        end = self.plain_end
        if frame[:start] != self.head:
            return None
        tail = self.tail
        cs_from = self.checksum_from
        if cs_from is None:
            if tail and frame[end:] != tail:
                return None
            return tuple(frame[start:end])
        stop = end + self.checksum_size
        if tail and frame[stop:] != tail:
            return None
        body = frame[start:end]
        got = int.from_bytes(frame[end:stop], self.checksum_order)  # type: ignore[arg-type]
        if got != cs_from(self.seed, body):
            return None
        return tuple(body)

    def encode(self, values: Mapping[str, Any]) -> bytes:
        """Return the frame bytes for a flat values dict."""
        if self.plain:
            try:
                return self.encode_plain([values[key] for key in self.keys])
            except (KeyError, ValueError, TypeError):
                pass  # the generic path raises the right error, or converts (a float level)
        buf = bytearray(self.template)
        try:
            for slot in self.slots:
                f = slot.field
                value = values[f.key]
                if f.fast and type(value) is int:
                    raw = value + f.offset
                    if raw < f.lo or raw > f.hi:
                        f.to_raw(value)  # raises, naming the field and the range
                else:
                    raw = f.to_raw(value)  # type: ignore[assignment]
                if slot.size == 1:
                    buf[slot.offset] = raw
                else:
                    buf[slot.offset : slot.offset + slot.size] = raw.to_bytes(
                        slot.size, slot.byteorder  # type: ignore[arg-type]
                    )
        except KeyError as exc:
            raise ProfileError(f"{self.name} needs a value for '{exc.args[0]}'.") from None
        if self.checksum is not None:
            end = self.checksum_offset
            value = self.checksum(buf[self.checksum_start : end])
            buf[end : end + self.checksum_size] = value.to_bytes(
                self.checksum_size, self.checksum_order  # type: ignore[arg-type]
            )
        return bytes(buf)

    def consts_match(self, buf: bytes | bytearray, pos: int, avail: int) -> bool:
        """Return whether every constant byte within the `avail` bytes at pos matches."""
        if avail >= self.length:
            for offset, run in self.runs:
                start = pos + offset
                if buf[start : start + len(run)] != run:
                    return False
            return True
        for offset, byte in self.consts:
            if offset >= avail:
                return True
            if buf[pos + offset] != byte:
                return False
        return True

    def checksum_ok(self, frame: bytes) -> bool:
        """Return whether a full frame's checksum is right (True when it has none)."""
        if self.checksum is None:
            return True
        end = self.checksum_offset
        got = int.from_bytes(frame[end : end + self.checksum_size], self.checksum_order)  # type: ignore[arg-type]
        return got == self.checksum(frame[self.checksum_start : end])

    def decode(self, frame: bytes) -> dict[str, int | float]:
        """Return the values of a full frame; ValueError if a raw value is impossible."""
        out: dict[str, int | float] = {}
        for slot in self.slots:
            if slot.size == 1:
                raw = frame[slot.offset]
            else:
                raw = int.from_bytes(frame[slot.offset : slot.offset + slot.size], slot.byteorder)  # type: ignore[arg-type]
            f = slot.field
            out[f.key] = raw - f.offset if f.fast else f.from_raw(raw)
        return out


def _runs(consts: list[tuple[int, int]]) -> tuple[tuple[int, bytes], ...]:
    runs: list[tuple[int, bytearray]] = []
    for offset, byte in sorted(consts):
        if runs and runs[-1][0] + len(runs[-1][1]) == offset:
            runs[-1][1].append(byte)
        else:
            runs.append((offset, bytearray([byte])))
    return tuple((offset, bytes(run)) for offset, run in runs)


def compile_binary(
    name: str, spec: FrameSpec, loc: Loc, *, zones: int, make_field: FieldFactory
) -> BinaryFrame:
    """Compile one binary frame spec; Problem (at loc) if the layout is malformed."""
    if spec.layout is None or spec.text is not None or spec.fields:
        raise Problem(loc, "a binary profile's frame needs `layout` (and no `text` or `fields`).",
                      "Write layout = [{ const = [0xAA, 0x55] }, { field = \"level\" }, ...].")
    lloc = (*loc, "layout")
    template = bytearray()
    consts: list[tuple[int, int]] = []
    slots: list[Slot] = []
    length_at: tuple[int, FieldItem, Loc] | None = None
    checksum: tuple[int, ChecksumItem, Loc] | None = None
    mask_base: int | None = None
    used: set[str] = set()
    for n, item in enumerate(spec.layout):
        iloc = (*lloc, n)
        if checksum is not None and not isinstance(item, ConstItem):
            raise Problem(iloc, "only constants may follow the checksum.")
        if isinstance(item, ConstItem):
            data = [item.const] if isinstance(item.const, int) else item.const
            consts.extend((len(template) + i, b) for i, b in enumerate(data))
            template.extend(data)
        elif isinstance(item, ChecksumItem):
            if item.start >= len(template):
                raise Problem((*iloc, "start"), f"the checksum would cover no bytes (start "
                              f"{item.start}, checksum at byte {len(template)}).")
            checksum = (len(template), item, iloc)
            template.extend(bytes(CHECKSUM_SIZES[item.checksum]))
        elif item.field == "length":
            if length_at is not None:
                raise Problem(iloc, "a frame has one length field.")
            length_at = (len(template), item, iloc)
            template.extend(bytes(item.size))
        else:
            if item.field in used:
                raise Problem((*iloc, "field"), f"field '{item.field}' appears twice.")
            used.add(item.field)
            if item.field == "mask":
                mask_base = item.bit_base
            capacity = (1 << (8 * item.size)) - 1
            indices: list[int | None] = list(range(zones)) if item.per_zone else [None]
            for index in indices:
                codec = make_field(item.field, index, item, capacity, iloc)
                if codec.from_map is not None and any(isinstance(k, str) for k in codec.from_map):
                    raise Problem((*iloc, "map"), "a binary field maps values to integers only.")
                slots.append(Slot(len(template), item.size, item.endian, codec))
                template.extend(bytes(item.size))
    if not consts:
        raise Problem(lloc, "a binary frame needs at least one constant byte to be recognised.",
                      "Start it with a header or command id, e.g. { const = 0xA5 }.")
    if length_at is not None:
        offset, item, iloc = length_at
        end = checksum[0] if checksum is not None and not item.include_checksum else len(template)
        value = end - (offset + item.size) + item.adjust
        if not 0 <= value < (1 << (8 * item.size)):
            raise Problem(iloc, f"the length value {value} does not fit {item.size} byte(s).")
        raw = value.to_bytes(item.size, item.endian)
        template[offset : offset + item.size] = raw
        consts.extend((offset + i, b) for i, b in enumerate(raw))
    cs_fn = None
    cs_from = None
    cs_offset = cs_size = cs_start = 0
    cs_order = "big"
    if checksum is not None:
        cs_offset, cs_item, _ = checksum
        cs_fn = CHECKSUMS[cs_item.checksum]
        cs_from = CHECKSUMS_FROM.get(cs_item.checksum)
        cs_size = CHECKSUM_SIZES[cs_item.checksum]
        cs_start = cs_item.start
        cs_order = cs_item.endian
    plain_end = slots[-1].offset + 1 if slots else (cs_offset if checksum else len(template))
    plain_start = plain_end - len(slots)
    plain = (
        all(s.size == 1 and s.field.fast and s.field.offset == 0 for s in slots)
        and [s.offset for s in slots] == list(range(plain_start, plain_end))
        and (checksum is None or (cs_from is not None and cs_offset == plain_end
                                  and cs_start <= plain_start))
    )
    seed = cs_fn(template[cs_start:plain_start]) if plain and cs_fn is not None else 0
    return BinaryFrame(
        name=name,
        length=len(template),
        template=bytes(template),
        consts=tuple(sorted(consts)),
        slots=tuple(slots),
        checksum=cs_fn,
        checksum_offset=cs_offset,
        checksum_size=cs_size,
        checksum_start=cs_start,
        checksum_order=cs_order,
        mask_base=mask_base,
        runs=_runs(consts),
        keys=tuple(slot.field.key for slot in slots),
        plain=plain,
        plain_ranges=tuple((i, s.field.lo, s.field.hi) for i, s in enumerate(slots)
                           if (s.field.lo, s.field.hi) != (0, 255)),
        plain_start=plain_start,
        plain_end=plain_end,
        head=bytes(template[:plain_start]),
        tail=bytes(template[plain_end + cs_size :]),
        checksum_from=cs_from if plain else None,
        seed=seed,
    )
