"""Multipart operations: Initiate, UploadPart, UploadPartCopy, Complete, Abort, ListParts, ListUploads."""

from __future__ import annotations

import base64
import hashlib

from . import xmlio
from .content import CompositeContent, slice_content
from .core import HandlerCore, parse_copy_range
from .errors import OssError, invalid_argument
from .store import MAX_PART_NUMBER, ObjectRecord, Part, Upload, multipart_etag

MAX_PART_SIZE = 5 << 30


class MultipartOps(HandlerCore):
    def upload(self) -> Upload:
        upload_id = self.params.get("uploadId", "")
        self.log_fields["upload_id"] = upload_id
        return self.oss.store.upload(self.bucket_name, self.key, upload_id)

    def part_number(self) -> int:
        value = self.params.get("partNumber", "")
        if not value.isdigit() or not 1 <= int(value) <= MAX_PART_NUMBER:
            raise invalid_argument("partNumber", value,
                                   f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive.")
        self.log_fields["part_number"] = int(value)
        return int(value)

    def op_InitiateMultipartUpload(self) -> None:
        bucket = self.write_bucket()
        self.read_body()
        if self.oss.store.refuses_overwrite(bucket.name, self.key, self.flag("x-oss-forbid-overwrite")):
            raise OssError("FileAlreadyExists", Key=self.key)
        content_type, meta, standard = self.request_metadata()
        upload = self.oss.store.create_upload(bucket.name, self.key, content_type, meta, standard)
        self.log_fields["upload_id"] = upload.upload_id
        enc = self.encoder()
        body = xmlio.render("InitiateMultipartUploadResult", [
            ("Bucket", self.bucket_name), ("Key", enc(self.key)), ("UploadId", upload.upload_id),
            ("EncodingType", self.params.get("encoding-type"))])
        self.answer(200, body=body)

    def op_UploadPart(self) -> None:
        upload, number = self.upload(), self.part_number()
        size = self.header("content-length")
        if size.isdigit() and int(size) > MAX_PART_SIZE:
            raise OssError("EntityTooLarge", MaxSizeAllowed=str(MAX_PART_SIZE))
        content, md5 = self.receive_body()
        part = Part(number, content, md5, has_crc=True)
        self.oss.store.put_part(self.bucket_name, self.key, upload.upload_id, part)
        self.answer(200, {"ETag": f'"{md5}"', "x-oss-hash-crc64ecma": str(content.crc),
                          "Content-MD5": base64.b64encode(bytes.fromhex(md5)).decode()}, content_type=None)

    def op_UploadPartCopy(self) -> None:
        upload, number = self.upload(), self.part_number()
        source = self.copy_source(self.read_bucket())
        range_header = self.header("x-oss-copy-source-range")
        start, end = parse_copy_range(range_header, source.size)
        length = end - start + 1
        self.log_fields.update(range=range_header or None, bytes=length)
        if length > MAX_PART_SIZE:
            raise OssError("EntityTooLarge", MaxSizeAllowed=str(MAX_PART_SIZE))
        self.copy_delay(length)
        content = slice_content(source.content, start, length)
        etag = source.content.range_md5(start, length) or hashlib.md5(
            f"{source.etag}:{start}-{end}".encode()).hexdigest().upper()
        has_crc = source.has_crc and bool(self.setting("crc_on_copy"))
        part = Part(number, content, etag, has_crc)
        self.oss.store.put_part(self.bucket_name, self.key, upload.upload_id, part)
        headers = {"ETag": f'"{etag}"', "Content-Range": f"bytes {start}-{end}/{source.size}"}
        if has_crc:
            headers["x-oss-hash-crc64ecma"] = str(content.crc)
        body = xmlio.render("CopyPartResult", [("LastModified", xmlio.iso8601(part.last_modified)),
                                               ("ETag", f'"{etag}"')])
        self.answer(200, headers, body)

    def op_CompleteMultipartUpload(self) -> None:
        upload = self.upload()
        body = self.read_body()
        store = self.oss.store
        with store.lock:
            if self.header("x-oss-complete-all").lower() == "yes":
                if body.strip():
                    raise invalid_argument("x-oss-complete-all", "yes",
                                           "With x-oss-complete-all the request must have no body.")
                wanted = [(number, upload.parts[number].etag) for number in sorted(upload.parts)]
            else:
                wanted = xmlio.parse_complete(body)
            parts = self.check_parts(upload, wanted)
            if store.refuses_overwrite(self.bucket_name, self.key, self.flag("x-oss-forbid-overwrite")):
                raise OssError("FileAlreadyExists", Key=self.key)
            content = CompositeContent([(part.content, 0, part.content.size) for part in parts])
            record = ObjectRecord(self.key, content, multipart_etag([part.etag for part in parts]),
                                  upload.content_type, upload.meta, upload.headers, "Multipart",
                                  all(part.has_crc for part in parts))
            version = store.put(self.bucket_name, record)
            store.finish_upload(self.bucket_name, self.key, upload.upload_id)
        headers = {"ETag": f'"{record.etag}"', **({} if version is None else {"x-oss-version-id": version})}
        if record.crc is not None:
            headers["x-oss-hash-crc64ecma"] = str(record.crc)
        enc = self.encoder()
        result = xmlio.render("CompleteMultipartUploadResult", [
            ("EncodingType", self.params.get("encoding-type")),
            ("Location", f"http://{self.bucket_name}.oss-{self.read_bucket().region}.aliyuncs.com/{enc(self.key)}"),
            ("Bucket", self.bucket_name), ("Key", enc(self.key)), ("ETag", f'"{record.etag}"')])
        self.answer(200, headers, result)

    def check_parts(self, upload: Upload, wanted: list[tuple[int, str]]) -> list[Part]:
        """The parts named in a Complete request, in order, after OSS's checks."""
        parts: list[Part] = []
        previous = 0
        for number, etag in wanted:
            if not 1 <= number <= MAX_PART_NUMBER:
                raise invalid_argument("PartNumber", str(number), f"Part number must be an integer between 1 "
                                       f"and {MAX_PART_NUMBER}, inclusive.")
            if number <= previous:
                raise OssError("InvalidPartOrder", PartNumber=str(number))
            previous = number
            part = upload.parts.get(number)
            if part is None or part.etag.upper() != etag.upper():
                raise OssError("InvalidPart", PartNumber=str(number), ETag=etag, UploadId=upload.upload_id)
            parts.append(part)
        minimum = int(self.setting("min_part_size"))
        for part in parts[:-1]:
            if part.content.size < minimum:
                raise OssError("EntityTooSmall", PartNumber=str(part.number), ProposedSize=str(part.content.size),
                               MinSizeAllowed=str(minimum))
        return parts

    def op_AbortMultipartUpload(self) -> None:
        upload = self.upload()
        self.oss.store.finish_upload(self.bucket_name, self.key, upload.upload_id)
        self.answer(204, content_type=None)

    def op_ListParts(self) -> None:
        upload = self.upload()
        marker = self.params.get("part-number-marker", "")
        after = int(marker) if marker.isdigit() else 0
        max_parts = self.int_param("max-parts", 1000, 1000)
        with self.oss.store.lock:
            numbers = [number for number in sorted(upload.parts) if number > after]
            parts = [upload.parts[number] for number in numbers[:max_parts]]
        truncated = len(numbers) > max_parts
        entries: list[tuple[str, xmlio.Value]] = [("Part", [
            ("PartNumber", part.number), ("LastModified", xmlio.iso8601(part.last_modified)),
            ("ETag", f'"{part.etag}"'),
            ("HashCrc64ecma", str(part.content.crc) if part.has_crc else None),
            ("Size", part.content.size)]) for part in parts]
        body = xmlio.render("ListPartsResult", [
            ("Bucket", self.bucket_name), ("Key", self.key), ("UploadId", upload.upload_id),
            ("PartNumberMarker", after), ("NextPartNumberMarker", parts[-1].number if parts else after),
            ("MaxParts", max_parts), ("IsTruncated", truncated), *entries])
        self.answer(200, body=body)

    def op_ListMultipartUploads(self) -> None:
        self.read_bucket()
        prefix, delimiter = self.params.get("prefix", ""), self.params.get("delimiter", "")
        key_marker, id_marker = self.params.get("key-marker", ""), self.params.get("upload-id-marker", "")
        max_uploads = self.int_param("max-uploads", 1000, 1000)
        with self.oss.store.lock:
            uploads = sorted(self.read_bucket().uploads.values(), key=lambda u: (u.key, u.upload_id))
        selected: list[Upload] = []
        prefixes: list[str] = []
        truncated = False
        for upload in uploads:
            if not upload.key.startswith(prefix):
                continue
            if upload.key < key_marker or (upload.key == key_marker and (not id_marker
                                                                          or upload.upload_id <= id_marker)):
                continue
            index = upload.key.find(delimiter, len(prefix)) if delimiter else -1
            group = upload.key[:index + len(delimiter)] if index >= 0 else None
            if group is not None and (group in prefixes or group == key_marker):
                continue
            if len(selected) + len(prefixes) >= max_uploads:
                truncated = True
                break
            if group is None:
                selected.append(upload)
            else:
                prefixes.append(group)
        enc = self.encoder()
        last = selected[-1] if selected else None
        entries: list[tuple[str, xmlio.Value]] = [("Upload", [
            ("Key", enc(upload.key)), ("UploadId", upload.upload_id), ("StorageClass", "Standard"),
            ("Initiated", xmlio.iso8601(upload.initiated))]) for upload in selected]
        entries += [("CommonPrefixes", [("Prefix", enc(group))]) for group in prefixes]
        body = xmlio.render("ListMultipartUploadsResult", [
            ("Bucket", self.bucket_name), ("EncodingType", self.params.get("encoding-type")),
            ("KeyMarker", enc(key_marker)), ("UploadIdMarker", id_marker),
            ("NextKeyMarker", enc(last.key) if last else ""), ("NextUploadIdMarker", last.upload_id if last else ""),
            ("Delimiter", enc(delimiter)), ("Prefix", enc(prefix)), ("MaxUploads", max_uploads),
            ("IsTruncated", truncated), *entries])
        self.answer(200, body=body)
