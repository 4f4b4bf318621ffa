r"""``LoopMasks``: what recurrent-site regularizers hand to the custom loop, by name.

One field per kind of mask the loop's math knows (``lightning_rnn_reg.rnn.loop``), each
``None`` (that op is skipped) or a tensor broadcastable to ``(T, B, H)`` with 3 dimensions
(per step ``(T, B, H|1)``, per sequence ``(1, B|1, H|1)``); ``gate_h_mask`` has a gate axis
after time, ``(T|1, G, B|1, H|1)`` (``G`` = 4 for LSTM, 3 for GRU, in the layer's gate order).
Masks never receive gradients::

    h_mask        m^h    hin = h_{t-1} * m^h_t, the same for every gate   RecurrentDropout
    gate_h_mask   m^h_k  hin_k = h_{t-1} * m^h_{k,t}, one per gate k      (Gal 2016, untied)
    update_mask   m^u    g_t * m^u_t (GRU: n_t * m^u_t)                   UpdateDropout
    cell_mask     m^c    cnew * m^c_t                                     CellDropout
    zone_c        d^c    c_t = d^c c_{t-1} + (1 - d^c) cnew               Zoneout
    zone_h        d^h    h_t = d^h h_{t-1} + (1 - d^h) hnew               Zoneout

It is also a read-only mapping of the fields that are set (``masks["zone_c"]``,
``dict(masks)``, ``**masks``), so code written against the older dictionaries keeps working.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace

from torch import Tensor

__all__ = ["FIELDS", "LoopMasks"]


@dataclass(frozen=True, eq=False)
class LoopMasks(Mapping[str, Tensor]):
    """The masks of one direction of one layer (see the module docstring for each field)."""

    h_mask: Tensor | None = None
    gate_h_mask: Tensor | None = None
    update_mask: Tensor | None = None
    cell_mask: Tensor | None = None
    zone_c: Tensor | None = None
    zone_h: Tensor | None = None

    def __getitem__(self, key: str) -> Tensor:
        value = getattr(self, key, None) if key in FIELDS else None
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return (name for name in FIELDS if getattr(self, name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return set(self) == set(other) and all(self[k] is other[k] for k in self)

    def __hash__(self) -> int:
        return id(self)

    def merge(self, other: Mapping[str, Tensor]) -> LoopMasks:
        """Both sets of masks; a field set by both is an error (two regularizers cannot
        fill one slot of the loop)."""
        both = set(self) & set(other)
        if both:
            raise ValueError(f"two regularizers set the loop masks {sorted(both)}; give one")
        return replace(self, **dict(other))

    def with_fields(self, **changes: Tensor | None) -> LoopMasks:
        """A copy with some fields replaced."""
        return replace(self, **changes)


#: Every field name, in the loop's order.
FIELDS: tuple[str, ...] = tuple(field.name for field in fields(LoopMasks))
