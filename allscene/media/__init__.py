"""Media: the placements an ad can appear in across devices, and their formats (OpenRTB, VAST).

See :mod:`allscene.media.placements`.
"""

from allscene.media.placements import (
    Catalog,
    Format,
    Placement,
    PlacementError,
    load_placements,
    placement_for_imp,
)

__all__ = ["Catalog", "Format", "Placement", "PlacementError", "load_placements",
           "placement_for_imp"]
