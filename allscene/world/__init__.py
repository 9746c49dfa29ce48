"""The simulated device ecosystem: people, households, devices and their days.

:func:`generate` writes events the platform may read (``events/``, exactly
:data:`allscene.events.schema.ARROW_SCHEMA`), vendor-style reference data (``reference/``) and
the truth set only tests and benchmarks may read (``truth/``). See :mod:`allscene.world.generate`.
"""

from allscene.world.generate import generate

__all__ = ["generate"]
