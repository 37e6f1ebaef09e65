"""Payload JSON with exact numbers: money never passes through a binary float.

PostgreSQL keeps a jsonb number as a decimal (numeric); Python's json module reads a
fraction as a float, so ``1.000000000000000001`` would become ``1.0``. Here a fraction reads
as a ``Decimal`` and is written back digit for digit, in plain notation (jsonb's own: 1e2 is
stored as 100), so a payload reaches the rail with every number and string it was stored
with. simplejson writes the JSON because the standard library cannot emit a number it did
not format itself.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import simplejson

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MAX_PAYLOAD_BYTES", "MAX_PAYLOAD_DEPTH", "canonical_json", "loads"]

# The database's limits (schema 0010, outbox_require_payload): bytes of jsonb's text form, and
# levels a value may sit below the top object.
MAX_PAYLOAD_BYTES: Final = 1_048_576
MAX_PAYLOAD_DEPTH: Final = 64


def loads(text: str | bytes) -> Mapping[str, object]:
    """A payload from its JSON text: fractions as Decimal, integers as int, never a float."""
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    value: Mapping[str, object] = _DECODER.decode(text)
    return value


def canonical_json(payload: Mapping[str, object]) -> str:
    """Compact JSON with sorted keys and exact numbers: the same payload, the same text.

    A float a service put in the payload is written as Python's repr (what the database then
    stores exactly); NaN and infinities are refused (ValueError), as jsonb refuses them.
    """
    text: str = _ENCODER.encode(payload)
    return text


def _exact_number(value: object) -> simplejson.RawJSON:
    if isinstance(value, Decimal):
        if not value.is_finite():
            msg = f"payload numbers must be finite, not {value}"
            raise ValueError(msg)
        return simplejson.RawJSON(format(value, "f"))
    msg = f"payload values must be JSON: {type(value).__name__} is not"
    raise TypeError(msg)


# One decoder and one encoder for every payload: json.loads and simplejson.dumps would build
# a new one per call when given options, a cost a relayer paid twice per send.
_DECODER: Final = json.JSONDecoder(parse_float=Decimal)
_ENCODER: Final = simplejson.JSONEncoder(
    sort_keys=True,
    separators=(",", ":"),
    ensure_ascii=False,
    allow_nan=False,
    use_decimal=False,
    default=_exact_number,
)
