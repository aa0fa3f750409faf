import hashlib
import json
import re
from pathlib import Path

import great_expectations

from churnloop.settings import get_settings
from churnloop.validation.data_docs_assets import LOCAL_COPIES, VENDOR_DIR, VENDORED

GX_TEMPLATES = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
LOADED_FROM_OUTSIDE = re.compile(r"<(?:script|link)\b[^>]*?\b(?:src|href)=\"(https?://[^\"]+)\"")


def vendor_dir() -> Path:
    return get_settings().great_expectations_dir / VENDOR_DIR


def test_each_vendored_file_is_the_listed_one():
    for file in VENDORED:
        data = (vendor_dir() / file.relpath).read_bytes()
        assert hashlib.sha256(data).hexdigest() == file.sha256, file.relpath


def test_the_vendor_folder_holds_only_listed_files():
    held = {path.relative_to(vendor_dir()).as_posix() for path in vendor_dir().rglob("*")}
    files = {path for path in held if (vendor_dir() / path).is_file()}
    assert files == {file.relpath for file in VENDORED}


def test_every_package_brings_its_license():
    """Its license file, or (popper.js and vega ship none) its package.json naming it."""
    for package in {file.package for file in VENDORED}:
        files = {file.path for file in VENDORED if file.package == package}
        if not files & {"LICENSE", "LICENSE.txt"}:
            assert "package.json" in files, package
            declared = json.loads((vendor_dir() / package / "package.json").read_text())
            assert declared["license"], package


def test_every_script_and_style_gx_templates_load_from_outside_has_a_local_copy():
    """A GX upgrade naming another CDN file fails here: vendor it (data_docs_assets)."""
    named = {
        url
        for template in GX_TEMPLATES.glob("*.j2")
        for url in LOADED_FROM_OUTSIDE.findall(template.read_text())
    }
    assert len(named) > 10
    assert named <= set(LOCAL_COPIES), sorted(named - set(LOCAL_COPIES))
