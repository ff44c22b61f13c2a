"""Bucket versioning in the local OSS emulator, driven by unmodified oss2 (OSS's "Versioning" documents:
x-oss-forbid-overwrite has no effect once versioning is enabled or suspended)."""

from __future__ import annotations

import oss2
import pytest
from oss2.exceptions import NoSuchKey, ServerError
from oss2.models import BucketVersioningConfig

from localcloud.oss import OssEmulator

FORBID = {"x-oss-forbid-overwrite": "true"}


@pytest.fixture
def bucket(oss_emulator: OssEmulator) -> oss2.Bucket:
    found = oss2.Bucket(oss2.Auth("ak", "sk"), oss_emulator.url, "versioned-bucket")
    found.create_bucket()
    return found


def versions(bucket: oss2.Bucket, prefix: str = "") -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is a delete marker), newest first per key."""
    listing = bucket.list_object_versions(prefix=prefix)
    found = [(v.key, v.versionid, v.is_latest, False) for v in listing.versions]
    found += [(m.key, m.versionid, m.is_latest, True) for m in listing.delete_marker]
    return sorted(found, key=lambda entry: entry[0])


def test_a_bucket_is_unversioned_until_set_and_forbid_overwrite_holds_there(bucket: oss2.Bucket) -> None:
    assert bucket.get_bucket_versioning().status is None
    assert bucket.put_object("k", b"1", headers=FORBID).versionid is None
    with pytest.raises(ServerError) as refused:
        bucket.put_object("k", b"2", headers=FORBID)
    assert (refused.value.status, refused.value.code) == (409, "FileAlreadyExists")


def test_enabled_every_write_adds_a_version_and_ignores_forbid_overwrite(bucket: oss2.Bucket) -> None:
    bucket.put_object("old", b"before")
    bucket.put_bucket_versioning(BucketVersioningConfig("Enabled"))
    assert bucket.get_bucket_versioning().status == "Enabled"
    first = bucket.put_object("k", b"1", headers=FORBID).versionid
    second = bucket.put_object("k", b"2", headers=FORBID).versionid
    copied = bucket.copy_object(bucket.bucket_name, "k", "k", headers=FORBID).versionid
    upload = bucket.init_multipart_upload("k", headers=FORBID).upload_id
    part = bucket.upload_part("k", upload, 1, b"3")
    completed = bucket.complete_multipart_upload("k", upload, [oss2.models.PartInfo(1, part.etag)],
                                                 headers=FORBID).versionid
    assert len({first, second, copied, completed}) == 4 and "null" not in {first, second, copied, completed}
    assert bucket.get_object("k").read() == b"3"
    assert bucket.get_object("k", params={"versionId": first}).read() == b"1"
    assert bucket.head_object("k", params={"versionId": second}).content_length == 1
    assert versions(bucket) == [("k", completed, True, False), ("k", copied, False, False),
                                ("k", second, False, False), ("k", first, False, False),
                                ("old", "null", True, False)]


def test_enabled_a_delete_adds_a_marker_and_a_versioned_delete_removes_one(bucket: oss2.Bucket) -> None:
    bucket.put_bucket_versioning(BucketVersioningConfig("Enabled"))
    first = bucket.put_object("k", b"1").versionid
    deleted = bucket.delete_object("k")
    assert deleted.delete_marker and deleted.versionid not in (None, "null", first)
    with pytest.raises(NoSuchKey):
        bucket.get_object("k")
    assert bucket.get_object("k", params={"versionId": first}).read() == b"1"
    assert versions(bucket) == [("k", first, False, False), ("k", deleted.versionid, True, True)]
    bucket.delete_object("k", params={"versionId": deleted.versionid})
    assert bucket.get_object("k").read() == b"1"
    bucket.delete_object("k", params={"versionId": first})
    assert versions(bucket) == []
    with pytest.raises(ServerError) as missing:
        bucket.get_object("k", params={"versionId": first})
    assert (missing.value.status, missing.value.code) == (404, "NoSuchVersion")


def test_suspended_a_write_replaces_the_null_version_and_ignores_forbid_overwrite(bucket: oss2.Bucket) -> None:
    bucket.put_bucket_versioning(BucketVersioningConfig("Enabled"))
    kept = bucket.put_object("k", b"1").versionid
    bucket.put_bucket_versioning(BucketVersioningConfig("Suspended"))
    assert bucket.get_bucket_versioning().status == "Suspended"
    assert bucket.put_object("k", b"2", headers=FORBID).versionid == "null"
    assert bucket.put_object("k", b"3", headers=FORBID).versionid == "null"
    assert bucket.get_object("k").read() == b"3"
    assert versions(bucket) == [("k", "null", True, False), ("k", kept, False, False)]
    marker = bucket.delete_object("k")
    assert (marker.versionid, marker.delete_marker) == ("null", True)
    assert versions(bucket) == [("k", kept, False, False), ("k", "null", True, True)]


def test_versions_are_listed_in_pages(bucket: oss2.Bucket) -> None:
    bucket.put_bucket_versioning(BucketVersioningConfig("Enabled"))
    written = [bucket.put_object(key, b"x").versionid for key in ("a", "a", "b")]
    page = bucket.list_object_versions(max_keys=2)
    assert page.is_truncated and [v.versionid for v in page.versions] == [written[1], written[0]]
    rest = bucket.list_object_versions(key_marker=page.next_key_marker, versionid_marker=page.next_versionid_marker)
    assert not rest.is_truncated and [v.versionid for v in rest.versions] == [written[2]]
