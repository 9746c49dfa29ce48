"""Identity: device → person → household. Counts downstream are of people, not devices."""

from allscene.identity.graph import device_graph

__all__ = ["device_graph"]
