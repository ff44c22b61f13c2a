"""Object and bucket operations: Put/Get/Head/Delete/Copy object, listings, bucket basics."""

from __future__ import annotations

import base64
from xml.etree import ElementTree

from localcloud.common import DroppedError, http_date

from . import xmlio
from .content import Content, content_md5, flip_byte
from .core import HandlerCore, Throttle, parse_get_range
from .errors import OssError, invalid_argument
from .store import ObjectRecord, decode_token, encode_token

OWNER: list[tuple[str, xmlio.Value]] = [("ID", "localcloud"), ("DisplayName", "localcloud")]
_RESPONSE_OVERRIDES = {"response-content-type": "Content-Type", "response-content-language": "Content-Language",
                       "response-expires": "Expires", "response-cache-control": "Cache-Control",
                       "response-content-disposition": "Content-Disposition",
                       "response-content-encoding": "Content-Encoding"}


def version_header(version: str | None) -> dict[str, str]:
    """``x-oss-version-id`` of a write or delete in a bucket with versioning (none otherwise)."""
    return {} if version is None else {"x-oss-version-id": version}


class ObjectOps(HandlerCore):
    # -- single objects ---------------------------------------------------------------------
    def op_PutObject(self) -> None:
        bucket = self.write_bucket()
        forbid = self.flag("x-oss-forbid-overwrite")
        if self.oss.store.refuses_overwrite(bucket.name, self.key, forbid):
            raise OssError("FileAlreadyExists", Key=self.key)
        content_type, meta, standard = self.request_metadata()
        content, md5 = self.receive_body()
        record = ObjectRecord(self.key, content, md5, content_type, meta, standard)
        version = self.oss.store.put(bucket.name, record, forbid_overwrite=forbid)
        self.answer(200, {"ETag": f'"{md5}"', "x-oss-hash-crc64ecma": str(content.crc),
                          "Content-MD5": base64.b64encode(bytes.fromhex(md5)).decode(),
                          **version_header(version)}, content_type=None)

    def requested(self) -> ObjectRecord:
        """The object a GET or HEAD asks for: the current one, or the ``versionId`` given."""
        version_id = self.params.get("versionId")
        if version_id is None:
            return self.oss.store.get(self.bucket_name, self.key)
        record = self.oss.store.version(self.bucket_name, self.key, version_id)
        if record.delete_marker:  # OSS: 405 for a GET/HEAD of a delete marker's version
            raise OssError("MethodNotAllowed", "The specified method is not allowed against this resource.",
                           status=405)
        return record

    def op_GetObject(self) -> None:
        record = self.requested()
        self.check_conditions(record)
        headers = self.object_headers(record)
        content_type = record.content_type
        for param, header in _RESPONSE_OVERRIDES.items():
            if param in self.params:
                if header == "Content-Type":
                    content_type = self.params[param]
                else:
                    headers[header] = self.params[param]
        span = parse_get_range(self.header("range"), record.size)
        if span is None:
            start, length, status = 0, record.size, 200
        else:
            start, length, status = span[0], span[1] - span[0] + 1, 206
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{record.size}"
            self.log_fields["range"] = self.header("range")
        self.answer(status, headers, content_type=content_type, length=length)
        self.send_content(record.content, start, length)

    def send_content(self, content: Content, start: int, length: int) -> None:
        """Stream a body at ``bandwidth``; apply the ``corrupt`` / ``reset_body`` faults."""
        throttle = Throttle(self.setting("bandwidth"))
        flip_at = length // 2 if self.fault == "corrupt" and length else None
        cut_at = length // 2 if self.fault == "reset_body" else None
        sent = 0
        for data in content.chunks(start, length):
            if cut_at is not None and sent + len(data) > cut_at:
                self.wfile.write(data[:cut_at - sent])
                self.log_fields["bytes"] = cut_at
                raise DroppedError
            if flip_at is not None and sent <= flip_at < sent + len(data):
                damaged = bytearray(data)
                damaged[flip_at - sent] ^= 0xFF
                data = bytes(damaged)
            view = memoryview(data)
            for offset in range(0, len(view), throttle.chunk):
                piece = view[offset:offset + throttle.chunk]
                self.wfile.write(piece)
                throttle.account(len(piece))
            sent += len(data)
            self.log_fields["bytes"] = sent
        self.log_fields["bytes"] = sent
        if cut_at is not None:
            raise DroppedError

    def op_HeadObject(self) -> None:
        record = self.requested()
        self.check_conditions(record)
        self.answer(200, self.object_headers(record), content_type=record.content_type, length=record.size)

    def op_GetObjectMeta(self) -> None:
        record = self.oss.store.get(self.bucket_name, self.key)
        headers = {"ETag": f'"{record.etag}"', "Last-Modified": http_date(record.last_modified)}
        self.answer(200, headers, content_type=None, length=record.size)

    def op_DeleteObject(self) -> None:
        self.read_bucket()
        version, marker = self.oss.store.delete(self.bucket_name, self.key, self.params.get("versionId"))
        headers = version_header(version)
        if marker:
            headers["x-oss-delete-marker"] = "true"
        self.answer(204, headers, content_type=None)

    def op_CopyObject(self) -> None:
        target = self.write_bucket()
        source = self.copy_source(target)
        forbid = self.flag("x-oss-forbid-overwrite")
        if self.oss.store.refuses_overwrite(target.name, self.key, forbid):
            raise OssError("FileAlreadyExists", Key=self.key)
        directive = self.header("x-oss-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise invalid_argument("x-oss-metadata-directive", directive, "The metadata directive is invalid.")
        limit = self.setting("copy_object_max_size")
        if limit and source.size > int(limit):
            raise OssError("EntityTooLarge", f"CopyObject only copies objects up to {limit} bytes: use "
                           "UploadPartCopy for this one.", MaxSizeAllowed=str(limit))
        self.log_fields["bytes"] = source.size
        self.copy_delay(source.size)
        if directive == "COPY":
            content_type, meta, standard = source.content_type, dict(source.meta), dict(source.headers)
        else:
            content_type, meta, standard = self.request_metadata()
        content, etag = source.content, source.etag
        if self.fault == "corrupt" and source.size:  # a wrong copy: one byte flipped, the ETag of what is stored
            content = flip_byte(source.content, source.size // 2)
            etag = content_md5(content)
        record = ObjectRecord(self.key, content, etag, content_type, meta, standard,
                              source.object_type, source.has_crc and bool(self.setting("crc_on_copy")))
        version = self.oss.store.put(target.name, record, forbid_overwrite=forbid)
        headers = {"ETag": f'"{record.etag}"', **version_header(version)}
        if record.crc is not None:
            headers["x-oss-hash-crc64ecma"] = str(record.crc)
        body = xmlio.render("CopyObjectResult", [("ETag", f'"{record.etag}"'),
                                                 ("LastModified", xmlio.iso8601(record.last_modified))])
        self.answer(200, headers, body)

    # -- listings ---------------------------------------------------------------------------
    def listing_entries(self, objects: list[ObjectRecord], prefixes: list[str],
                        owner: bool) -> list[tuple[str, xmlio.Value]]:
        enc = self.encoder()
        entries: list[tuple[str, xmlio.Value]] = []
        for record in objects:
            fields: list[tuple[str, xmlio.Value]] = [
                ("Key", enc(record.key)), ("LastModified", xmlio.iso8601(record.last_modified)),
                ("ETag", f'"{record.etag}"'), ("Type", record.object_type), ("Size", record.size),
                ("StorageClass", "Standard")]
            if owner:
                fields.append(("Owner", OWNER))
            entries.append(("Contents", fields))
        entries += [("CommonPrefixes", [("Prefix", enc(prefix))]) for prefix in prefixes]
        return entries

    def op_ListObjects(self) -> None:
        self.read_bucket()
        prefix, delimiter = self.params.get("prefix", ""), self.params.get("delimiter", "")
        marker, max_keys = self.params.get("marker", ""), self.int_param("max-keys", 100, 1000)
        listing = self.oss.store.list(self.bucket_name, prefix=prefix, delimiter=delimiter, after=marker,
                                      max_keys=max_keys)
        enc = self.encoder()
        body = xmlio.render("ListBucketResult", [
            ("Name", self.bucket_name), ("Prefix", enc(prefix)), ("Marker", enc(marker)), ("MaxKeys", max_keys),
            ("Delimiter", enc(delimiter)), ("EncodingType", self.params.get("encoding-type")),
            ("IsTruncated", listing.truncated),
            ("NextMarker", enc(listing.next_marker) if listing.truncated else None),
            *self.listing_entries(listing.objects, listing.prefixes, owner=True)])
        self.answer(200, body=body)

    def op_ListObjectsV2(self) -> None:
        self.read_bucket()
        prefix, delimiter = self.params.get("prefix", ""), self.params.get("delimiter", "")
        token, start_after = self.params.get("continuation-token", ""), self.params.get("start-after", "")
        max_keys = self.int_param("max-keys", 100, 1000)
        after = decode_token(token) if token else start_after
        listing = self.oss.store.list(self.bucket_name, prefix=prefix, delimiter=delimiter, after=after,
                                      max_keys=max_keys)
        enc = self.encoder()
        next_token = encode_token(listing.next_marker) if listing.truncated else None
        body = xmlio.render("ListBucketResult", [
            ("Name", self.bucket_name), ("Prefix", enc(prefix)),
            ("ContinuationToken", enc(token) if token else None),
            ("StartAfter", enc(start_after) if start_after else None), ("MaxKeys", max_keys),
            ("Delimiter", enc(delimiter)), ("EncodingType", self.params.get("encoding-type")),
            ("IsTruncated", listing.truncated),
            ("NextContinuationToken", enc(next_token) if next_token else None),
            *self.listing_entries(listing.objects, listing.prefixes,
                                  owner=self.params.get("fetch-owner") == "true"),
            ("KeyCount", len(listing.objects) + len(listing.prefixes))])
        self.answer(200, body=body)

    def op_ListObjectVersions(self) -> None:
        self.read_bucket()
        prefix, delimiter = self.params.get("prefix", ""), self.params.get("delimiter", "")
        key_marker, version_marker = self.params.get("key-marker", ""), self.params.get("version-id-marker", "")
        max_keys = self.int_param("max-keys", 100, 1000)
        listing = self.oss.store.list_versions(self.bucket_name, prefix=prefix, delimiter=delimiter,
                                               key_marker=key_marker, version_id_marker=version_marker,
                                               max_keys=max_keys)
        enc = self.encoder()
        entries: list[tuple[str, xmlio.Value]] = []
        for record, latest in listing.versions:
            common: list[tuple[str, xmlio.Value]] = [
                ("Key", enc(record.key)), ("VersionId", record.version_id or "null"), ("IsLatest", latest),
                ("LastModified", xmlio.iso8601(record.last_modified))]
            if record.delete_marker:
                entries.append(("DeleteMarker", [*common, ("Owner", OWNER)]))
            else:
                entries.append(("Version", [*common, ("ETag", f'"{record.etag}"'), ("Type", record.object_type),
                                            ("Size", record.size), ("StorageClass", "Standard"), ("Owner", OWNER)]))
        entries += [("CommonPrefixes", [("Prefix", enc(p))]) for p in listing.prefixes]
        body = xmlio.render("ListVersionsResult", [
            ("Name", self.bucket_name), ("Prefix", enc(prefix)), ("KeyMarker", enc(key_marker)),
            ("VersionIdMarker", version_marker), ("MaxKeys", max_keys), ("Delimiter", enc(delimiter)),
            ("EncodingType", self.params.get("encoding-type")), ("IsTruncated", listing.truncated),
            ("NextKeyMarker", enc(listing.next_key_marker) if listing.truncated else None),
            ("NextVersionIdMarker", listing.next_version_id_marker if listing.truncated else None),
            *entries])
        self.answer(200, body=body)

    # -- buckets ----------------------------------------------------------------------------
    def op_PutBucketVersioning(self) -> None:
        self.read_bucket()
        try:
            status = (ElementTree.fromstring(self.read_body()).findtext("Status") or "").strip()
        except ElementTree.ParseError as exc:
            raise OssError("MalformedXML") from exc
        if status not in ("Enabled", "Suspended"):
            raise OssError("MalformedXML")
        self.oss.store.set_versioning(self.bucket_name, status)
        self.answer(200, content_type=None)

    def op_GetBucketVersioning(self) -> None:
        bucket = self.read_bucket()
        body = xmlio.render("VersioningConfiguration", [("Status", bucket.versioning)])
        self.answer(200, body=body)

    def op_PutBucket(self) -> None:
        self.read_body()
        region = self.sign_region or self.setting("default_region")
        if self.bucket_name not in self.oss.store.buckets:
            self.oss.store.put_bucket(self.bucket_name, region)
        self.answer(200, {"Location": f"/{self.bucket_name}"}, content_type=None)

    def op_GetBucketLocation(self) -> None:
        bucket = self.read_bucket()
        self.answer(200, body=xmlio.render_text("LocationConstraint", f"oss-{bucket.region}"))

    def op_ListBuckets(self) -> None:
        with self.oss.store.lock:
            buckets = sorted(self.oss.store.buckets.values(), key=lambda bucket: bucket.name)
        entries: list[tuple[str, xmlio.Value]] = [("Bucket", [
            ("Name", bucket.name), ("Location", f"oss-{bucket.region}"),
            ("CreationDate", xmlio.iso8601(bucket.created)),
            ("ExtranetEndpoint", f"oss-{bucket.region}.aliyuncs.com"),
            ("IntranetEndpoint", f"oss-{bucket.region}-internal.aliyuncs.com"),
            ("Region", bucket.region), ("StorageClass", "Standard")]) for bucket in buckets]
        body = xmlio.render("ListAllMyBucketsResult", [("Owner", OWNER), ("Buckets", entries)])
        self.answer(200, body=body)
