"""Find cushions on Bluetooth LE and tell which profile each one matches."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any

from bleak import BleakScanner
from bleak.exc import BleakError
from platformdirs import user_config_path

from controller.errors import DeviceError, UsageError
from firmware_profiles import Profile, builtin_profiles, load_profile

if TYPE_CHECKING:
    from pathlib import Path

    from bleak.backends.scanner import AdvertisementData


@dataclass(frozen=True, slots=True)
class Found:
    """A cushion seen on the air, with the profiles whose BLE identity it matches."""

    address: str
    name: str | None
    rssi: int
    profiles: tuple[str, ...]

    @property
    def identity(self) -> str:
        """Return the stable identity (address plus profile) per-device settings key on."""
        profile = self.profiles[0] if len(self.profiles) == 1 else "?"
        return f"ble:{self.address}#{profile}"


def user_profile_dir() -> Path:
    """Return where a user keeps their own profile files (e.g. ~/.config/cushion/profiles)."""
    return user_config_path("cushion") / "profiles"


def known_profiles() -> list[Profile]:
    """Return every built-in profile and every profile file in the user's profile folder."""
    paths = list(builtin_profiles().values())
    folder = user_profile_dir()
    if folder.is_dir():
        paths += sorted(folder.glob("*.toml"))
    return [load_profile(path) for path in paths]


def matches(profile: Profile, name: str | None, adv: AdvertisementData | None) -> bool:
    """Tell whether an advertisement fits a profile's BLE identity."""
    ble = profile.ble
    if ble is None:
        return False
    uuids = {u.lower() for u in (adv.service_uuids if adv else [])}
    by_name = bool(name) and any(fnmatch(name or "", p) for p in ble.name_patterns)
    by_service = ble.service_uuid.lower() in uuids
    if not (by_name or by_service):
        return False
    if ble.manufacturer_id is not None and adv is not None and adv.manufacturer_data:
        return ble.manufacturer_id in adv.manufacturer_data
    return True


async def scan(timeout_s: float, profiles: list[Profile], **backend: Any) -> list[Found]:
    """Scan for `timeout_s` and return what was seen, cushions first, strongest signal first."""
    try:
        seen = await BleakScanner.discover(timeout=timeout_s, return_adv=True, **backend)
    except (BleakError, OSError) as exc:
        from controller.transports.ble import classify

        hint = classify(exc).hint
        raise DeviceError(f"cannot scan for Bluetooth devices: {exc}.", hint=hint) from exc
    found = []
    for device, adv in seen.values():
        name = adv.local_name or device.name
        names = tuple(p.name for p in profiles if matches(p, name, adv))
        found.append(Found(device.address, name, adv.rssi, names))
    return sorted(found, key=lambda f: (not f.profiles, -f.rssi))


def pick_profile(found: Found, wanted: str | None) -> str:
    """Choose the profile for a found device: the one given, or the only one that matches."""
    if wanted is not None:
        return wanted
    if len(found.profiles) == 1:
        return found.profiles[0]
    if not found.profiles:
        raise UsageError(
            f"{found.name or found.address} matches no known cushion profile.",
            hint=f"Name one with --profile, or add a profile file for it to {user_profile_dir()}.",
        )
    raise UsageError(
        f"{found.name or found.address} matches several profiles: {', '.join(found.profiles)}.",
        hint="Choose one with --profile.",
    )
