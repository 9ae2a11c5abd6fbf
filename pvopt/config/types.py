"""Value types several sections share: host names, HH:MM times."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from pvopt.kinds.base import not_blank

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def host_name(value: str) -> str:
    """A host name or address: not a URL, not host:port, no spaces."""
    not_blank(value)
    if "://" in value:
        raise ValueError(f"{value!r} is not a URL: give the host name or address only")
    if " " in value or "/" in value:
        raise ValueError(f"{value!r} is not a host name or address")
    if value.count(":") == 1:  # one colon: host:port (an IPv6 address has several)
        raise ValueError(f"{value!r}: put the port in `port`, the host alone here")
    return value


Host = Annotated[str, AfterValidator(host_name)]
