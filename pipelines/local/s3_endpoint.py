"""An S3-compatible endpoint on loopback, backed by the local store, for the job programs of a local run.

Processing and training scripts often read and write S3 themselves with boto3 or the AWS CLI. A local
run gives every job program ``AWS_ENDPOINT_URL_S3`` (and ``AWS_ENDPOINT_URL``) pointing here, placeholder
credentials and the region, so those calls reach the store instead of AWS. No S3-compatible server that
serves a directory as it is, with the store's containment rules, is packaged for this machine (moto keeps
objects in memory; MinIO, versitygw and rclone are not on PyPI), so this is a small WSGI application
under waitress, in a thread of the engine's process.

Every key goes through ``Store.path``: the same refusals as the rest of the store (``..`` segments,
symbolic links, control characters). Served: ListBuckets, HeadBucket, CreateBucket, GetBucketLocation,
ListObjects (v1 and v2, prefixes, delimiters, pages, URL encoding), GetObject (ranges), HeadObject,
PutObject (incl. aws-chunked bodies), CopyObject, DeleteObject(s), and multipart uploads (incl.
UploadPartCopy). Signatures and S3 permissions are not checked; object metadata and content types are
not kept. A request for any other AWS service (but SageMaker, which the run's local SageMaker API answers) gets
one error saying so.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import mimetypes
import os
import re
import secrets
import shutil
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from pipelines.atomic import TMP_PREFIX, write_text
from pipelines.errors import KeyConflictError, UnsafePathError
from pipelines.local.loopback_server import LoopbackServer
from pipelines.local.store import Store
from pipelines.s3uri import MAX_KEY_BYTES, bucket_problem

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
# placeholders: the endpoint checks no signature, and no real credential may reach a job program
PLACEHOLDER_ACCESS_KEY = "local-store"
PLACEHOLDER_SECRET_KEY = "local-store-placeholder"
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 1 << 20

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class S3Error(Exception):
    """An S3 error response."""

    def __init__(self, status: int, code: str, message: str, resource: str = ""):
        super().__init__(message)
        self.status, self.code, self.message, self.resource = status, code, message, resource



@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Iterable[bytes] = ()


def _xml(root: ET.Element) -> bytes:
    if root.tag != "Error":  # S3's error documents carry no namespace
        root.set("xmlns", NAMESPACE)
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="utf-8")


def _element(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def _xml_response(root: ET.Element, status: int = 200) -> Response:
    body = _xml(root)
    return Response(status, {"Content-Type": "application/xml", "Content-Length": str(len(body))}, [body])


def _etag(stat: os.stat_result) -> str:
    return '"' + hashlib.md5(f"{stat.st_size}-{stat.st_mtime_ns}".encode()).hexdigest() + '"'


def _iso_date(stat: os.stat_result) -> str:
    return datetime.fromtimestamp(stat.st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class _AwsChunked(io.RawIOBase):
    """The payload of an ``aws-chunked`` body (hex size;chunk-signature CRLF data CRLF ... 0 CRLF trailers)."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.left, self.done = raw, 0, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.done:
            return 0
        if self.left == 0:
            header = self.raw.readline().strip()
            if not header:
                header = self.raw.readline().strip()
            size = header.split(b";")[0]
            if not re.fullmatch(rb"[0-9a-fA-F]{1,16}", size):
                raise S3Error(400, "InvalidArgument", f"the aws-chunked body has a chunk size {size[:40]!r} that is "
                                                      "not a hexadecimal number")
            self.left = int(size, 16)
            if self.left == 0:
                self.done = True
                return 0
        data = self.raw.read(min(len(buffer), self.left))
        if not data:
            raise S3Error(400, "IncompleteBody", "the aws-chunked body ended early")
        buffer[:len(data)] = data
        self.left -= len(data)
        if self.left == 0:
            self.raw.readline()
        return len(data)


