"""Conformance of the local OSS emulator, driven by unmodified oss2 2.19 (plus raw HTTP where needed)."""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import oss2
import pytest
import requests
from oss2.exceptions import (
    AccessDenied,
    InconsistentError,
    InvalidArgument,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NotModified,
    PreconditionFailed,
    RequestError,
    ServerError,
    SignatureDoesNotMatch,
)
from oss2.models import PartInfo
from oss2.utils import Crc64

from localcloud.oss import OssAdmin, OssEmulator
from localcloud.oss.content import SyntheticContent

ROOT = Path(__file__).resolve().parents[2]
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
ODD_KEYS = ["dir/sub/file.txt", "a%2Fb", "with space.txt", "plus+sign", "100%", "ünïcødé/文件 #1.bin",
            "q?x=1&y=2", "/leading-slash", "trailing/"]


def crc_of(data: bytes) -> int:
    digest = Crc64()
    digest.update(data)
    return digest.crc


def bucket(emulator: OssEmulator, name: str = "src-bucket", auth: object | None = None,
           **kwargs: object) -> oss2.Bucket:
    return oss2.Bucket(auth or oss2.Auth("ak", "sk"), emulator.url, name, **kwargs)


def raw_get(emulator: OssEmulator, path: str, **params: str) -> httpx.Response:
    """An unsigned-but-well-formed request (accepted when no credentials are configured)."""
    return httpx.get(emulator.url + path, params=params, headers={"Authorization": "OSS ak:c2ln"})


