"""Dependency floors and the constraints (lock) file (issue 12).

A floor in pyproject.toml that admits a version with a known vulnerability lets any install
that does not use constraints.txt (a user's `pip install tessera-idp`) pick it; the constraints
file must pin the whole resolved set, at versions past every entry of the table below.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]

# Package → the first version without the known vulnerabilities named in the comment.
FIRST_FIXED: dict[str, str] = {
    # CVE-2023-50782 (42.0.0), CVE-2024-26130 (42.0.4), CVE-2024-12797 (44.0.1), CVE-2026-26007
    "cryptography": "46.0.5",
    # CVE-2024-22195, CVE-2024-34064, CVE-2024-56201, CVE-2024-56326, CVE-2025-27516
    "jinja2": "3.1.6",
    # CVE-2024-47874, CVE-2025-54121, CVE-2025-62727, CVE-2026-48710, CVE-2026-48817,
    # CVE-2026-48818, CVE-2026-54282, CVE-2026-54283
    "starlette": "1.3.1",
    "fastapi": "0.109.1",  # CVE-2024-24762
    # CVE-2024-24762, CVE-2024-53981, CVE-2026-24486, CVE-2026-40347, CVE-2026-42561,
    # CVE-2026-53538, CVE-2026-53539, CVE-2026-53540
    "python-multipart": "0.0.31",
    "h11": "0.16.0",  # CVE-2025-43859
    "uvicorn": "0.11.7",  # CVE-2020-7694, CVE-2020-7695
    "joserfc": "1.4.2",  # CVE-2025-65015
    # CVE-2024-37568, CVE-2025-59420, CVE-2025-61920, CVE-2026-28802, CVE-2026-27962,
    # CVE-2026-28498, CVE-2026-41425, CVE-2026-44681
    "authlib": "1.7.2",
    "setuptools": "78.1.1",  # CVE-2024-6345, CVE-2025-47273
    "pydantic": "2.4.0",  # CVE-2024-3772
    "orjson": "3.9.15",  # CVE-2024-27454
    "redis": "4.5.4",  # CVE-2023-28858, CVE-2023-28859
    "pyyaml": "5.4",  # CVE-2020-14343
    "mako": "1.2.2",  # CVE-2022-40023
    "idna": "3.7",  # CVE-2024-3651
    "certifi": "2024.7.4",  # CVE-2024-39689
    "pygments": "2.20.0",  # CVE-2026-4539
    "urllib3": "2.7.0",  # CVE-2026-44431, CVE-2026-44432
    "cbor2": "5.6.2",  # CVE-2024-26134
    "aiosmtpd": "1.4.6",  # CVE-2024-27305, CVE-2024-34083
    "dnspython": "2.6.1",  # CVE-2023-29483 (email-validator's, for scim2-models)
}


def pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirements() -> list[Requirement]:
    """Every requirement pyproject.toml states: runtime, the dev extra and the build system."""
    data = pyproject()
    project = data["project"]
    assert isinstance(project, dict)
    build = data["build-system"]
    assert isinstance(build, dict)
    lines = [*project["dependencies"], *project["optional-dependencies"]["dev"], *build["requires"]]
    return [Requirement(line) for line in lines]


def constraints() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in (ROOT / "constraints.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt pins exactly (==), not {line!r}"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def floor(requirement: Requirement) -> Version | None:
    bounds = [
        Version(s.version) for s in requirement.specifier if s.operator in (">=", ">", "~=", "==")
    ]
    return max(bounds) if bounds else None


def test_no_dependency_floor_admits_a_version_with_a_known_vulnerability() -> None:
    too_low = []
    for requirement in requirements():
        fixed = FIRST_FIXED.get(canonicalize_name(requirement.name))
        if fixed is None:
            continue
        lowest = floor(requirement)
        if lowest is None or lowest < Version(fixed):
            too_low.append(f"{requirement} (needs >= {fixed})")
    assert too_low == []


def test_constraints_pin_no_version_with_a_known_vulnerability() -> None:
    pins = constraints()
    vulnerable = [
        f"{name}=={pins[name]} (needs >= {fixed})"
        for name, fixed in FIRST_FIXED.items()
        if name in pins and pins[name] < Version(fixed)
    ]
    assert vulnerable == []


def _closure(name: str, extras: frozenset[str], seen: set[tuple[str, frozenset[str]]]) -> None:
    """The distributions `name[extras]` needs, by their installed metadata, into `seen`."""
    for line in metadata.distribution(name).requires or []:
        requirement = Requirement(line)
        environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
        if requirement.marker is not None and not any(
            requirement.marker.evaluate(env) for env in environments
        ):
            continue
        key = canonicalize_name(requirement.name)
        wanted = frozenset(requirement.extras)
        if (key, wanted) in seen:
            continue
        seen.add((key, wanted))
        _closure(requirement.name, wanted, seen)


def test_every_dependency_is_pinned_in_the_constraints_file() -> None:
    """The whole resolved set of `.[dev]` (direct and transitive), each pin within the range
    pyproject.toml asks for."""
    pins = constraints()
    reached: set[tuple[str, frozenset[str]]] = set()
    _closure("tessera-idp", frozenset({"dev"}), reached)
    needed = {name for name, _ in reached}
    assert sorted(needed - set(pins)) == []
    outside = [
        f"{r.name}=={pins[canonicalize_name(r.name)]} not in {r.specifier}"
        for r in requirements()
        if canonicalize_name(r.name) in pins and pins[canonicalize_name(r.name)] not in r.specifier
    ]
    assert outside == []
