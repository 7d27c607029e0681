"""scripts/check-integrations: checks `molteniron report --html` as rendered by a real headless Chromium.

Usage: check_report.py DOM SCREENSHOT STATUS_JSON SECRET...
DOM is Chromium's --dump-dom of the page, SCREENSHOT its --screenshot PNG, STATUS_JSON the output of
`molteniron status -o json` taken with the report. Checks that the rendered page's pools table holds
each pool's count per state as status has it, that the screenshot is not blank, and that no SECRET is
in the rendered text. Exits 1 with one line per problem. Python's standard library only.
"""

import collections
import html.parser
import json
import struct
import sys
import zlib


class Tables(html.parser.HTMLParser):
    """The text of every table cell, as rows, and all the text of the page."""

    def __init__(self):
        super().__init__()
        self.rows, self.row, self.cell, self.text = [], None, None, []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def png_is_blank(path):
    """Whether the PNG's pixels are all one colour: decompresses its image data and looks at the bytes
    (a blank page is the same few bytes over and over: one colour and the row filter bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return True
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat))) < 16


def main():
    dom, shot, status_json = sys.argv[1:4]
    secrets = sys.argv[4:]
    problems = []
    page = Tables()
    with open(dom, encoding="utf-8") as f:
        page.feed(f.read())
    text = "".join(page.text)
    with open(status_json, encoding="utf-8") as f:
        nodes = json.load(f)
    want = collections.Counter((n["pool"], n["state"]) for n in nodes)
    header = next((r for r in page.rows if r and r[0] == "pool"), None)
    if header is None:
        problems.append("the rendered page has no pools table")
    else:
        rows = {r[0]: r for r in page.rows if r and r[0] != "pool" and len(r) == len(header)}
        for pool in sorted({p for p, _ in want}):
            row = rows.get(pool)
            if row is None:
                problems.append(f"pool {pool} is missing from the pools table")
                continue
            for state in ("ready", "allocated", "dirty", "maintenance"):
                got = row[header.index(state)]
                if got != str(want[(pool, state)]):
                    problems.append(f"pool {pool}, {state}: the page says {got}, status {want[(pool, state)]}")
    for secret in secrets:
        if secret in text:
            problems.append("a BMC password is in the rendered page")
    if png_is_blank(shot):
        problems.append("the screenshot is blank")
    for p in problems:
        print(f"check_report: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


main()