def server_error(call: object, *args: object, **kwargs: object) -> ServerError:
    with pytest.raises(ServerError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value


# -- objects ----------------------------------------------------------------------------------------

def test_put_get_head_and_meta(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    body = os.urandom(3000)
    put = b.put_object("dir/obj.bin", body, headers={"Content-Type": "image/jpeg", "x-oss-meta-Pipeline": "demo",
                                                      "Cache-Control": "no-cache"})
    etag = put.resp.headers["ETag"]
    assert etag == '"' + hashlib.md5(body).hexdigest().upper() + '"'
    assert put.etag == etag.strip('"') and put.etag.isupper() and len(put.etag) == 32
    assert put.crc == crc_of(body)
    got = b.get_object("dir/obj.bin")
    assert got.read() == body and got.status == 200 and got.content_type == "image/jpeg"
    assert got.server_crc == crc_of(body) and got.etag == put.etag
    part = b.get_object("dir/obj.bin", byte_range=(10, 19))
    assert part.status == 206 and part.read() == body[10:20]
    assert part.headers["Content-Range"] == "bytes 10-19/3000"
    head = b.head_object("dir/obj.bin")
    assert (head.content_length, head.etag, head.object_type, head.server_crc) == (3000, put.etag, "Normal",
                                                                                  crc_of(body))
    assert head.headers["x-oss-meta-pipeline"] == "demo" and head.headers["Cache-Control"] == "no-cache"
    assert abs(head.last_modified - time.time()) < 5
    assert head.headers["Last-Modified"].endswith(" GMT")
    meta = b.get_object_meta("dir/obj.bin")
    assert (meta.content_length, meta.etag) == (3000, put.etag)
    assert len({put.request_id, got.request_id, head.request_id, meta.request_id}) == 4
    md5 = base64.b64encode(hashlib.md5(b"checked").digest()).decode()
    assert b.put_object("md5", b"checked", headers={"Content-MD5": md5}).status == 200
    error = server_error(b.put_object, "md5", b"tampered", headers={"Content-MD5": md5})
    assert (error.status, error.code) == (400, "InvalidDigest")


def test_range_variants(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    b.put_object("r", b"0123456789")
    assert b.get_object("r", byte_range=(7, None)).read() == b"789"
    assert b.get_object("r", byte_range=(None, 3)).read() == b"789"
    assert b.get_object("r", byte_range=(5, 100)).read() == b"56789"
    assert b.get_object("r", headers={"Range": "bytes=5-2"}).read() == b"0123456789"  # invalid: whole object
    error = server_error(b.get_object, "r", byte_range=(10, 20))
    assert error.status == 416 and error.code == "InvalidRange"


def test_crc_checks_of_oss2_pass_with_spilled_bodies(tmp_path: Path) -> None:
    with OssEmulator(data_dir=str(tmp_path / "data"), spill_threshold=64 * KIB) as emulator:
        b = bucket(emulator)
        body = os.urandom(300 * KIB)
        source = tmp_path / "up.bin"
        source.write_bytes(body)
        assert b.put_object_from_file("big.bin", str(source)).crc == crc_of(body)  # oss2 checks the CRC
        assert len(os.listdir(tmp_path / "data")) == 1  # spilled to disk
        b.get_object_to_file("big.bin", str(tmp_path / "down.bin"))  # oss2 checks the CRC
        assert (tmp_path / "down.bin").read_bytes() == body
        b.delete_object("big.bin")
        gc.collect()
        assert os.listdir(tmp_path / "data") == []


def test_delete_and_missing(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    b.put_object("k", b"v")
    assert b.delete_object("k").status == 204
    assert b.delete_object("k").status == 204  # missing key: still 204
    with pytest.raises(NoSuchKey) as info:
        b.get_object("k")
    assert info.value.details["Key"] == "k" and info.value.request_id
    assert info.value.details["HostId"] == "src-bucket.oss-cn-hangzhou.aliyuncs.com"
    body = raw_get(oss_emulator, "/src-bucket/k")
    assert body.status_code == 404 and body.headers["content-type"].startswith("application/xml")
    error = ElementTree.fromstring(body.content)
    assert [child.tag for child in error][:4] == ["Code", "Message", "RequestId", "HostId"]
    assert error.findtext("HostId") == "src-bucket.oss-cn-hangzhou.aliyuncs.com"
    with pytest.raises(NoSuchKey):
        b.head_object("k")  # HEAD: the error comes base64 in x-oss-err
    assert not b.object_exists("k")
    ghost = bucket(oss_emulator, "no-such-bucket")
    with pytest.raises(NoSuchBucket):
        ghost.delete_object("k")
    with pytest.raises(NoSuchBucket):
        ghost.head_object("k")
    with pytest.raises(NoSuchBucket):
        ghost.object_exists("k")


def test_head_404_carries_x_oss_err(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    b.put_object("present", b"x")
    response = httpx.head(oss_emulator.url + "/src-bucket/missing", headers={"Authorization": "OSS ak:c2ln"})
    assert response.status_code == 404 and response.content == b""
    assert response.headers["Content-Length"] == "0"
    error = ElementTree.fromstring(base64.b64decode(response.headers["x-oss-err"]))
    assert error.findtext("Code") == "NoSuchKey" and error.findtext("RequestId")
    assert error.findtext("HostId") == "src-bucket.oss-cn-hangzhou.aliyuncs.com"


@pytest.mark.parametrize("auth_version", ["v1", "v4"])
def test_odd_keys_round_trip(oss_emulator: OssEmulator, oss_admin: OssAdmin, auth_version: str) -> None:
    oss_emulator.knobs.configure({"settings": {"access_key_id": "ak", "access_key_secret": "sk"}})
    if auth_version == "v4":
        b = bucket(oss_emulator, auth=oss2.AuthV4("ak", "sk"), region="cn-hangzhou")
    else:
        b = bucket(oss_emulator)
    for index, key in enumerate(ODD_KEYS):
        b.put_object(key, f"body {index}".encode())
    listed = [item.key for item in oss2.ObjectIteratorV2(b, max_keys=3)]
    assert listed == sorted(ODD_KEYS)
    assert [item.key for item in oss2.ObjectIterator(b, max_keys=4)] == sorted(ODD_KEYS)
    for index, key in enumerate(ODD_KEYS):
        assert b.get_object(key).read() == f"body {index}".encode()
        b.copy_object("src-bucket", key, "copies/" + key)
        assert b.get_object("copies/" + key).read() == f"body {index}".encode()
    assert {item["key"] for item in oss_admin.objects("src-bucket", "copies/")} == {"copies/" + k for k in ODD_KEYS}


def test_list_v2_prefix_delimiter_pagination(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    keys = ["a/1", "a/2", "a/b/3", "b/1", "c", "d/x/y", "e"]
    for key in keys:
        b.put_object(key, b"x")
    top = b.list_objects_v2(delimiter="/")
    assert [o.key for o in top.object_list] == ["c", "e"] and top.prefix_list == ["a/", "b/", "d/"]
    sub = b.list_objects_v2(prefix="a/", delimiter="/")
    assert [o.key for o in sub.object_list] == ["a/1", "a/2"] and sub.prefix_list == ["a/b/"]
    pages, token, seen = 0, "", []
    while True:
        page = b.list_objects_v2(delimiter="/", max_keys=2, continuation_token=token)
        seen += [o.key for o in page.object_list] + page.prefix_list
        pages += 1
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    assert pages == 3 and seen == ["a/", "b/", "c", "d/", "e"]
    assert [o.key for o in b.list_objects_v2(start_after="b/1").object_list] == ["c", "d/x/y", "e"]
    assert [o.key for o in oss2.ObjectIteratorV2(b, max_keys=2)] == keys
    entry = b.list_objects_v2(prefix="c").object_list[0]
    assert (entry.size, entry.type, entry.storage_class) == (1, "Normal", "Standard")


def test_list_xml_shape(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    b.put_object("dir/a b+c.txt", b"x")
    b.put_object("top", b"y")
    response = raw_get(oss_emulator, "/src-bucket/", **{"list-type": "2", "delimiter": "/", "encoding-type": "url"})
    root = ElementTree.fromstring(response.content)
    assert root.tag == "ListBucketResult"  # no namespace
    assert root.findtext("KeyCount") == "2" and root.findtext("EncodingType") == "url"
    assert root.findtext("CommonPrefixes/Prefix") == "dir%2F"
    contents = root.find("Contents")
    assert contents is not None
    assert {child.tag for child in contents} >= {"Key", "LastModified", "ETag", "Type", "Size", "StorageClass"}
    plain = ElementTree.fromstring(raw_get(oss_emulator, "/src-bucket/", **{"list-type": "2"}).content)
    assert plain.findtext("Contents/Key") == "dir/a b+c.txt"


def test_list_v1_marker(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    for key in ["x/1", "x/2", "y", "z/1"]:
        b.put_object(key, b"1")
    first = b.list_objects(delimiter="/", max_keys=2)
    assert first.is_truncated and first.prefix_list == ["x/"] and [o.key for o in first.object_list] == ["y"]
    second = b.list_objects(delimiter="/", max_keys=2, marker=first.next_marker)
    assert not second.is_truncated and second.prefix_list == ["z/"] and second.object_list == []


def test_bucket_basics(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    b = bucket(oss_emulator, "made-bucket")
    b.create_bucket()
    assert b.get_bucket_location().location == "oss-cn-hangzhou"
    oss_admin.create_bucket("far-bucket", "cn-shanghai")
    assert bucket(oss_emulator, "far-bucket").get_bucket_location().location == "oss-cn-shanghai"
    names = [item.name for item in oss2.Service(oss2.Auth("ak", "sk"), oss_emulator.url).list_buckets().buckets]
    assert names == ["far-bucket", "made-bucket"]


# -- copies -----------------------------------------------------------------------------------------

def test_copy_metadata_directives(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    dst = bucket(oss_emulator, "dest-bucket")
    put = b.put_object("src.jpg", b"image", headers={"Content-Type": "image/jpeg", "x-oss-meta-a": "1",
                                                    "Content-Disposition": "inline"})
    copied = dst.copy_object("src-bucket", "src.jpg", "copy.jpg")
    assert copied.etag == put.etag and copied.status == 200
    head = dst.head_object("copy.jpg")
    assert head.content_type == "image/jpeg" and head.headers["x-oss-meta-a"] == "1"
    assert head.headers["Content-Disposition"] == "inline" and head.server_crc == crc_of(b"image")
    dst.copy_object("src-bucket", "src.jpg", "replaced.jpg", headers={
        "x-oss-metadata-directive": "REPLACE", "Content-Type": "text/plain", "x-oss-meta-b": "2"})
    head = dst.head_object("replaced.jpg")
    assert head.content_type == "text/plain" and head.headers["x-oss-meta-b"] == "2"
    assert "x-oss-meta-a" not in head.headers and "Content-Disposition" not in head.headers
    b.update_object_meta("src.jpg", {"x-oss-meta-c": "3"})  # a REPLACE copy onto itself
    assert b.head_object("src.jpg").headers["x-oss-meta-c"] == "3"
    response = httpx.put(oss_emulator.url + "/dest-bucket/raw", headers={
        "Authorization": "OSS ak:c2ln", "x-oss-copy-source": "/src-bucket/src.jpg?versionId=null"})
    assert response.headers["ETag"] == f'"{put.etag}"'
    result = ElementTree.fromstring(response.content)
    assert result.tag == "CopyObjectResult" and result.findtext("ETag") == f'"{put.etag}"'
    assert result.findtext("LastModified", "").endswith(".000Z")


def test_copy_source_conditions(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    etag = b.put_object("s", b"data").etag
    past, future = formatdate(time.time() - 3600, usegmt=True), formatdate(time.time() + 3600, usegmt=True)
    ok = [{"x-oss-copy-source-if-match": f'"{etag}"'}, {"x-oss-copy-source-if-none-match": '"OTHER"'},
          {"x-oss-copy-source-if-modified-since": past}, {"x-oss-copy-source-if-unmodified-since": future}]
    for headers in ok:
        assert b.copy_object("src-bucket", "s", "d", headers=headers).status == 200
    with pytest.raises(PreconditionFailed):
        b.copy_object("src-bucket", "s", "d", headers={"x-oss-copy-source-if-match": '"OTHER"'})
    with pytest.raises(PreconditionFailed):
        b.copy_object("src-bucket", "s", "d", headers={"x-oss-copy-source-if-unmodified-since": past})
    with pytest.raises(NotModified):
        b.copy_object("src-bucket", "s", "d", headers={"x-oss-copy-source-if-none-match": f'"{etag}"'})
    with pytest.raises(NotModified):
        b.copy_object("src-bucket", "s", "d", headers={"x-oss-copy-source-if-modified-since": future})
    with pytest.raises(NoSuchKey):
        b.copy_object("src-bucket", "missing", "d")
    with pytest.raises(NoSuchBucket):
        b.copy_object("other-bucket", "s", "d")
    with pytest.raises(PreconditionFailed):
        b.get_object("s", headers={"If-Match": '"OTHER"'})


def test_forbid_overwrite(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    forbid = {"x-oss-forbid-overwrite": "true"}
    b.put_object("exists", b"old")
    b.put_object("other", b"new")
    upload_id = b.init_multipart_upload("exists").upload_id  # no header at Initiate: allowed
    part = b.upload_part("exists", upload_id, 1, b"part")
    calls = [lambda: b.put_object("exists", b"x", headers=forbid),
             lambda: b.copy_object("src-bucket", "other", "exists", headers=forbid),
             lambda: b.init_multipart_upload("exists", headers=forbid),
             lambda: b.complete_multipart_upload("exists", upload_id, [PartInfo(1, part.etag)], headers=forbid)]
    for call in calls:
        error = server_error(call)
        assert error.status == 409 and error.code == "FileAlreadyExists"
    assert b.get_object("exists").read() == b"old"
    assert b.put_object("fresh", b"x", headers=forbid).status == 200
    b.complete_multipart_upload("exists", upload_id, [PartInfo(1, part.etag)])  # without: overwrites
    assert b.get_object("exists").read() == b"part"


def test_cross_region_copy_refused(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    oss_admin.create_bucket("hz-bucket", "cn-hangzhou")
    oss_admin.create_bucket("sh-bucket", "cn-shanghai")
    oss_admin.put_object("hz-bucket", "k", b"bytes")
    sh = bucket(oss_emulator, "sh-bucket")
    with pytest.raises(InvalidArgument) as info:
        sh.copy_object("hz-bucket", "k", "k")
    assert info.value.status == 400 and "region" in info.value.message
    upload_id = sh.init_multipart_upload("k").upload_id
    with pytest.raises(InvalidArgument):
        sh.upload_part_copy("hz-bucket", "k", None, "k", upload_id, 1)
    assert bucket(oss_emulator, "hz-bucket").copy_object("hz-bucket", "k", "k2").status == 200


# -- multipart --------------------------------------------------------------------------------------

def test_multipart_upload_and_part_copy(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    b = bucket(oss_emulator)
    source = os.urandom(300 * KIB)
    b.put_object("src.bin", source, headers={"x-oss-meta-x": "ignored by multipart"})
    upload_id = b.init_multipart_upload("dst.bin", headers={"Content-Type": "video/mp4",
                                                           "x-oss-meta-kept": "yes"}).upload_id
    assert [u.upload_id for u in b.list_multipart_uploads().upload_list] == [upload_id]
    first = os.urandom(150 * KIB)
    p1 = b.upload_part("dst.bin", upload_id, 1, first)
    assert p1.crc == crc_of(first)
    p2 = b.upload_part_copy("src-bucket", "src.bin", (0, 100 * KIB - 1), "dst.bin", upload_id, 2)
    p3 = b.upload_part_copy("src-bucket", "src.bin", (200 * KIB, None), "dst.bin", upload_id, 3)
    assert p2.etag and p3.etag and p2.etag != p3.etag
    parts = b.list_parts("dst.bin", upload_id).parts
    assert [(p.part_number, p.etag, p.size) for p in parts] == [
        (1, p1.etag, 150 * KIB), (2, p2.etag, 100 * KIB), (3, p3.etag, 100 * KIB)]
    infos = [PartInfo(1, p1.etag, size=150 * KIB, part_crc=p1.crc),
             PartInfo(2, p2.etag, size=100 * KIB, part_crc=crc_of(source[:100 * KIB])),
             PartInfo(3, p3.etag, size=100 * KIB, part_crc=crc_of(source[200 * KIB:]))]
    done = b.complete_multipart_upload("dst.bin", upload_id, infos)  # oss2 checks the combined CRC
    expected = first + source[:100 * KIB] + source[200 * KIB:]
    assert done.etag.endswith("-3") and len(done.etag) == 34 and done.crc == crc_of(expected)
    head = b.head_object("dst.bin")
    assert head.object_type == "Multipart" and head.content_length == len(expected)
    assert head.content_type == "video/mp4" and head.headers["x-oss-meta-kept"] == "yes"
    assert "x-oss-meta-x" not in head.headers
    assert b.get_object("dst.bin").read() == expected
    assert oss_admin.uploads() == [] and b.list_multipart_uploads().upload_list == []
    again = bucket(oss_emulator).init_multipart_upload("again").upload_id
    same = b.upload_part_copy("src-bucket", "src.bin", (0, 100 * KIB - 1), "again", again, 1)
    assert same.etag == p2.etag  # part ETags are deterministic


def test_part_copy_of_whole_object_and_bad_ranges(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    put = b.put_object("s", b"0123456789")
    upload_id = b.init_multipart_upload("d").upload_id
    whole = b.upload_part_copy("src-bucket", "s", None, "d", upload_id, 1)
    assert whole.etag == put.etag
    for bad in [(5, 20), (10, None), (6, 5)]:
        with pytest.raises(InvalidArgument):
            b.upload_part_copy("src-bucket", "s", bad, "d", upload_id, 2)
    for number in (0, 10001):
        with pytest.raises(InvalidArgument):
            b.upload_part("d", upload_id, number, b"x")
    with pytest.raises(NoSuchUpload):
        b.upload_part("d", "no-such-upload", 1, b"x")


def test_complete_errors(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator)
    upload_id = b.init_multipart_upload("m").upload_id
    small = b.upload_part("m", upload_id, 1, b"tiny")
    big = b.upload_part("m", upload_id, 2, os.urandom(100 * KIB))
    last = b.upload_part("m", upload_id, 3, b"last")
    cases = {
        "InvalidPartOrder": [PartInfo(2, big.etag), PartInfo(2, big.etag)],
        "InvalidPart": [PartInfo(2, small.etag), PartInfo(3, last.etag)],
        "EntityTooSmall": [PartInfo(1, small.etag), PartInfo(2, big.etag)],
    }
    for code, parts in cases.items():
        error = server_error(b.complete_multipart_upload, "m", upload_id, parts)
        assert (error.status, error.code) == (400, code)
    assert server_error(b.complete_multipart_upload, "m", upload_id, [PartInfo(4, last.etag)]).code == "InvalidPart"
    reversed_xml = (f"<CompleteMultipartUpload><Part><PartNumber>3</PartNumber><ETag>{last.etag}</ETag></Part>"
                    f"<Part><PartNumber>2</PartNumber><ETag>{big.etag}</ETag></Part></CompleteMultipartUpload>")
    raw = httpx.post(f"{oss_emulator.url}/src-bucket/m", params={"uploadId": upload_id},
                     headers={"Authorization": "OSS ak:c2ln"}, content=reversed_xml)
    assert raw.status_code == 400 and b"InvalidPartOrder" in raw.content
    malformed = httpx.post(f"{oss_emulator.url}/src-bucket/m", params={"uploadId": upload_id},
                           headers={"Authorization": "OSS ak:c2ln"}, content=b"<nope")
    assert malformed.status_code == 400 and b"MalformedXML" in malformed.content
    done = b.complete_multipart_upload("m", upload_id, [PartInfo(2, big.etag), PartInfo(3, last.etag)])
    assert done.etag.endswith("-2")
    with pytest.raises(NoSuchUpload):
        b.complete_multipart_upload("m", upload_id, [PartInfo(2, big.etag)])


def test_complete_all_and_concurrent_part_copies(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    oss_admin.put_object("src-bucket", "src", synthetic=(64 * MIB + 5, "par"))
    session = oss2.Session(pool_size=16)
    b = bucket(oss_emulator, session=session)
    upload_id = b.init_multipart_upload("dst").upload_id
    ranges = [(offset, min(offset + 4 * MIB, 64 * MIB + 5) - 1) for offset in range(0, 64 * MIB + 5, 4 * MIB)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: b.upload_part_copy("src-bucket", "src", item[1], "dst", upload_id, item[0]),
                      enumerate(ranges, 1)))
    done = b.complete_multipart_upload("dst", upload_id, None, headers={"x-oss-complete-all": "yes"})
    assert done.etag.endswith(f"-{len(ranges)}")
    assert b.head_object("dst").server_crc == b.head_object("src").server_crc


def test_abort_and_list_parts(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    b = bucket(oss_emulator)
    upload_id = b.init_multipart_upload("a/b").upload_id
    b.upload_part("a/b", upload_id, 2, b"two")
    b.upload_part("a/b", upload_id, 1, b"one")
    assert [p.part_number for p in b.list_parts("a/b", upload_id).parts] == [1, 2]
    page = b.list_parts("a/b", upload_id, max_parts=1)
    assert page.is_truncated and page.next_marker == "1"
    assert [u["upload_id"] for u in oss_admin.uploads()] == [upload_id]
    assert b.abort_multipart_upload("a/b", upload_id).status == 204
    with pytest.raises(NoSuchUpload):
        b.list_parts("a/b", upload_id)
    with pytest.raises(NoSuchUpload):
        b.abort_multipart_upload("a/b", upload_id)
    assert oss_admin.uploads() == []


def test_multipart_copy_of_6_gib_synthetic_object(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    started = time.monotonic()
    size = 6 * GIB + 12345
    oss_admin.put_object("src-bucket", "huge.bin", synthetic=(size, "six"))
    src = bucket(oss_emulator)
    dst = bucket(oss_emulator, "dest-bucket")
    head = src.head_object("huge.bin")
    assert head.content_length == size and head.server_crc == SyntheticContent(size, "six").crc
    upload_id = dst.init_multipart_upload("copy.bin").upload_id
    ranges = [(0, 2 * GIB - 1), (2 * GIB, 4 * GIB - 1), (4 * GIB, None)]
    parts = [PartInfo(n, dst.upload_part_copy("src-bucket", "huge.bin", r, "copy.bin", upload_id, n).etag)
             for n, r in enumerate(ranges, 1)]
    done = dst.complete_multipart_upload("copy.bin", upload_id, parts)
    copied = dst.head_object("copy.bin")
    assert copied.content_length == size and copied.server_crc == head.server_crc == done.crc
    assert dst.get_object("copy.bin", byte_range=(2 * GIB - 5, 2 * GIB + 4)).read() == \
        src.get_object("huge.bin", byte_range=(2 * GIB - 5, 2 * GIB + 4)).read()
    swapped_id = dst.init_multipart_upload("swapped.bin").upload_id  # misordered parts show in the CRC
    swapped = [PartInfo(n, dst.upload_part_copy("src-bucket", "huge.bin", r, "swapped.bin", swapped_id, n).etag)
               for n, r in enumerate([ranges[1], ranges[0], ranges[2]], 1)]
    dst.complete_multipart_upload("swapped.bin", swapped_id, swapped)
    assert dst.head_object("swapped.bin").server_crc != head.server_crc
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("crc_on_copy", [True, False])
def test_crc_on_copy(oss_emulator: OssEmulator, oss_admin: OssAdmin, crc_on_copy: bool) -> None:
    oss_admin.knobs(settings={"crc_on_copy": crc_on_copy})
    b = bucket(oss_emulator)
    body = os.urandom(120 * KIB)
    b.put_object("s", body)
    b.copy_object("src-bucket", "s", "copied")
    upload_id = b.init_multipart_upload("mixed").upload_id
    uploaded = b.upload_part("mixed", upload_id, 1, body)
    assert uploaded.crc == crc_of(body)  # an uploaded part always has one
    copied_part = b.upload_part_copy("src-bucket", "s", (0, 999), "mixed", upload_id, 2)
    b.complete_multipart_upload("mixed", upload_id, [PartInfo(1, uploaded.etag), PartInfo(2, copied_part.etag)])
    expected = {"copied": crc_of(body), "mixed": crc_of(body + body[:1000])}
    for key, crc in expected.items():
        head = b.head_object(key)
        assert head.server_crc == (crc if crc_on_copy else None)
        assert ("x-oss-hash-crc64ecma" in head.headers) is crc_on_copy
        assert oss_admin.object("src-bucket", key)["crc64"] == (str(crc) if crc_on_copy else None)
    assert b.head_object("s").server_crc == crc_of(body)


def test_corrupt_copy_stores_a_flipped_byte_under_its_own_etag(oss_emulator: OssEmulator,
                                                              oss_admin: OssAdmin) -> None:
    b = bucket(oss_emulator)
    body = os.urandom(300 * KIB)
    source_etag = b.put_object("s", body).etag
    oss_admin.knobs(faults=[{"op": "CopyObject", "kind": "corrupt", "times": 1}])
    wrong = b.copy_object("src-bucket", "s", "wrong")
    stored = b.get_object("wrong").read()
    assert len(stored) == len(body) and sum(x != y for x, y in zip(stored, body, strict=True)) == 1
    assert wrong.etag == hashlib.md5(stored).hexdigest().upper() != source_etag
    head = b.head_object("wrong")
    assert (head.etag, head.server_crc) == (wrong.etag, crc_of(stored))
    assert b.copy_object("src-bucket", "s", "right").etag == source_etag  # times: 1
    assert b.get_object("right").read() == body
    oss_admin.put_object("src-bucket", "big", synthetic=(100 * MIB, 3))
    oss_admin.knobs(faults=[{"op": "CopyObject", "kind": "corrupt", "times": 1}])
    big = b.copy_object("src-bucket", "big", "big-wrong")  # a pseudo-MD5 above 64 MiB, a real CRC
    assert big.etag != oss_admin.object("src-bucket", "big")["etag"]
    assert oss_admin.object("src-bucket", "big-wrong")["crc64"] != oss_admin.object("src-bucket", "big")["crc64"]
    assert oss_admin.knobs()["injected"] == {"corrupt": 2}


# -- signatures -------------------------------------------------------------------------------------

def test_signatures_verified(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    oss_admin.knobs(settings={"access_key_id": "ak", "access_key_secret": "sk"})
    good = [oss2.Auth("ak", "sk"), oss2.AuthV2("ak", "sk"), oss2.AuthV4("ak", "sk")]
    for index, auth in enumerate(good):
        b = bucket(oss_emulator, auth=auth, region="cn-hangzhou")
        key = f"signed {index}/ä+%.txt"
        b.put_object(key, b"x", headers={"x-oss-meta-who": "me", "Content-Type": "text/plain"})
        assert b.get_object(key, byte_range=(0, 0)).read() == b"x"
        b.copy_object("src-bucket", key, key + ".copy")
        assert b.list_objects_v2(prefix="signed").object_list
        upload_id = b.init_multipart_upload(key).upload_id
        b.abort_multipart_upload(key, upload_id)
    far = bucket(oss_emulator, "beijing-bucket", auth=oss2.AuthV4("ak", "sk"), region="cn-beijing")
    far.put_object("k", b"v")  # a bucket created on demand by a V4 request gets the signing region
    assert {b["name"]: b["region"] for b in oss_admin.buckets()}["beijing-bucket"] == "cn-beijing"
    with pytest.raises(SignatureDoesNotMatch) as info:
        bucket(oss_emulator, auth=oss2.Auth("ak", "wrong")).get_object("signed 0/ä+%.txt")
    assert info.value.status == 403
    with pytest.raises(SignatureDoesNotMatch):
        bucket(oss_emulator, auth=oss2.AuthV4("ak", "wrong"), region="cn-hangzhou").head_object("x")
    error = server_error(bucket(oss_emulator, auth=oss2.Auth("other", "sk")).get_object, "x")
    assert (error.status, error.code) == (403, "InvalidAccessKeyId")
    for headers in ({}, {"Authorization": "Bearer token"}, {"Authorization": "OSS no-colon"}):
        response = httpx.get(oss_emulator.url + "/src-bucket/x", headers=headers)
        assert response.status_code == 403
        assert ElementTree.fromstring(response.content).findtext("Code") == "AccessDenied"


def test_sts_token_checked(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    oss_admin.knobs(settings={"access_key_id": "STS.ak", "access_key_secret": "sk", "security_token": "tok"})
    for version in (oss2.AUTH_VERSION_1, oss2.AUTH_VERSION_4):
        auth = oss2.StsAuth("STS.ak", "sk", "tok", auth_version=version)
        assert bucket(oss_emulator, auth=auth, region="cn-hangzhou").put_object("k", b"v").status == 200
    with pytest.raises(AccessDenied):
        bucket(oss_emulator, auth=oss2.StsAuth("STS.ak", "sk", "expired")).get_object("k")
    with pytest.raises(AccessDenied):
        bucket(oss_emulator, auth=oss2.Auth("STS.ak", "sk")).get_object("k")


def test_any_well_formed_signature_without_credentials(oss_emulator: OssEmulator) -> None:
    b = bucket(oss_emulator, auth=oss2.Auth("anything", "goes"))
    assert b.put_object("k", b"v").status == 200
    assert bucket(oss_emulator, auth=oss2.StsAuth("a", "b", "c")).get_object("k").read() == b"v"
    with pytest.raises(AccessDenied):
        bucket(oss_emulator, auth=oss2.AnonymousAuth()).get_object("k")


# -- knobs, faults and the log -----------------------------------------------------------------------

def test_fault_injection(oss_emulator: OssEmulator, oss_admin: OssAdmin, tmp_path: Path) -> None:
    b = bucket(oss_emulator)
    body = os.urandom(200 * KIB)
    b.put_object("k", body)
    oss_admin.knobs(faults=[{"op": "GetObject", "kind": "503", "times": 1}])
    error = server_error(b.get_object, "k")
    assert (error.status, error.code) == (503, "ServiceUnavailable")
    assert b.get_object("k").read() == body  # times: 1
    oss_admin.knobs(faults=[{"op": "HeadObject", "sequence": ["500", "throttle", None]}])
    assert server_error(b.head_object, "k").code == "InternalError"
    throttled = server_error(b.head_object, "k")
    assert throttled.status == 503 and "reduce your request rate" in throttled.message
    assert b.head_object("k").status == 200
    oss_admin.knobs(faults=[{"op": "CopyObject", "kind": "reset", "times": 1}])
    with pytest.raises(RequestError):
        b.copy_object("src-bucket", "k", "k2")
    oss_admin.knobs(faults=[{"op": "GetObject", "kind": "corrupt", "times": 1}])
    with pytest.raises(InconsistentError):
        b.get_object_to_file("k", str(tmp_path / "k"))
    corrupted = b.get_object("k").read()  # next one is clean again
    assert corrupted == body
    oss_admin.knobs(faults=[{"op": "GetObject", "kind": "corrupt", "times": 1}])
    damaged = b.get_object("k").read()
    assert len(damaged) == len(body) and sum(x != y for x, y in zip(damaged, body, strict=True)) == 1
    oss_admin.knobs(faults=[{"op": "GetObject", "kind": "reset_body", "times": 1}])
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # oss2 does not wrap this one
        b.get_object("k").read()
    oss_admin.knobs(faults=[{"op": "*", "kind": "503", "rate": 1.0}])
    assert server_error(b.put_object, "k", b"new body").status == 503
    oss_admin.knobs(faults=[])
    assert b.get_object("k").read() == body
    assert oss_admin.knobs()["injected"] == {"503": 2, "500": 1, "throttle": 1, "reset": 1, "corrupt": 2,
                                             "reset_body": 1}


def test_slow_fault(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    """``slow`` holds the answer back ``seconds``: past oss2's timeout it is a RequestError (a read
    timeout), within it the normal answer, late; then requests are prompt again."""
    b = bucket(oss_emulator)
    b.put_object("k", b"body")
    oss_admin.knobs(faults=[{"op": "GetObject", "kind": "slow", "seconds": 0.6, "times": 2}])
    with pytest.raises(RequestError) as timed_out:
        bucket(oss_emulator, connect_timeout=0.2).get_object("k")
    assert isinstance(timed_out.value.exception, requests.exceptions.ReadTimeout)
    started = time.monotonic()
    assert b.get_object("k").read() == b"body"
    assert time.monotonic() - started >= 0.6
    assert b.get_object("k").read() == b"body"
    got = [entry for entry in oss_admin.log() if entry["op"] == "GetObject"]
    assert [entry.get("fault") for entry in got] == ["slow", "slow", None]
    assert oss_admin.knobs()["injected"] == {"slow": 2}


def test_reset_after_fault_stores_then_drops_the_answer(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    """``reset_after`` carries the request out, then cuts the connection where the answer would start:
    the client sees no answer (oss2 ``RequestError``), the object is stored all the same."""
    b = bucket(oss_emulator)
    oss_admin.knobs(faults=[{"op": "PutObject", "kind": "reset_after", "times": 1}])
    with pytest.raises(RequestError):
        b.put_object("lost-answer", b"stored anyway")
    assert oss_admin.read("src-bucket", "lost-answer") == b"stored anyway"
    [put] = [entry for entry in oss_admin.log() if entry["op"] == "PutObject"]
    assert put["fault"] == "reset_after" and put["status"] == 0 and put["unanswered"] == 200
    assert b.get_object("lost-answer").read() == b"stored anyway"  # the next request is answered
    assert oss_admin.knobs()["injected"] == {"reset_after": 1}


def test_copy_rate_and_bandwidth_delay(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    oss_admin.put_object("src-bucket", "big", synthetic=(512 * MIB, 1))
    b = bucket(oss_emulator)
    oss_admin.knobs(settings={"copy_rate": 2 * GIB})
    started = time.monotonic()
    b.copy_object("src-bucket", "big", "big-copy")
    assert time.monotonic() - started >= 0.25
    upload_id = b.init_multipart_upload("parts").upload_id
    started = time.monotonic()
    b.upload_part_copy("src-bucket", "big", (0, 256 * MIB - 1), "parts", upload_id, 1)
    assert time.monotonic() - started >= 0.125
    oss_admin.knobs(settings={"copy_rate": None, "bandwidth": 4 * MIB})
    started = time.monotonic()
    assert len(b.get_object("big", byte_range=(0, MIB - 1)).read()) == MIB
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    b.put_object("up", b"x" * MIB)
    assert time.monotonic() - started >= 0.25
    oss_admin.knobs(settings={"bandwidth": None}, latency=0.1)
    started = time.monotonic()
    b.get_object_meta("big")
    assert time.monotonic() - started >= 0.1


def test_queueing_profile_waits_the_latency_before_the_work(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    """``arrival`` does a request's work within its latency; ``queueing`` sleeps the latency first, then
    works (a ``slow`` fault stands for 0.3 s of work here), so the two add up."""
    b = bucket(oss_emulator)
    b.put_object("k", b"body")
    for profile, low, high in (("arrival", 0.3, 0.55), ("queueing", 0.6, 5)):
        oss_admin.knobs(latency=0.3, profile=profile,
                        faults=[{"op": "HeadObject", "kind": "slow", "seconds": 0.3, "times": 1}])
        assert oss_admin.knobs()["profile"] == profile
        started = time.monotonic()
        assert b.head_object("k").content_length == 4
        assert low <= time.monotonic() - started < high, profile
    oss_admin.knobs(faults=[])
    started = time.monotonic()
    b.head_object("k")
    assert 0.3 <= time.monotonic() - started < 0.55
    with pytest.raises(RuntimeError, match="unknown profile"):
        oss_admin.knobs(profile="fifo")
    from localcloud.oss.cli import parse_args

    assert parse_args(["--profile", "queueing"]).profile == "queueing"
    assert parse_args([]).profile == "arrival"


def test_copy_object_size_limit(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    oss_admin.put_object("src-bucket", "too-big", synthetic=(GIB + 1, 0))
    error = server_error(bucket(oss_emulator).copy_object, "src-bucket", "too-big", "x")
    assert (error.status, error.code) == (400, "EntityTooLarge")
    oss_admin.knobs(settings={"copy_object_max_size": None})
    assert bucket(oss_emulator).copy_object("src-bucket", "too-big", "x").status == 200


def test_request_log(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    b = bucket(oss_emulator)
    b.put_object("dir/s", b"0123456789")
    upload_id = b.init_multipart_upload("d").upload_id
    oss_admin.clear_log()
    b.upload_part_copy("src-bucket", "dir/s", (2, 5), "d", upload_id, 7)
    b.copy_object("src-bucket", "dir/s", "c")
    oss_admin.knobs(faults=[{"op": "GetObject", "kind": "503", "times": 1}])
    with pytest.raises(ServerError):
        b.get_object("c")
    b.get_object("c")
    log = oss_admin.log()
    assert [entry["op"] for entry in log] == ["UploadPartCopy", "CopyObject", "GetObject", "GetObject"]
    part_copy, copy, failed, ok = log
    assert part_copy | {"bucket": "src-bucket", "key": "d", "source_bucket": "src-bucket", "source_key": "dir/s",
                        "range": "bytes=2-5", "bytes": 4, "status": 200, "part_number": 7} == part_copy
    assert copy["source_key"] == "dir/s" and copy["bytes"] == 10 and copy["method"] == "PUT"
    assert (failed["status"], failed["fault"], failed["error"]) == (503, "503", "ServiceUnavailable")
    assert ok["status"] == 200 and ok["bytes"] == 10 and "fault" not in ok
    assert len({entry["request_id"] for entry in log}) == 4


# -- admin, seeding, lifecycle -----------------------------------------------------------------------

def test_admin_routes(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    assert oss_admin.create_bucket("west-bucket", "cn-shanghai")["region"] == "cn-shanghai"
    oss_admin.put_object("west-bucket", "t/a b.txt", "text body", content_type="text/plain", meta={"k": "v"})
    oss_admin.put_object("west-bucket", "t/bin", b"\x00\x01", crc=False)
    oss_admin.put_object("west-bucket", "u/syn", synthetic=(5 * MIB, 42))
    listed = oss_admin.objects("west-bucket", "t/")
    assert [item["key"] for item in listed] == ["t/a b.txt", "t/bin"]
    text = listed[0]
    assert text["size"] == 9 and text["content_type"] == "text/plain" and text["meta"] == {"k": "v"}
    assert text["crc64"] == str(crc_of(b"text body")) and text["object_type"] == "Normal"
    assert listed[1]["crc64"] is None and bucket(oss_emulator, "west-bucket").head_object("t/bin").server_crc is None
    assert oss_admin.read("west-bucket", "t/bin") == b"\x00\x01"
    syn = oss_admin.object("west-bucket", "u/syn")
    assert syn is not None and syn["crc64"] == str(SyntheticContent(5 * MIB, 42).crc)
    got = bucket(oss_emulator, "west-bucket").get_object("u/syn", byte_range=(MIB - 4, MIB + 3)).read()
    assert got == SyntheticContent(5 * MIB, 42).read(MIB - 4, 8)
    oss_admin.delete_object("west-bucket", "t/bin")
    assert oss_admin.object("west-bucket", "t/bin") is None
    assert {b["name"]: b["region"] for b in oss_admin.buckets()} == {"west-bucket": "cn-shanghai"}
    seed = json.loads((ROOT / "localcloud" / "seed.json").read_text())
    assert oss_admin.seed(seed)["objects"] == 2
    seeded = bucket(oss_emulator, "example-bucket").head_object("iproduction/test-result.jpg")
    assert seeded.content_type == "image/jpeg" and seeded.headers["x-oss-meta-pipeline"] == "demo"
    assert {b["name"] for b in oss_admin.buckets()} == {"west-bucket", "example-bucket", "dest-bucket"}
    oss_admin.reset()
    assert oss_admin.buckets() == []
    oss_emulator.seed(seed)  # in-process
    assert oss_admin.object("example-bucket", "iproduction/test-origin.jpg") is not None
    with pytest.raises(RuntimeError):
        oss_admin.objects("no-such-bucket")


def test_no_auto_create_buckets(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    oss_admin.knobs(settings={"auto_create_buckets": False})
    with pytest.raises(NoSuchBucket):
        bucket(oss_emulator).put_object("k", b"v")
    oss_admin.create_bucket("src-bucket")
    assert bucket(oss_emulator).put_object("k", b"v").status == 200


def test_start_stop_cleanly() -> None:
    emulator = OssEmulator(spill_threshold=10)
    emulator.start()
    url, port = emulator.url, emulator.port
    bucket(emulator).put_object("k", b"spilled to the temp dir")
    temp_dir = emulator.data_dir()
    assert os.listdir(temp_dir)
    emulator.stop()
    assert not os.path.exists(temp_dir)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with pytest.raises(RequestError):
        oss2.Bucket(oss2.Auth("a", "b"), url, "src-bucket", connect_timeout=2).get_object("k")


def test_cli_starts_and_stops(tmp_path: Path) -> None:
    help_text = subprocess.run([sys.executable, "-m", "localcloud.oss", "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=30, check=True).stdout
    assert "--copy-rate" in help_text and "--seed" in help_text
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud.oss", "--port", "0", "--seed", "localcloud/seed.json",
         "--access-key-id", "ak", "--access-key-secret", "sk", "--fault", '{"op": "HeadObject", "kind": "503"}'],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        admin = OssAdmin(url)
        admin.wait_healthy()
        b = oss2.Bucket(oss2.Auth("ak", "sk"), url, "example-bucket")
        assert b.get_object("iproduction/test-result.jpg").read() == b"cartoonized image bytes"
        assert server_error(b.head_object, "iproduction/test-result.jpg").status == 503
        admin.close()
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=1):
        pass


# -- V4 signing region ------------------------------------------------------------------------------

def test_v4_signing_region_must_be_the_buckets(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    """Real OSS refuses a V4 credential scope naming another region than the bucket's (EC 0002-00000228)."""
    from oss2.credentials import StaticCredentialsProvider

    oss_admin.knobs(settings={"access_key_id": "ak", "access_key_secret": "sk"})
    oss_admin.create_bucket("east-bucket", "cn-hangzhou")
    oss_admin.put_object("east-bucket", "k", b"v")
    for auth in (oss2.AuthV4("ak", "sk"), oss2.ProviderAuthV4(StaticCredentialsProvider("ak", "sk"))):
        right = bucket(oss_emulator, "east-bucket", auth=auth, region="cn-hangzhou")
        assert right.get_object("k").read() == b"v"
        assert right.put_object("k2", b"w").status == 200
        wrong = bucket(oss_emulator, "east-bucket", auth=auth, region="cn-shanghai")
        with pytest.raises(SignatureDoesNotMatch) as info:
            wrong.get_object("k")
        assert info.value.status == 403
        assert "cn-shanghai" in info.value.message and "cn-hangzhou" in info.value.message
        assert info.value.details["EC"] == "0002-00000228"
        with pytest.raises(SignatureDoesNotMatch):
            wrong.head_object("k")  # the error travels base64 in x-oss-err
        with pytest.raises(SignatureDoesNotMatch):
            wrong.put_object("k3", b"x")
    assert oss_admin.object("east-bucket", "k3") is None
    refused = [e for e in oss_emulator.log.entries() if e.get("error") == "SignatureDoesNotMatch"]
    assert len(refused) == 6 and {e["status"] for e in refused} == {403}
    # V1 carries no region; a bucket a V4 request creates takes its region, then holds others to it.
    assert bucket(oss_emulator, "east-bucket", auth=oss2.Auth("ak", "sk")).get_object("k").read() == b"v"
    bucket(oss_emulator, "north-bucket", auth=oss2.AuthV4("ak", "sk"), region="cn-beijing").put_object("k", b"v")
    with pytest.raises(SignatureDoesNotMatch):
        bucket(oss_emulator, "north-bucket", auth=oss2.AuthV4("ak", "sk"), region="cn-hangzhou").get_object("k")


def test_v4_signing_region_unchecked_without_credentials(oss_emulator: OssEmulator, oss_admin: OssAdmin) -> None:
    oss_admin.create_bucket("east-bucket", "cn-hangzhou")
    oss_admin.put_object("east-bucket", "k", b"v")
    wrong = bucket(oss_emulator, "east-bucket", auth=oss2.AuthV4("any", "thing"), region="cn-shanghai")
    assert wrong.get_object("k").read() == b"v"


def test_the_store_lists_a_prefix_range_as_a_full_scan_would() -> None:
    """Listings read the sorted key index (not every key): the same answers as filtering them all."""
    from localcloud.oss.store import ObjectRecord, Store

    rng = random.Random(5)
    store = Store()
    store.put_bucket("b", "cn-shanghai")
    alphabet = "ab/0~é"
    keys = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5))) for _ in range(400)}
    content: Any = None
    for key in keys:
        store.put("b", ObjectRecord(key, content, "E"))
    for key in rng.sample(sorted(keys), 100):
        store.delete("b", key)
        keys.discard(key)
    store.delete("b", "never-there")
    for _ in range(300):
        prefix = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 2)))
        after = rng.choice(["", *keys, "".join(rng.choice(alphabet) for _ in range(3))])
        expected = sorted(k for k in keys if k.startswith(prefix) and k > after)[:50]
        listing = store.list("b", prefix=prefix, after=after, max_keys=50)
        assert [r.key for r in listing.objects] == expected
    assert store.bucket("b").keys == sorted(keys)
