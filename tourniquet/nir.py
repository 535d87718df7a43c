"""Recognise a French social security number (NIR) in a value an access log recorded.

Shape (see shared/reference/domain.md): 13 characters + a 2-digit key.

    s  yy  mm  ddccc  ooo  kk
    |  |   |   |      |    key = 97 - (number mod 97), with 2A -> 19 and 2B -> 18 first
    |  |   |   |      order 001-999
    |  |   |   place of birth: department (01-95, 2A/2B Corsica, 97x/98x overseas, 99 abroad) + commune
    |  |   month: 01-12, 20-42 (month unknown / civil-registry cases), 50 and above (other special cases)
    |  year
    sex 1/2; 3/4 special registrations; 7/8 temporary numbers (NIA)

A classifier that only accepts sex 1/2 and months 01-12 misses real numbers; one that does not
check the key counts any 15-digit value. Both matter when the count goes to the regulator.
"""

from __future__ import annotations

import re

__all__ = ["is_nir", "nir_key", "normalise"]

_SHAPE = re.compile(r"^([1-478])(\d{2})(\d{2})(\d{2}|2A|2B)(\d{3})(\d{3})(\d{2})$")
_SEPARATORS = re.compile(r"[\s.\-]")


def normalise(value: str) -> str:
    """Upper case, spaces/dots/dashes removed (NIRs are often written ``1 85 05 78 006 084 36``)."""
    return _SEPARATORS.sub("", value).upper()


def nir_key(first13: str) -> int:
    """The control key of the first 13 characters (Corsica: 2A counts as 19, 2B as 18)."""
    digits = first13.upper().replace("2A", "19").replace("2B", "18")
    return 97 - int(digits) % 97


def is_nir(value: object) -> bool:
    """True when ``value`` is a well-formed NIR with a correct key."""
    if not isinstance(value, str) or not 13 <= len(value) <= 24:
        return False
    text = normalise(value)
    match = _SHAPE.match(text)
    if match is None:
        return False
    _sex, _year, month, department, _commune, order, key = match.groups()
    month_number = int(month)
    if not (1 <= month_number <= 12 or 20 <= month_number <= 42 or month_number >= 50):
        return False
    if department == "00" or order == "000":
        return False
    return nir_key(text[:13]) == int(key)
