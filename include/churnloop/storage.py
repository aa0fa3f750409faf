"""The lake and the landing zone: datasets partitioned by day, on a folder or on S3.

Every write is atomic. On a local folder a file is written under a hidden temporary
name and renamed into place; on S3 an object becomes visible only when its upload
completes. A task killed mid-write therefore leaves nothing where readers look, and a
re-run of a day overwrites the same objects, so there are never duplicates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from churnloop.errors import DataError
from churnloop.settings import Settings

PARTITION_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
DATA_FILE = "data.parquet"
DIGEST = "sha256"
"""How ``Store.digest`` and ``digest`` fingerprint a file's content."""
_DIGEST_CHUNK = 1 << 20


class PartitionNotFound(FileNotFoundError):
    """A dataset has no partition for the requested day."""


class CorruptFile(DataError, ValueError):
    """A file exists but cannot be read as what it claims to be: a data error, whichever
    step reads it, since reading it again cannot help."""


def partition_name(day: dt.date) -> str:
    return f"dt={day.isoformat()}"


def digest(data: bytes) -> str:
    """The fingerprint of ``data``, comparable with ``Store.digest`` of a stored file."""
    return hashlib.new(DIGEST, data).hexdigest()


@dataclass(frozen=True)
class Store:
    """A root (folder or ``s3://bucket/prefix``) holding datasets of ``dt=`` partitions."""

    uri: str
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    @property
    def bucket(self) -> str:
        """The S3 bucket of an ``s3://`` root."""
        if not self.is_s3:
            raise ValueError(f"{self.uri} is not on S3")
        return self._root.split("/", 1)[0]

    @property
    def fs(self) -> pafs.FileSystem:
        if not self.is_s3:
            return pafs.LocalFileSystem()
        options: dict[str, object] = {"region": self.s3_region}
        if self.s3_endpoint_url:
            endpoint = urlparse(self.s3_endpoint_url)
            options.update(endpoint_override=endpoint.netloc, scheme=endpoint.scheme or "http")
        return pafs.S3FileSystem(**options)

    @property
    def _root(self) -> str:
        """The root as pyarrow names it: an absolute path, or ``bucket/prefix`` on S3."""
        if self.is_s3:
            return self.uri.removeprefix("s3://").rstrip("/")
        return str(Path(self.uri).expanduser().resolve())

    def _path(self, relpath: str) -> str:
        return f"{self._root}/{relpath.strip('/')}" if relpath else self._root

    def uri_of(self, relpath: str) -> str:
        """A location a person can paste: ``s3://...`` or an absolute local path."""
        return f"s3://{self._path(relpath)}" if self.is_s3 else self._path(relpath)

    def local_path(self, relpath: str) -> Path | None:
        """The local file behind ``relpath``, or None when the store is remote."""
        return None if self.is_s3 else Path(self._path(relpath))

    # -- partitions --------------------------------------------------------------------

    @staticmethod
    def partition(dataset: str, day: dt.date) -> str:
        return f"{dataset.strip('/')}/{partition_name(day)}"

    def partition_files(self, dataset: str) -> str:
        """A glob of the data file of every partition of ``dataset``, for a query engine.

        It names only the files written in place, never a write's hidden temporary file.
        """
        return f"{self.uri_of(dataset)}/dt=*/{DATA_FILE}"

    def partitions(self, dataset: str) -> list[dt.date]:
        """The days a dataset holds data for, oldest first (empty partitions excluded)."""
        selector = pafs.FileSelector(self._path(dataset), allow_not_found=True)
        days = []
        for info in self.fs.get_file_info(selector):
            match = PARTITION_RE.match(info.base_name)
            if match and info.type == pafs.FileType.Directory:
                day = dt.date.fromisoformat(match.group(1))
                if self.exists(self.data_file(dataset, day)):
                    days.append(day)
        return sorted(days)

    def data_file(self, dataset: str, day: dt.date) -> str:
        """The relative path of the day's Parquet file of ``dataset``."""
        return f"{self.partition(dataset, day)}/{DATA_FILE}"

    def write_table(self, dataset: str, day: dt.date, table: pa.Table) -> str:
        """Replace the day's partition of ``dataset`` with ``table``; returns its URI."""
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd")
        return self.write_data_file(dataset, day, sink.getvalue())

    def read_table(self, dataset: str, day: dt.date, columns: list[str] | None = None) -> pa.Table:
        return self.read_parquet(self._existing_data_file(dataset, day), columns=columns)

    def read_parquet(self, relpath: str, columns: list[str] | None = None) -> pa.Table:
        """Read ``columns`` (all by default) straight from the file, pages as they are needed.

        Only a file that is not Parquet at all is `CorruptFile` here: an OSError may be the
        network's as well as a page's. A step that must know the whole file is sound reads
        it with `read_data_file`.
        """
        with self.fs.open_input_file(self._path(relpath)) as handle:
            try:
                return pq.read_table(handle, columns=columns)
            except pa.ArrowInvalid as error:
                raise _corrupt(self.uri_of(relpath), error) from error

    def read_data_file(self, dataset: str, day: dt.date) -> tuple[bytes, pa.Table]:
        """The day's Parquet file as stored, and the table it holds, every page decoded.

        For a step that publishes a partition it has checked: `write_data_file` with
        these bytes writes exactly what was checked, with no encoding again. The bytes are
        read first, so an error decoding them is the file's (garbled pages under an intact
        footer give thrift or codec errors, OSError in pyarrow): `CorruptFile`.
        """
        relpath = self._existing_data_file(dataset, day)
        data = self.read_bytes(relpath)
        try:
            return data, pq.read_table(pa.BufferReader(data))
        except (pa.ArrowException, OSError) as error:
            raise _corrupt(self.uri_of(relpath), error) from error

    def _existing_data_file(self, dataset: str, day: dt.date) -> str:
        relpath = self.data_file(dataset, day)
        if not self.exists(relpath):
            raise PartitionNotFound(f"no partition {self.uri_of(relpath)}")
        return relpath

    def write_data_file(self, dataset: str, day: dt.date, data: bytes) -> str:
        """Replace the day's partition of ``dataset`` with a Parquet file's bytes; its URI."""
        return self.write_bytes(self.data_file(dataset, day), data)

    def read_days(
        self, dataset: str, days: list[dt.date], columns: list[str] | None = None
    ) -> pa.Table:
        """Concatenate the partitions of ``days`` that exist; missing days are skipped."""
        held = set(self.partitions(dataset))
        tables = [self.read_table(dataset, day, columns) for day in days if day in held]
        if not tables:
            raise PartitionNotFound(
                f"no partition of {self.uri_of(dataset)} between {min(days)} and {max(days)}"
            )
        return pa.concat_tables(tables, promote_options="permissive")

    def delete_partition(self, dataset: str, day: dt.date) -> None:
        path = self._path(self.partition(dataset, day))
        if self.fs.get_file_info(path).type == pafs.FileType.Directory:
            self.fs.delete_dir(path)

    # -- plain objects -----------------------------------------------------------------

    def exists(self, relpath: str) -> bool:
        return self.fs.get_file_info(self._path(relpath)).type == pafs.FileType.File

    def write_bytes(self, relpath: str, data: bytes) -> str:
        """Write one object atomically; returns its URI."""
        path = self._path(relpath)
        fs = self.fs
        if self.is_s3:
            with fs.open_output_stream(path) as out:
                out.write(data)
            return self.uri_of(relpath)
        parent, _, name = path.rpartition("/")
        fs.create_dir(parent, recursive=True)
        temporary = f"{parent}/.{name}.tmp-{uuid.uuid4().hex}"
        try:
            with fs.open_output_stream(temporary) as out:
                out.write(data)
            fs.move(temporary, path)
        finally:
            if fs.get_file_info(temporary).type == pafs.FileType.File:
                fs.delete_file(temporary)
        return self.uri_of(relpath)

    def read_bytes(self, relpath: str) -> bytes:
        if not self.exists(relpath):
            raise FileNotFoundError(f"no object {self.uri_of(relpath)}")
        with self.fs.open_input_stream(self._path(relpath)) as handle:
            return handle.read()

    def digest(self, relpath: str) -> str | None:
        """The fingerprint of the file's content now (see `digest`), None if there is none.

        A step that read a file compares it before acting on what it read: the file may
        have been replaced since, whatever the store's clock or object versions say.
        """
        if not self.exists(relpath):
            return None
        fingerprint = hashlib.new(DIGEST)
        with self.fs.open_input_stream(self._path(relpath)) as handle:
            while chunk := handle.read(_DIGEST_CHUNK):
                fingerprint.update(chunk)
        return fingerprint.hexdigest()

    def list_files(self, prefix: str) -> Iterator[str]:
        """Relative paths of the visible files under ``prefix`` (temporaries hidden)."""
        selector = pafs.FileSelector(self._path(prefix), recursive=True, allow_not_found=True)
        root = self._root + "/"
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File and not info.base_name.startswith("."):
                yield info.path.removeprefix(root)


def _corrupt(uri: str, error: Exception) -> CorruptFile:
    return CorruptFile(f"{uri} is not a readable Parquet file: {error}")


def lake(settings: Settings) -> Store:
    return Store(settings.lake_uri, settings.s3_endpoint_url, settings.s3_region)


def landing(settings: Settings) -> Store:
    return Store(settings.landing_uri, settings.s3_endpoint_url, settings.s3_region)
