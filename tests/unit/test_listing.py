"""The loop's reading of a ListObjectsV2 page, held to oss2's own parser."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from oss2 import xml_utils

from iproduction.oss import parse_listing

PAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult>
  <Name>dest</Name><Prefix>iproduction%%2Fjob%%2F</Prefix><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType>
  <IsTruncated>%s</IsTruncated>%s
  <Contents><Key>iproduction%%2Fjob%%2Fa%%20b%%2B%%25.jpg</Key><LastModified>2026-12-02T10:11:12.000Z</LastModified>
    <ETag>"5eb63bbbe01eeed093cb22bb8f5acdc3"</ETag><Type>Normal</Type><Size>11</Size><StorageClass>Standard</StorageClass>
  </Contents>
  <Contents><Key>iproduction%%2Fjob%%2F%%E4%%B8%%AD.txt</Key><LastModified>2026-12-01T00:00:00.000Z</LastModified>
    <ETag>"0CC175B9C0F1B6A831C399E269772661-2"</ETag><Type>Multipart</Type><Size>0</Size><StorageClass>Standard</StorageClass>
  </Contents>
</ListBucketResult>"""


def oss2_reads(body: bytes) -> tuple[list[tuple[str, int, str, int]], str | None]:
    result = SimpleNamespace(object_list=[], prefix_list=[], next_continuation_token=None)
    xml_utils.parse_list_objects_v2(result, body)
    objects = [(o.key, o.size, o.etag.upper(), o.last_modified) for o in result.object_list]
    return objects, result.next_continuation_token if result.is_truncated else None


@pytest.mark.parametrize("truncated", [False, True])
def test_a_page_reads_as_oss2_reads_it(truncated: bool) -> None:
    token = b"<NextContinuationToken>CgdhJTJGYi5qcGc%3D</NextContinuationToken>" if truncated else b""
    body = PAGE % (b"true" if truncated else b"false", token)
    found, next_token = parse_listing(body)
    assert ([(f.key, f.size, f.etag, f.last_modified) for f in found], next_token) == oss2_reads(body)
    assert found[0].key == "iproduction/job/a b+%.jpg" and found[1].key == "iproduction/job/中.txt"
    assert next_token == ("CgdhJTJGYi5qcGc=" if truncated else None)


def test_keys_not_url_encoded_are_taken_as_they_are() -> None:
    body = (PAGE % (b"false", b"")).replace(b"<EncodingType>url</EncodingType>", b"").replace(
        b"iproduction%2Fjob%2Fa%20b%2B%25.jpg", b"iproduction/job/a%20b.jpg")
    found, _ = parse_listing(body)
    assert found[0].key == "iproduction/job/a%20b.jpg"
    assert [f.key for f in found] == [key for key, *_ in oss2_reads(body)[0]]


def test_what_is_not_a_listing_raises() -> None:
    with pytest.raises(Exception):  # noqa: B017 - ElementTree's ParseError; the lookup hands it to oss2
        parse_listing(b"<html>busy</html")
