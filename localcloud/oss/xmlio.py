"""XML bodies as OSS writes them (no namespace) and the CompleteMultipartUpload request parser."""

from __future__ import annotations

import time
from typing import Union
from xml.etree import ElementTree

from .errors import OssError

Value = Union[str, int, bool, None, "list[tuple[str, Value]]"]


def iso8601(timestamp: float) -> str:
    """``2015-12-12T00:37:53.000Z`` (what OSS puts in LastModified/Initiated)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(timestamp))


def render(root: str, children: list[tuple[str, Value]]) -> bytes:
    """Serialise ``(tag, value)`` pairs; a list value nests, a None value is left out."""
    element = ElementTree.Element(root)
    _fill(element, children)
    return ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)


def render_text(root: str, text: str) -> bytes:
    """A document whose root element holds only ``text``."""
    element = ElementTree.Element(root)
    element.text = text
    return ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)


def _fill(parent: ElementTree.Element, children: list[tuple[str, Value]]) -> None:
    for tag, value in children:
        if value is None:
            continue
        child = ElementTree.SubElement(parent, tag)
        if isinstance(value, list):
            _fill(child, value)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        else:
            child.text = str(value)


def error_body(code: str, message: str, request_id: str, host_id: str, details: dict[str, str]) -> bytes:
    children: list[tuple[str, Value]] = [("Code", code), ("Message", message), ("RequestId", request_id),
                                         ("HostId", host_id)]
    children += list(details.items())
    return render("Error", children)


def parse_complete(body: bytes) -> list[tuple[int, str]]:
    """``<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>...`` -> [(number, etag)]."""
    try:
        root = ElementTree.fromstring(body)
        if root.tag != "CompleteMultipartUpload":
            raise ValueError(root.tag)
        parts = []
        for node in root.findall("Part"):
            number = int((node.findtext("PartNumber") or "").strip())
            etag = (node.findtext("ETag") or "").strip().strip('"').upper()
            parts.append((number, etag))
    except (ElementTree.ParseError, ValueError) as exc:
        raise OssError("MalformedXML") from exc
    if not parts:
        raise OssError("MalformedXML")
    return parts
