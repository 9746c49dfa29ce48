"""allscene: an all-scene intelligent marketing platform for a device ecosystem."""

__version__ = "0.1.0"