class _Hashing(io.RawIOBase):
    """A reader that keeps the MD5 of what passed through it."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.md5 = raw, hashlib.md5()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        self.md5.update(data)
        buffer[:len(data)] = data
        return len(data)


class S3App:
    """The WSGI application: S3's REST API (path-style addressing) over a ``Store``."""

    def __init__(self, store: Store, region: str):
        self.store = store
        self.region = region

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        try:
            response = self._route(environ, method)
        except S3Error as exc:
            response = self._error(exc, method)
        except KeyConflictError as exc:
            response = self._error(S3Error(409, "KeyConflict", str(exc)), method)
        except UnsafePathError as exc:
            response = self._error(S3Error(400, "InvalidArgument", str(exc)), method)
        except OSError as exc:  # the disk is full, a file vanished under a racing request, ...
            response = self._error(S3Error(500, "InternalError", f"the local store could not do this: {exc}"), method)
        headers = {"x-amz-request-id": secrets.token_hex(8).upper(), "Server": "LocalStoreS3", **response.headers}
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", list(headers.items()))
        return [] if method == "HEAD" else response.body

    @staticmethod
    def _error(exc: S3Error, method: str) -> Response:
        root = ET.Element("Error")
        _element(root, "Code", exc.code)
        _element(root, "Message", exc.message)
        if exc.resource:
            _element(root, "Resource", exc.resource)
        body = b"" if method == "HEAD" else _xml(root)
        return Response(exc.status, {"Content-Type": "application/xml", "Content-Length": str(len(body))}, [body])

    # -- routing -----------------------------------------------------------------------------

    def _route(self, environ: dict[str, Any], method: str) -> Response:
        service = self._service(environ)
        if service != "s3":
            body = json.dumps({"__type": "NotImplemented", "message": (
                f"the local engine serves only S3 and SageMaker (AWS_ENDPOINT_URL_SAGEMAKER) to job programs; this "
                f"job called the {service} API, which a local run cannot reach")}).encode()
            return Response(501, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": "NotImplemented",
                                  "Content-Length": str(len(body))}, [body])
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        bucket, _, key = path.lstrip("/").partition("/")
        if not bucket:
            if method == "GET":
                return self._list_buckets()
            raise S3Error(405, "MethodNotAllowed", f"{method} / is not an S3 operation")
        problem = bucket_problem(bucket)
        if problem:
            raise S3Error(400, "InvalidBucketName", problem, f"/{bucket}")
        if not key:
            return self._bucket_operation(environ, method, bucket, query)
        return self._object_operation(environ, method, bucket, key, query)

    @staticmethod
    def _service(environ: dict[str, Any]) -> str:
        credential = environ.get("HTTP_AUTHORIZATION", "")
        if not credential:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            credential = "Credential=" + query.get("X-Amz-Credential", [""])[0] + " "
        match = _CREDENTIAL_SCOPE.search(credential)
        return match.group(1) if match else "s3"

    def _bucket_operation(self, environ: dict[str, Any], method: str, bucket: str,
                          query: dict[str, list[str]]) -> Response:
        bucket_dir = self.store.path(f"s3://{bucket}")
        if method == "PUT" and not query:
            bucket_dir.mkdir(parents=True, exist_ok=True)
            return Response(200, {"Location": f"/{bucket}", "Content-Length": "0"})
        if method == "HEAD":
            if not bucket_dir.is_dir():
                raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist", f"/{bucket}")
            return Response(200, {"x-amz-bucket-region": self.region, "Content-Length": "0"})
        if method == "GET" and "location" in query:
            root = ET.Element("LocationConstraint")
            root.text = "" if self.region == "us-east-1" else self.region
            return _xml_response(root)
        if method == "GET" and not set(query) - {"list-type", "prefix", "delimiter", "max-keys", "continuation-token",
                                                   "start-after", "encoding-type", "fetch-owner", "marker"}:
            return self._list_objects(bucket, query)
        if method == "POST" and "delete" in query:
            return self._delete_objects(environ, bucket)
        raise S3Error(501, "NotImplemented", f"{method} on a bucket with ?{'&'.join(sorted(query))} is not served "
                                             "by the local store's S3 endpoint", f"/{bucket}")

    def _object_operation(self, environ: dict[str, Any], method: str, bucket: str, key: str,
                          query: dict[str, list[str]]) -> Response:
        uri = f"s3://{bucket}/{key}"
        if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise S3Error(400, "KeyTooLongError", "Your key is too long", f"/{bucket}/{key[:80]}...")
        upload_id = query.get("uploadId", [None])[0]
        if method == "POST" and "uploads" in query:
            return self._create_upload(bucket, key, uri)
        if upload_id is not None:
            return self._multipart(environ, method, bucket, key, uri, upload_id, query)
        overrides = {k for k in query if k.startswith("response-")} if method == "GET" else set()
        if query.keys() - {"versionId", "x-id", "partNumber"} - overrides:  # sub-resources: ?acl, ?tagging, ...
            raise S3Error(501, "NotImplemented", f"{method} with ?{'&'.join(sorted(query))} is not served by the "
                                                 "local store's S3 endpoint", f"/{bucket}/{key}")
        if method in ("GET", "HEAD"):
            return self._get_object(environ, bucket, key, uri)
        if method == "PUT":
            if "HTTP_X_AMZ_COPY_SOURCE" in environ:
                return self._copy_object(environ, uri)
            return self._put_object(environ, uri)
        if method == "DELETE":
            self.store.delete(uri)
            return Response(204, {})
        raise S3Error(405, "MethodNotAllowed", f"{method} is not allowed on an object", f"/{bucket}/{key}")

    # -- buckets and listings ---------------------------------------------------------------

    def _list_buckets(self) -> Response:
        root = ET.Element("ListAllMyBucketsResult")
        owner = _element(root, "Owner")
        _element(owner, "ID", "local")
        _element(owner, "DisplayName", "local")
        buckets = _element(root, "Buckets")
        for name in self.store.buckets():
            entry = _element(buckets, "Bucket")
            _element(entry, "Name", name)
            _element(entry, "CreationDate", _iso_date(self.store.path(f"s3://{name}").stat()))
        return _xml_response(root)

    def _list_objects(self, bucket: str, query: dict[str, list[str]]) -> Response:
        def arg(name: str, default: str = "") -> str:
            return query.get(name, [default])[0]

        v2 = arg("list-type") == "2"
        prefix, delimiter, encode = arg("prefix"), arg("delimiter"), arg("encoding-type") == "url"
        try:
            max_keys = max(0, min(int(arg("max-keys", "1000")), 1000))
        except ValueError:
            raise S3Error(400, "InvalidArgument", "max-keys must be an integer") from None
        after = (arg("continuation-token") or arg("start-after")) if v2 else arg("marker")
        try:
            objects = self.store.objects(f"s3://{bucket}/{prefix}")
        except UnsafePathError:
            objects = []  # a prefix no stored key can have (e.g. with a '..' segment) lists nothing
        if not self.store.path(f"s3://{bucket}").is_dir():
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist", f"/{bucket}")
        contents: list[tuple[str, Path]] = []
        prefixes: list[str] = []
        truncated, last = False, ""
        for key, path in objects:
            if after and (key <= after or (after.endswith(delimiter or "\0") and key.startswith(after))):
                continue
            common = None
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = key[:cut + len(delimiter)]
            if common is not None and prefixes and prefixes[-1] == common:
                continue
            if len(contents) + len(prefixes) >= max_keys:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
                last = common
            else:
                contents.append((key, path))
                last = key
        show = (lambda text: urllib.parse.quote(text, safe="/")) if encode else (lambda text: text)
        root = ET.Element("ListBucketResult")
        _element(root, "Name", bucket)
        _element(root, "Prefix", show(prefix))
        _element(root, "MaxKeys", max_keys)
        if delimiter:
            _element(root, "Delimiter", show(delimiter))
        if encode:
            _element(root, "EncodingType", "url")
        _element(root, "IsTruncated", "true" if truncated else "false")
        if v2:
            _element(root, "KeyCount", len(contents) + len(prefixes))
            if arg("continuation-token"):
                _element(root, "ContinuationToken", arg("continuation-token"))
            if arg("start-after"):
                _element(root, "StartAfter", show(arg("start-after")))
            if truncated:
                _element(root, "NextContinuationToken", last)
        else:
            _element(root, "Marker", show(arg("marker")))
            if truncated:
                _element(root, "NextMarker", show(last))
        for key, path in contents:
            stat = path.stat()
            entry = _element(root, "Contents")
            _element(entry, "Key", show(key))
            _element(entry, "LastModified", _iso_date(stat))
            _element(entry, "ETag", _etag(stat))
            _element(entry, "Size", stat.st_size)
            _element(entry, "StorageClass", "STANDARD")
        for common in prefixes:
            _element(_element(root, "CommonPrefixes"), "Prefix", show(common))
        return _xml_response(root)

    def _delete_objects(self, environ: dict[str, Any], bucket: str) -> Response:
        try:
            request = ET.fromstring(self._body(environ).read())
        except ET.ParseError as exc:
            raise S3Error(400, "MalformedXML", f"the Delete request is not XML: {exc}") from None
        quiet = (_find_text(request, "Quiet") or "").lower() == "true"
        root = ET.Element("DeleteResult")
        for item in _find_all(request, "Object"):
            key = _find_text(item, "Key") or ""
            try:
                self.store.delete(f"s3://{bucket}/{key}")
            except UnsafePathError as exc:
                error = _element(root, "Error")
                _element(error, "Key", key)
                _element(error, "Code", "InvalidArgument")
                _element(error, "Message", str(exc))
                continue
            if not quiet:
                _element(_element(root, "Deleted"), "Key", key)
        return _xml_response(root)

    # -- objects -----------------------------------------------------------------------------

    def _existing(self, uri: str, resource: str) -> Path:
        path = self.store.object_path(uri)
        if not path.is_file():
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.", resource)
        return path

    def _get_object(self, environ: dict[str, Any], bucket: str, key: str, uri: str) -> Response:
        path = self._existing(uri, f"/{bucket}/{key}")
        stat = path.stat()
        size = stat.st_size
        headers = {"ETag": _etag(stat), "Last-Modified": formatdate(stat.st_mtime, usegmt=True), "Accept-Ranges": "bytes",
                   "Content-Type": mimetypes.guess_type(key)[0] or "binary/octet-stream"}
        start, end, status = 0, size - 1, 200
        requested = environ.get("HTTP_RANGE")
        if requested:
            match = _RANGE.fullmatch(requested.strip())
            if not match or not (match.group(1) or match.group(2)):
                raise S3Error(400, "InvalidArgument", f"unsupported Range {requested!r} (one bytes=a-b range)")
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start = max(0, size - int(match.group(2)))
            if start >= size or start > end:
                raise S3Error(416, "InvalidRange", "The requested range is not satisfiable", f"/{bucket}/{key}")
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        return Response(status, headers, _read_range(path, start, end - start + 1))

    def _body(self, environ: dict[str, Any]) -> BinaryIO:
        raw = environ["wsgi.input"]
        chunked = ("aws-chunked" in environ.get("HTTP_CONTENT_ENCODING", "")
                   or environ.get("HTTP_X_AMZ_CONTENT_SHA256", "").startswith("STREAMING-"))
        reader = _AwsChunked(raw) if chunked else raw
        return io.BufferedReader(reader) if chunked else reader

    def _put_object(self, environ: dict[str, Any], uri: str) -> Response:
        self.store.put_stream(self._body(environ), uri)
        return Response(200, {"ETag": _etag(self.store.object_path(uri).stat()), "Content-Length": "0"})

    def _copy_source(self, environ: dict[str, Any]) -> Path:
        source = urllib.parse.unquote(environ["HTTP_X_AMZ_COPY_SOURCE"].split("?versionId=")[0]).lstrip("/")
        bucket, _, key = source.partition("/")
        if bucket_problem(bucket) or not key:
            raise S3Error(400, "InvalidArgument", f"x-amz-copy-source {source!r} is not BUCKET/KEY")
        return self._existing(f"s3://{bucket}/{key}", f"/{source}")

    def _copy_object(self, environ: dict[str, Any], uri: str) -> Response:
        source = self._copy_source(environ)
        self.store.put_file(source, uri)
        target = self.store.object_path(uri)
        root = ET.Element("CopyObjectResult")
        stat = target.stat()
        _element(root, "LastModified", _iso_date(stat))
        _element(root, "ETag", _etag(stat))
        return _xml_response(root)

    # -- multipart uploads -------------------------------------------------------------------
    #
    # An upload is a folder of the store (``Store.upload_dir``): ``target`` (its s3:// URI), its parts and their
    # ETags. A part arrives under a temporary name; publishing it, the completion and an abort each hold an
    # exclusive flock on ``target`` and find the upload still there first, so they are serialised per upload in
    # any thread, endpoint or process sharing the store, each answering as if it ran alone in some order. An
    # upload ends by renaming its folder away under that lock: whatever waited for it, or was still arriving,
    # finds it gone and answers 404 NoSuchUpload, as S3 answers for an upload "aborted or completed". So does a
    # completion repeated after it succeeded (S3 may answer that with 200 and the same ETag for a while): the
    # endpoint keeps nothing of an ended upload, and an SDK repeats a completion only when its answer was lost.

    def _create_upload(self, bucket: str, key: str, uri: str) -> Response:
        self.store.path(uri)  # refuse a key the store cannot hold before any part arrives
        upload_id = secrets.token_hex(16)
        folder = self.store.upload_dir(upload_id)
        folder.mkdir(parents=True)
        (folder / "target").write_text(uri)
        root = ET.Element("InitiateMultipartUploadResult")
        _element(root, "Bucket", bucket)
        _element(root, "Key", key)
        _element(root, "UploadId", upload_id)
        return _xml_response(root)

    def _multipart(self, environ: dict[str, Any], method: str, bucket: str, key: str, uri: str, upload_id: str,
                   query: dict[str, list[str]]) -> Response:
        resource = f"/{bucket}/{key}"
        try:
            folder = self.store.upload_dir(upload_id)
        except UnsafePathError:
            raise _no_such_upload(resource) from None
        if not _upload_holds(folder, uri):
            raise _no_such_upload(resource)
        if method == "PUT":
            try:
                number = int(query.get("partNumber", [""])[0])
            except ValueError:
                number = 0
            if not 1 <= number <= 10000:
                raise S3Error(400, "InvalidArgument", "partNumber must be an integer from 1 to 10000")
            return self._upload_part(environ, folder, uri, resource, number)
        if method == "POST":
            return self._complete_upload(environ, folder, bucket, key, uri)
        if method == "DELETE":
            with _held(folder, uri, resource):
                _end_upload(folder)
            return Response(204, {})
        raise S3Error(501, "NotImplemented", f"{method} on a multipart upload (ListParts) is not served locally")

    def _part_source(self, environ: dict[str, Any]) -> BinaryIO:
        """What a part holds: the request's body, or the range of the copied object (UploadPartCopy)."""
        if "HTTP_X_AMZ_COPY_SOURCE" not in environ:
            return self._body(environ)
        source = self._copy_source(environ)
        first, length = 0, source.stat().st_size
        wanted = environ.get("HTTP_X_AMZ_COPY_SOURCE_RANGE")
        if wanted:
            match = _RANGE.fullmatch(wanted.strip())
            if not match or not match.group(1) or not match.group(2):
                raise S3Error(400, "InvalidArgument", f"x-amz-copy-source-range {wanted!r} is not bytes=first-last")
            first, length = int(match.group(1)), int(match.group(2)) - int(match.group(1)) + 1
        return io.BufferedReader(_ChainReader(_read_range(source, first, length)))

    def _upload_part(self, environ: dict[str, Any], folder: Path, uri: str, resource: str, number: int) -> Response:
        hashing = _Hashing(self._part_source(environ))
        arriving = folder / f"{TMP_PREFIX}{secrets.token_hex(6)}-{number:05d}"
        try:
            handle = open(arriving, "xb")
        except FileNotFoundError:  # the upload ended since this request found it
            raise _no_such_upload(resource) from None
        try:
            with handle:
                shutil.copyfileobj(hashing, handle)
            etag = f'"{hashing.md5.hexdigest()}"'
            with _held(folder, uri, resource):  # never while the upload completes, nor once it has ended
                arriving.replace(folder / f"{number:05d}")
                write_text(folder / f"{number:05d}.etag", etag)
        finally:
            arriving.unlink(missing_ok=True)
        if "HTTP_X_AMZ_COPY_SOURCE" in environ:
            root = ET.Element("CopyPartResult")
            _element(root, "ETag", etag)
            return _xml_response(root)
        return Response(200, {"ETag": etag, "Content-Length": "0"})

    def _complete_upload(self, environ: dict[str, Any], folder: Path, bucket: str, key: str, uri: str) -> Response:
        listed = _listed_parts(self._body(environ).read())  # read before the lock: a slow client holds up no one
        with _held(folder, uri, f"/{bucket}/{key}"):
            etags = []
            for number, etag in listed:
                try:
                    stored = (folder / f"{number:05d}.etag").read_text()
                except FileNotFoundError:
                    stored = ""
                if not stored or etag.strip('"') != stored.strip('"'):
                    raise S3Error(400, "InvalidPart", f"part {number} was not uploaded or its ETag does not match")
                etags.append(stored)
            parts = (folder / f"{number:05d}" for number, _ in listed)
            self.store.put_stream(io.BufferedReader(_ChainReader(_concatenated(parts))), uri)
            _end_upload(folder)
        digest = hashlib.md5(b"".join(bytes.fromhex(etag.strip('"')) for etag in etags)).hexdigest()
        root = ET.Element("CompleteMultipartUploadResult")
        _element(root, "Location", f"/{bucket}/{key}")
        _element(root, "Bucket", bucket)
        _element(root, "Key", key)
        _element(root, "ETag", f'"{digest}-{len(etags)}"')
        return _xml_response(root)


