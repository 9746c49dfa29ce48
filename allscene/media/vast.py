"""VAST 4.2 documents for video and TV placements.

:func:`vast_for` turns a decision with a video creative into an InLine ad: the ad serving id
is the decision id, the impression and click-tracking URLs are the decision's signed links,
and the creative's media file is the only ``MediaFile``. :func:`no_ad` is the empty answer
(a VAST element with no ad, which players read as "nothing to show"). Documents are written
with the standard library's ElementTree; tests validate every one against the IAB's
``vast_4.2.xsd`` (``shared/data/iab_vast_xsd``).

Examples
--------
>>> xml = vast_for("dec-1", {"id": "tvc15", "format": "video", "url": "https://cdn.example/a.mp4",
...                          "mime": "video/mp4", "w": 1920, "h": 1080, "duration_s": 15},
...                advertiser="Acme", title="Spring SUV", impression_url="https://t/imp?x=1",
...                click_url="https://t/click?x=1", landing="https://acme.example")
>>> xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\\n<VAST version="4.2"')
True
>>> "<Duration>00:00:15</Duration>" in xml
True
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

NS = "http://www.iab.com/VAST"
VERSION = "4.2"
SYSTEM = "allscene"


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    el.text = text
    return el


def _doc(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def no_ad(error_url: str | None = None) -> str:
    """A VAST document with no ad (optionally with the URL a player calls back)."""
    root = ET.Element("VAST", {"version": VERSION, "xmlns": NS})
    if error_url:
        _text(root, "Error", error_url)
    return _doc(root)


def vast_for(ad_serving_id: str, creative: dict[str, Any], *, advertiser: str, title: str,
             impression_url: str, click_url: str, landing: str | None = None,
             error_url: str | None = None) -> str:
    """An InLine VAST 4.2 ad for a video creative (``url``, ``mime``, ``w``, ``h``,
    ``duration_s``)."""
    if creative.get("format") != "video":
        raise ValueError(f"VAST carries video; creative {creative.get('id')!r} is "
                         f"{creative.get('format')}")
    root = ET.Element("VAST", {"version": VERSION, "xmlns": NS})
    ad = ET.SubElement(root, "Ad", {"id": ad_serving_id})
    inline = ET.SubElement(ad, "InLine")
    _text(inline, "AdSystem", SYSTEM, version="1")
    if error_url:
        _text(inline, "Error", error_url)
    _text(inline, "Impression", impression_url, id=f"imp-{ad_serving_id}")
    _text(inline, "AdServingId", ad_serving_id)
    _text(inline, "AdTitle", title)
    _text(inline, "Advertiser", advertiser)
    creatives = ET.SubElement(inline, "Creatives")
    cr = ET.SubElement(creatives, "Creative", {"id": str(creative["id"]), "sequence": "1",
                                               "adId": str(creative["id"])})
    linear = ET.SubElement(cr, "Linear")
    _text(linear, "Duration", _clock(float(creative["duration_s"])))
    files = ET.SubElement(linear, "MediaFiles")
    _text(files, "MediaFile", str(creative["url"]), delivery="progressive",
          type=str(creative.get("mime") or "video/mp4"), width=str(int(creative["w"])),
          height=str(int(creative["h"])))
    clicks = ET.SubElement(linear, "VideoClicks")  # 4.2 order: ClickTracking, ClickThrough
    _text(clicks, "ClickTracking", click_url, id=f"cl-{ad_serving_id}")
    if landing:
        _text(clicks, "ClickThrough", landing, id=f"ct-{ad_serving_id}")
    _text(cr, "UniversalAdId", str(creative["id"]), idRegistry=SYSTEM)  # after Linear in 4.2
    return _doc(root)
