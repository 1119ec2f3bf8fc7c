"""Stored report.json fixtures and the parts of a rendered page (HTML, PNG) the tests look at."""

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "report" / "fixtures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.report.json").read_text())


class Page(HTMLParser):
    """The parts of a page the tests look at: images, table cells, scripts, links, text."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.cells, self.scripts, self.links, self.text = [], [], 0, [], []
        self._in_cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag in ("td", "th"):
            self._in_cell = True
            self.cells.append("")
        elif tag == "script":
            self.scripts += 1
        elif tag in ("link", "a") and (attrs.get("href") or "").startswith(("http", "//")):
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_cell:
            self.cells[-1] += data


def decode_png(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    return base64.b64decode(src[len(prefix) :], validate=True)
