"""Download the Data Docs assets that ``churnloop.validation.data_docs_assets`` lists.

Each package is fetched with ``npm pack <name>@<version>`` (through the npm client's
configured registry) and only the listed files are written, to ``great_expectations/vendor/``;
files there that the list does not name are removed. A file whose sha256 differs from the
list is named with its digest, and the script exits 1: check the change, then update the list.

    .venv/bin/python .ci/vendor_data_docs_assets.py
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from churnloop.validation.data_docs_assets import VENDOR_DIR, VENDORED, VendoredFile

VENDOR = Path(__file__).resolve().parents[1] / "great_expectations" / VENDOR_DIR


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        tarballs = {package: _pack(package, Path(scratch)) for package in _packages()}
        changed = [file for file in VENDORED if not _write(file, tarballs[file.package])]
    _remove_unlisted()
    for file in changed:
        print(f"sha256 changed: {file.relpath} {_sha256(VENDOR / file.relpath)}")
    return 1 if changed else 0


def _packages() -> list[str]:
    return list(dict.fromkeys(file.package for file in VENDORED))


def _pack(package: str, scratch: Path) -> Path:
    """The package's tarball, as ``npm pack`` downloads it."""
    output = subprocess.run(
        ["npm", "pack", package, "--pack-destination", str(scratch)],
        check=True,
        capture_output=True,
        text=True,
    )
    return scratch / output.stdout.strip().splitlines()[-1]


def _write(file: VendoredFile, tarball: Path) -> bool:
    """Write ``file`` from the package's tarball; whether its sha256 is the listed one."""
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(f"package/{file.path}")
        if member is None:
            raise FileNotFoundError(f"{file.path} is not a file in {file.package}")
        data = member.read()
    target = VENDOR / file.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return hashlib.sha256(data).hexdigest() == file.sha256


def _remove_unlisted() -> None:
    listed = {VENDOR / file.relpath for file in VENDORED}
    for path in sorted(VENDOR.rglob("*"), reverse=True):
        if path.is_file() and path not in listed:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
