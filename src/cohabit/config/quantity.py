"""Kubernetes resource quantities parsed into cohabit's units, without the kubernetes client.

Quantity grammar follows ``k8s.io/apimachinery/pkg/api/resource``: a decimal number with an
optional binary (``Ki Mi Gi Ti Pi Ei``) or decimal (``n u m k M G T P E``) suffix, or a decimal
exponent (``1e3``). Output units are those of :mod:`cohabit.model`: CPU in millicores, memory
in MiB (rounded up, so a request never shrinks in translation).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = [
    "QuantityError",
    "cpu_milli",
    "memory_mib",
    "parse_quantity",
]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")


MAX_QUANTITY = Decimal("1e30")
"""Largest quantity accepted, base units (cores or bytes): far above any real node, and small
enough that converting it to an integer is instant (``1e999999999`` would not be)."""


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float) -> Decimal:
    """A quantity (``"500m"``, ``"2Gi"``, ``4``) as an exact ``Decimal`` of base units.

    Raises:
        QuantityError: ``value`` is not a valid quantity, or is negative.
    """
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a finite quantity")
        if abs(value) > 10**31:  # before str(): a 5,000-digit int would not convert
            size = f"{value:.3g}" if isinstance(value, float) else \
                f"an integer of {value.bit_length()} bits"
            raise QuantityError(f"{size} is above {MAX_QUANTITY:.0e} base units")
        number = Decimal(str(value))
    else:
        text = str(value).strip()
        match = _QUANTITY.match(text) if len(text) <= 64 else None
        if not match:
            raise QuantityError(f"{_shorten(value)} is not a Kubernetes quantity (e.g. 500m, "
                                "2Gi, 1.5; at most 64 characters)")
        digits, suffix = match.groups()
        try:
            base = Decimal(digits)
        except InvalidOperation as exc:
            raise QuantityError(f"{value!r} is not a Kubernetes quantity") from exc
        if base.adjusted() > 30:  # checked before scaling: 1e999999999 stays cheap
            raise QuantityError(f"{_shorten(value)} is above {MAX_QUANTITY:.0e} base units")
        number = base * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])
    if number < 0:
        raise QuantityError(f"{value!r} is negative")
    if number > MAX_QUANTITY:
        raise QuantityError(f"{_shorten(value)} is above {MAX_QUANTITY:.0e} base units")
    return number


def _shorten(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def cpu_milli(value: str | int | float) -> int:
    """CPU quantity in millicores, rounded up (``"250m"`` -> 250, ``"1.5"`` -> 1500)."""
    return int(math.ceil(parse_quantity(value) * 1000))


def memory_mib(value: str | int | float) -> int:
    """Memory quantity in MiB, rounded up (``"512Mi"`` -> 512, ``"1G"`` -> 954)."""
    return int(math.ceil(parse_quantity(value) / (2**20)))