def _no_such_upload(resource: str) -> S3Error:
    return S3Error(404, "NoSuchUpload", "The specified multipart upload does not exist.", resource)


def _upload_holds(folder: Path, uri: str) -> bool:
    """Whether ``folder`` holds a multipart upload to ``uri`` that has not ended."""
    try:
        return (folder / "target").read_text() == uri
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def _held(folder: Path, uri: str, resource: str) -> Iterator[None]:
    """The upload in ``folder``, locked against every other request on it; NoSuchUpload if it has ended, even
    while this request waited for it."""
    try:
        handle = open(folder / "target", "rb")
    except FileNotFoundError:
        raise _no_such_upload(resource) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if not _upload_holds(folder, uri):
            raise _no_such_upload(resource)
        yield


def _end_upload(folder: Path) -> None:
    """End a held upload: its folder is renamed away at once, then removed with the parts it holds."""
    ended = folder.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{folder.name}")
    folder.rename(ended)
    shutil.rmtree(ended, ignore_errors=True)


def _listed_parts(body: bytes) -> list[tuple[int, str]]:
    """(part number, ETag) of each part a CompleteMultipartUpload request lists, in ascending order."""
    try:
        request = ET.fromstring(body)
    except ET.ParseError as exc:
        raise S3Error(400, "MalformedXML", f"the CompleteMultipartUpload request is not XML: {exc}") from None
    listed = []
    for item in _find_all(request, "Part"):
        text = (_find_text(item, "PartNumber") or "").strip()
        if not text.isdigit() or not 1 <= int(text) <= 10000:
            raise S3Error(400, "InvalidPart", f"PartNumber {text[:20]!r} is not an integer from 1 to 10000")
        listed.append((int(text), _find_text(item, "ETag") or ""))
    numbers = [number for number, _ in listed]
    if not numbers or numbers != sorted(set(numbers)):
        raise S3Error(400, "InvalidPartOrder", "the parts must be listed once each, in ascending order")
    return listed


