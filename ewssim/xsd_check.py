"""`python -m ewssim.xsd_check --schemas DIR [pytest arguments]`: run tests with every SOAP body
that exchangelib sends and ewssim answers validated against a copy of the EWS schema.

Rule: the schema is not in the repository (ewssim/README.md says why); point `--schemas` at a
directory holding `messages.xsd` and `types.xsd` (from a server's /EWS/ directory, or a public
copy). The files are copied to a temporary directory first, with a small `xml.xsd` for
`xml:lang` when types.xsd imports that namespace without a location (lxml needs one). Every
request and answer body's operation element (faults aside) is validated with lxml; the tally
and each distinct failure are printed. A by-hand check, not a test: the suite's own checks
are the structural ones in ewssim.schema.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XML_XSD = """<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
  targetNamespace="http://www.w3.org/XML/1998/namespace">
  <xs:attribute name="lang" type="xs:language"/>
  <xs:attribute name="space" type="xs:NCName"/>
  <xs:attribute name="base" type="xs:anyURI"/>
  <xs:attribute name="id" type="xs:ID"/>
</xs:schema>
"""
BARE_IMPORT = '<xs:import namespace="http://www.w3.org/XML/1998/namespace"/>'


def load_schema(directory: Path) -> etree.XMLSchema:
    work = Path(tempfile.mkdtemp(prefix="ews-xsd-"))
    try:
        for name in ("messages.xsd", "types.xsd"):
            shutil.copy(directory / name, work / name)
        types = (work / "types.xsd").read_text(encoding="utf-8-sig")
        if BARE_IMPORT in types:
            (work / "xml.xsd").write_text(XML_XSD)
            located = BARE_IMPORT.replace("/>", ' schemaLocation="xml.xsd"/>')
            (work / "types.xsd").write_text(types.replace(BARE_IMPORT, located))
        return etree.XMLSchema(etree.parse(str(work / "messages.xsd")))
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Tally:
    def __init__(self, schema: etree.XMLSchema) -> None:
        self.schema = schema
        self.counts: collections.Counter[tuple[str, str, bool]] = collections.Counter()
        self.failures: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def check(self, data: bytes, direction: str) -> None:
        try:
            root = etree.fromstring(data)
        except etree.XMLSyntaxError:
            return
        body = root.find(f"{{{SOAP}}}Body")
        if body is None or not len(body) or etree.QName(body[0]).localname == "Fault":
            return
        operation = etree.ElementTree(etree.fromstring(etree.tostring(body[0])))
        name = etree.QName(body[0]).localname
        valid = self.schema.validate(operation)
        self.counts[(direction, name, valid)] += 1
        if not valid:
            error = self.schema.error_log.last_error
            self.failures[(direction, name, str(error.message)[:240])] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ewssim.xsd_check", description=__doc__)
    parser.add_argument("--schemas", type=Path, required=True, help="holds messages/types.xsd")
    args, pytest_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    tally = Tally(load_schema(args.schemas))

    import pytest
    import requests

    original = requests.Session.send

    def send(self: requests.Session, request: Any, **kwargs: Any) -> Any:
        if request.body:
            body = request.body if isinstance(request.body, bytes) else request.body.encode()
            tally.check(body, "request")
        answer = original(self, request, **kwargs)
        if answer.content:
            tally.check(answer.content, "answer")
        return answer

    requests.Session.send = send  # type: ignore[method-assign]
    code = int(pytest.main(["-q", "-p", "no:cacheprovider", *pytest_args]))
    for (direction, name, valid), n in sorted(tally.counts.items()):
        print(f"{direction:8} {name:28} {'valid' if valid else 'INVALID':8} {n}")
    for (direction, name, message), n in sorted(tally.failures.items()):
        print(f"{n:4} x {direction} {name}: {message}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
