"""Incremental stream parsers: split bytes into frames, resynchronise, report bad frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Generic, TypeVar, cast

from firmware_profiles.ascii_template import AsciiFrame, BadChecksum
from firmware_profiles.binary_template import BinaryFrame
from firmware_profiles.commands import BadFrame
from firmware_profiles.memo import remember

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

T = TypeVar("T")
Values = dict[str, int | float]
Memo = dict[bytes, tuple[T, ...]]

# Longest ASCII line kept while waiting for its line ending; longer means garbage.
MAX_LINE: Final = 256


class _Engine(Generic[T]):
    """What both engines share: the unfinished bytes and the memo of whole chunks parsed."""

    def __init__(self, memo: Memo[T] | None, fresh: Callable[[T], T] | None) -> None:
        self._buf = bytearray()
        self._memo = memo
        self._fresh = fresh

    def feed(self, data: bytes) -> list[T | BadFrame]:
        """Consume bytes; return every complete frame (or bad frame) they finish, in order."""
        if type(data) is not bytes:
            data = bytes(data)
        if self._buf:
            data = bytes(self._buf) + data
            self._buf.clear()
            return self._parse(data)
        memo = self._memo
        if memo is None or len(data) > MAX_LINE:
            return self._parse(data)
        # With nothing pending, the result depends on the bytes alone: usually one whole frame
        # seen many times before (an ack, a keepalive, a setpoint the session repeats).
        fresh = self._fresh
        seen = memo.get(data)
        if seen is not None:
            return list(seen) if fresh is None else [fresh(item) for item in seen]
        out = self._parse(data)
        if not self._buf and BadFrame not in map(type, out):
            # Keep private copies when items are mutable (a reply's fields dict).
            good = cast("list[T]", out)
            remember(memo, data, tuple(good) if fresh is None else tuple(map(fresh, good)))
        return out

    def _parse(self, data: bytes) -> list[T | BadFrame]:
        raise NotImplementedError


class AsciiEngine(_Engine[T]):
    """Split a byte stream into lines and match each against the ASCII frames."""

    def __init__(
        self,
        frames: Sequence[tuple[str, AsciiFrame]],
        line_ending: bytes,
        make: Callable[[str, Values, bytes], T | BadFrame],
        *,
        memo: Memo[T] | None = None,
        fresh: Callable[[T], T] | None = None,
    ) -> None:
        super().__init__(memo, fresh)
        self._ending = line_ending
        self._make = make
        # Try only the frames whose template starts with the line's first character.
        loose = tuple((n, f) for n, f in frames if not f.first)
        self._loose = loose
        self._by_first: dict[str, tuple[tuple[str, AsciiFrame], ...]] = {}
        for name, frame in frames:
            if frame.first:
                self._by_first[frame.first] = (*self._by_first.get(frame.first, ()), (name, frame))
        self._by_first = {k: v + loose for k, v in self._by_first.items()}

    def _parse(self, data: bytes) -> list[T | BadFrame]:
        """Parse data (any unfinished line already prepended) into frames."""
        ending = self._ending
        lines = data.split(ending)
        rest = lines.pop()  # text after the last line ending: an unfinished line
        line = self._line
        # A bare line ending is harmless noise; real firmware skips it.
        out = [line(raw) for raw in lines if raw]
        if len(rest) > MAX_LINE:
            out.append(BadFrame(rest, "line too long"))
        elif rest:
            self._buf += rest
        return out

    def _line(self, raw: bytes) -> T | BadFrame:
        text = raw.decode("latin-1")
        for name, frame in self._by_first.get(text[:1], self._loose):
            try:
                values = frame.decode(text)
            except BadChecksum:
                return BadFrame(raw + self._ending, "bad checksum")
            except ValueError as exc:
                return BadFrame(raw + self._ending, str(exc))
            if values is not None:
                return self._make(name, values, raw)
        return BadFrame(raw + self._ending, "unknown frame")


class _Wait:
    """Marker: a frame may start here but more bytes are needed."""


_WAIT: Final = _Wait()
_Found = tuple[str, BinaryFrame, bytes, bool]


def _dispatch(
    frames: Sequence[tuple[str, BinaryFrame]],
) -> tuple[int, dict[int, tuple[tuple[str, BinaryFrame], ...]]] | None:
    """Pick the byte offset where every frame has a constant and those bytes differ most."""
    best: tuple[int, int] | None = None
    shortest = min(f.length for _, f in frames)
    for offset in range(shortest):
        values = [dict(f.consts).get(offset) for _, f in frames]
        if None in values:
            continue
        distinct = len(set(values))
        if best is None or distinct > best[0]:
            best = (distinct, offset)
    if best is None or best[0] < 2:
        return None
    offset = best[1]
    table: dict[int, list[tuple[str, BinaryFrame]]] = {}
    for name, frame in frames:
        table.setdefault(dict(frame.consts)[offset], []).append((name, frame))
    return offset, {k: tuple(v) for k, v in table.items()}


class BinaryEngine(_Engine[T]):
    """Find fixed-length binary frames in a byte stream by their constants and checksum."""

    def __init__(
        self,
        frames: Sequence[tuple[str, BinaryFrame]],
        make: Callable[[str, Values, bytes], T | BadFrame],
        *,
        memo: Memo[T] | None = None,
        fresh: Callable[[T], T] | None = None,
        plain: Mapping[str, Callable[[tuple[int, ...], bytes], T | BadFrame]] | None = None,
    ) -> None:
        """plain: per frame name, what makes an item straight from a plain frame's slot
        values (frame order), skipping the values dict; other frames go through make."""
        super().__init__(memo, fresh)
        self._frames = tuple(frames)
        self._make = make
        self._plain = {name: maker for name, maker in (plain or {}).items()
                       if any(n == name and f.plain for n, f in self._frames)}
        dispatch = _dispatch(self._frames) if self._frames else None
        self._offset = dispatch[0] if dispatch else -1
        self._table = dispatch[1] if dispatch else {}
        # Dispatch bytes that name exactly one plain frame: (its length, frame, maker).
        self._plain_at: dict[int, tuple[int, BinaryFrame,
                                        Callable[[tuple[int, ...], bytes], T | BadFrame]]] = {}
        for byte, only in self._table.items():
            if len(only) == 1 and only[0][0] in self._plain:
                name, frame = only[0]
                self._plain_at[byte] = (frame.length, frame, self._plain[name])

    def _parse(self, data: bytes) -> list[T | BadFrame]:
        """Parse data (any unfinished bytes already prepended) into frames."""
        n = len(data)
        offset = self._offset
        if 0 <= offset < n:
            # Fast path: exactly one whole, good frame, the usual chunk on a clean link.
            plain = self._plain_at.get(data[offset])
            if plain is not None:
                if plain[0] == n:
                    raws = plain[1].read_plain(data)
                    if raws is not None:
                        return [plain[2](raws, data)]
            elif (only := self._table.get(data[offset])) is not None and len(only) == 1:
                name, frame = only[0]
                if (frame.length == n and frame.consts_match(data, 0, n)
                        and frame.checksum_ok(data)):
                    try:
                        values = frame.decode(data)
                    except ValueError as exc:
                        return [BadFrame(data, str(exc))]
                    return [self._make(name, values, data)]
        out: list[T | BadFrame] = []
        pos = 0
        junk = -1
        match = self._match
        while pos < n:
            found = match(data, pos, n - pos)
            if found is _WAIT:
                break
            if found is None:
                if junk < 0:
                    junk = pos
                pos += 1
                continue
            if junk >= 0:
                out.append(BadFrame(data[junk:pos], "garbage"))
                junk = -1
            assert isinstance(found, tuple)
            name, frame, raw, good = found
            maker = self._plain.get(name)
            if good and maker is not None:
                out.append(maker(tuple(raw[frame.plain_start : frame.plain_end]), raw))
                pos += frame.length
                continue
            if good:
                try:
                    values = frame.decode(raw)
                except ValueError as exc:
                    out.append(BadFrame(raw, str(exc)))
                else:
                    out.append(self._make(name, values, raw))
                pos += frame.length
                continue
            # A truncated frame followed by a good one: restart where the next one may begin.
            step = frame.length
            for p in range(pos + 1, pos + frame.length):
                if match(data, p, n - p) is not None:
                    step = p - pos
                    break
            out.append(BadFrame(data[pos : pos + step], "bad checksum"))
            pos += step
        if junk >= 0:
            out.append(BadFrame(data[junk:pos], "garbage"))
        if pos < n:
            self._buf += data[pos:]
        return out

    def _match(self, buf: bytes, pos: int, avail: int) -> _Found | _Wait | None:
        offset = self._offset
        if offset >= 0 and avail > offset:
            candidates = self._table.get(buf[pos + offset], ())
        else:
            candidates = self._frames
        wait = False
        bad: _Found | None = None
        for name, frame in candidates:
            length = frame.length
            if avail >= length:
                if frame.consts_match(buf, pos, length):
                    raw = buf[pos : pos + length]
                    if frame.checksum_ok(raw):
                        return (name, frame, raw, True)
                    bad = bad or (name, frame, raw, False)
            elif frame.consts_match(buf, pos, avail):
                wait = True
        if wait:
            return _WAIT
        return bad