def _find_all(element: ET.Element, tag: str) -> list[ET.Element]:
    return [child for child in element.iter() if child.tag.rsplit("}", 1)[-1] == tag]


def _find_text(element: ET.Element, tag: str) -> str | None:
    found = _find_all(element, tag)
    return found[0].text if found else None


def _read_range(path: Path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        handle.seek(start)
        while length > 0:
            data = handle.read(min(CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data


def _concatenated(paths: Iterable[Path]) -> Iterator[bytes]:
    for path in paths:
        yield from _read_range(path, 0, path.stat().st_size)


class _ChainReader(io.RawIOBase):
    """A file-like reader over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks, self.pending = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            self.pending = next(self.chunks, b"")
            if not self.pending:
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        return size


def _channel_class() -> type:
    """waitress's HTTP channel, answering a request that has no body and asks ``Expect: 100-continue`` (boto3's
    ``put_object(Body=b"")``, every ``_SUCCESS`` marker) at once: waitress 3.0.2 sends 100 Continue, then marks
    the complete request incomplete and waits for a body that never comes. RFC 9110 lets a server skip the
    100 and send the final answer."""
    from waitress.channel import HTTPChannel

    class ContinueOnlyForBodies(HTTPChannel):
        def send_continue(self) -> None:
            if self.request.completed:
                self.request.expect_continue = False
                return
            super().send_continue()

    return ContinueOnlyForBodies


class S3Endpoint(LoopbackServer):
    """The S3 endpoint of one local run: started on a free loopback port, stopped when the run ends."""

    def __init__(self, store: Store, region: str):
        super().__init__(S3App(store, region), "LocalStoreS3", _channel_class())
        self.region = region

    def job_environment(self) -> dict[str, str]:
        """What a job program needs to reach the store with boto3 or the AWS CLI (and nothing else of AWS)."""
        return {"AWS_ENDPOINT_URL_S3": self.url, "AWS_ENDPOINT_URL": self.url,
                "AWS_ACCESS_KEY_ID": PLACEHOLDER_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": PLACEHOLDER_SECRET_KEY,
                "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
