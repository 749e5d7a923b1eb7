"""report.html's SVG charts read back as elements, for tests that check what a chart draws."""

from __future__ import annotations

import xml.etree.ElementTree as ET

__all__ = ["SVG", "lanes_of", "svg"]

SVG = "{http://www.w3.org/2000/svg}"


def svg(chart: object) -> ET.Element:
    return ET.fromstring(str(chart))  # an XML parse error fails the test


def lanes_of(root: ET.Element) -> list[ET.Element]:
    """A distributions chart's lanes, one per run in drawing order."""
    return [g for g in root.iter(f"{SVG}g") if "pg-lane" in g.get("class", "").split()]
