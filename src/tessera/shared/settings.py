"""What the settings models of the identity domain and the integration service share.

`…_FILE` variables that read a secret from a file (Docker/Kubernetes secrets), and the check of
an issuer URL.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["check_issuer", "is_loopback_host", "read_secret_files"]


def read_secret_files(
    data: Any, prefix: str, fields: Iterable[str], error_cls: type[Exception]
) -> Any:
    """Fill each field not given from the file named by `<prefix><FIELD>_FILE`, if set.

    For a pydantic `model_validator(mode="before")`: `data` is the raw input. The file's text is
    stripped; a file that cannot be read raises `error_cls` naming the variable and the path.
    """
    if not isinstance(data, dict):
        return data
    for name in fields:
        variable = f"{prefix}{name.upper()}_FILE"
        path = os.environ.get(variable)
        if path and name not in data:
            try:
                data[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise error_cls(f"{variable}: {exc.strerror}: {path}") from None
    return data


def check_issuer(value: str) -> str:
    """An issuer is an http(s) URL without query or fragment (RFC 8414 §2); no trailing `/`."""
    if "?" in value or "#" in value or not value.startswith(("https://", "http://")):
        raise ValueError("the issuer must be an http(s) URL without query or fragment")
    return value.rstrip("/")


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address (an IPv6 one with or without brackets)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
