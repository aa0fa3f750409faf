"""The files Data Docs pages load from public CDNs, kept in the repository so pages work offline.

GX's page templates name CDN URLs (Bootstrap, jQuery, bootstrap-table, Font Awesome, Vega, ...)
and a logo on GX's web server. The same versions, taken from the npm packages those CDNs
serve, live in ``great_expectations/vendor/<package>@<version>/<path in the package>``;
``data_docs`` publishes them under the site's ``static/vendor/`` and rewrites each URL of
`LOCAL_COPIES` to a relative link. `VENDORED` lists every file with its sha256 (the tests
check both the files and that no page still loads anything from outside).

Refresh: ``.venv/bin/python .ci/vendor_data_docs_assets.py`` downloads each package with
``npm pack`` and writes the listed files; after a GX upgrade that names new URLs, list them
here and run it: it prints the sha256 of each file that differs from this list.
"""

from __future__ import annotations

from dataclasses import dataclass

VENDOR_DIR = "vendor"
"""Folder of the vendored files, in ``great_expectations/`` and in the site's ``static/``."""


@dataclass(frozen=True)
class VendoredFile:
    """One file of an npm package, and the CDN URL GX's templates load it from (if any)."""

    package: str
    """npm ``name@version``."""
    path: str
    sha256: str
    cdn_url: str | None = None

    @property
    def relpath(self) -> str:
        """Where the file lies under ``vendor/``: the package, then its path in the package."""
        return f"{self.package}/{self.path}"


VENDORED: tuple[VendoredFile, ...] = (
    VendoredFile(
        "bootstrap@4.3.1",
        "dist/css/bootstrap.min.css",
        "60b19e5da6a9234ff9220668a5ec1125c157a268513256188ee80f2d2c8d8d36",
        "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css",
    ),
    VendoredFile(
        "bootstrap@4.3.1",
        "dist/js/bootstrap.min.js",
        "0a34a87842c539c1f4feec56bba982fd596b73500046a6e6fe38a22260c6577b",
        "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js",
    ),
    VendoredFile(
        "bootstrap@4.3.1",
        "LICENSE",
        "074d99b8c25d13649dac52080900ee8c8d2373d07ea3f4fb67bd2bf79aa8cc72",
    ),
    VendoredFile(
        "bootstrap-table@1.19.1",
        "dist/bootstrap-table.min.css",
        "643f536f6982af4d7287af23f89ad457dd7e4a82f9c695330a112b0881c30a4a",
        "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css",
    ),
    VendoredFile(
        "bootstrap-table@1.19.1",
        "dist/bootstrap-table.min.js",
        "06a571a9beb50bd5ddd60517159775dfec1f3e798fff38fb117ae2350dc9ba9d",
        "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js",
    ),
    VendoredFile(
        "bootstrap-table@1.19.1",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
        "111f68d31d1bdd714f9503bf5f4e162e0739c363e4ff2feef950d39e78266ffc",
        "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    VendoredFile(
        "bootstrap-table@1.19.1",
        "LICENSE",
        "fb50e42cb539382385f8d66572fef8ec08a34dd7dc00ba7a5ce0668d225dc35b",
    ),
    VendoredFile(
        "bootstrap-table@1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
        "b3ff051168696ec9ae3cf8616c59a6db8734fb282863b23edfd8c0f93eb5c4f0",
        "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    VendoredFile(
        "bootstrap-table@1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
        "2c707bb54520737762a76f2238e87627993fb63bcef6d789a21a4957f393fa1c",
        "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    VendoredFile(
        "bootstrap-table@1.19.0",
        "LICENSE",
        "fb50e42cb539382385f8d66572fef8ec08a34dd7dc00ba7a5ce0668d225dc35b",
    ),
    VendoredFile(
        "bootstrap-datepicker@1.9.0",
        "dist/css/bootstrap-datepicker.min.css",
        "b22c8ea45fe905650f8087108b5ed32c1923bcd80d400adc9b0241f18be40208",
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css",
    ),
    VendoredFile(
        "bootstrap-datepicker@1.9.0",
        "dist/js/bootstrap-datepicker.min.js",
        "6ea55ea86749ee1fe560fabac6b3effd81b33046fa74dc657e24d41d28110a9f",
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
    ),
    VendoredFile(
        "bootstrap-datepicker@1.9.0",
        "LICENSE",
        "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30",
    ),
    VendoredFile(
        "@forevolve/bootstrap-dark@1.1.0",
        "dist/css/bootstrap-prefers-dark.css",
        "b087541364cdc7e95cbf71be42da5259f3d11431cc84198c17b47cd44c87cd5b",
        "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
    ),
    VendoredFile(
        "@forevolve/bootstrap-dark@1.1.0",
        "LICENSE",
        "43be5d79d2ec3d6d876e1874d27506cbe55024b18afc55f1fc830aaaedc0313d",
    ),
    VendoredFile(
        "@fortawesome/fontawesome-free@6.6.0",
        "css/all.min.css",
        "e5e202e3c899507992952533f57b634722b69b34241d271963559d31aa33ef81",
        "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css",
    ),
    VendoredFile(
        "@fortawesome/fontawesome-free@6.6.0",
        "webfonts/fa-brands-400.ttf",
        "bc844b5b02d3f3adabb514de4e0c0208252d3123413bd03f6287fa446acee859",
    ),
    VendoredFile(
        "@fortawesome/fontawesome-free@6.6.0",
        "webfonts/fa-brands-400.woff2",
        "c411f11975d26eb04cd2aa3c071181d4b18e489f1fb97060d4176a3531dfb36e",
    ),
    VendoredFile(
        "@fortawesome/fontawesome-free@6.6.0",
        "webfonts/fa-regular-400.ttf",
        "64f9fb623681f112261e9a2f97826782439f3925dea8f44a57d1e4db95ba6cfd",
    ),
    VendoredFile(
        "@fortawesome/fontawesome-free@6.6.0",
        "webfonts/fa-regular-400.woff2",
        "c732f106e91bc618767fbac8e2c7b27e5c736d477b2bb4fb83f597a43198c33c",
    ),
    VendoredFile(
        "@fortawesome/fontawesome-free@6.6.0",
        "webfonts/fa-solid-900.ttf",
        "31f099c13f6e4ba05f1b471bf170cb5493249474222917372de3ca5cf29e6a1a",
    ),
    VendoredFile(
        "@fortawesome/fontawesome-free@6.6.0",
        "webfonts/fa-solid-900.woff2",
        "1f0189e087fcefbf654fad74a3a06668b782c01353a61d5c0b7f0bf23e33c020",
    ),
    VendoredFile(
        "@fortawesome/fontawesome-free@6.6.0",
        "webfonts/fa-v4compatibility.ttf",
        "a6274a12fd3f5f1ea05fc9b4677959b31fd101fdac4f0d09c17159c414d36d23",
    ),
    VendoredFile(
        "@fortawesome/fontawesome-free@6.6.0",
        "webfonts/fa-v4compatibility.woff2",
        "2aca24b35bd41474dcc5e7fb5f11ec43fa06e3ac1d0035ad41108fa6b30b0871",
    ),
    VendoredFile(
        "@fortawesome/fontawesome-free@6.6.0",
        "LICENSE.txt",
        "9b914eae88817d63b576eab5aafde7068c7a1abae125d7cdfb034f1da43a9afc",
    ),
    VendoredFile(
        "jquery@3.7.1",
        "dist/jquery.min.js",
        "fc9a93dd241f6b045cbff0481cf4e1901becd0e12fb45166a8f17f95823f0b1a",
        "https://code.jquery.com/jquery-3.7.1.min.js",
    ),
    VendoredFile(
        "jquery@3.7.1",
        "LICENSE.txt",
        "d4db9ebe6f29f5168eac45ad713f055623ac5d0dcd5ba92da23d650ae012020d",
    ),
    # popper.js and vega ship no license file: their package.json names it (MIT, BSD-3-Clause).
    VendoredFile(
        "popper.js@1.12.9",
        "dist/umd/popper.min.js",
        "a52f7aa54d7bcaafa056ee0a050262dfc5694ae28dee8b4cac3429af37ff0d66",
        "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js",
    ),
    VendoredFile(
        "popper.js@1.12.9",
        "package.json",
        "116f48a1ba57d2c4bec720c502371a7421cf9541390e8a8b53ae379866027408",
    ),
    # The templates name major versions (the CDN serves the newest of each): pinned here.
    VendoredFile(
        "vega@5.33.1",
        "build/vega.min.js",
        "463f3db6a40b20e9747b4ed38f37ed0add508838f9141b1cf8366784b07b30c8",
        "https://cdn.jsdelivr.net/npm/vega@5",
    ),
    VendoredFile(
        "vega@5.33.1",
        "package.json",
        "534b9f1abaa8f23a3695393d39cf35dcdf96eafa4cd57fa65dfcc0a1ed0a00b0",
    ),
    VendoredFile(
        "vega-lite@5.23.0",
        "build/vega-lite.min.js",
        "58c27358e26f2d319cf62f45bc17a4c8362f08645001df2ec8d341eee4097c7f",
        "https://cdn.jsdelivr.net/npm/vega-lite@5",
    ),
    VendoredFile(
        "vega-lite@5.23.0",
        "LICENSE",
        "f618900fd0d64046963b29f40590cdd1e341a2f41449f99110d82fd81fea808c",
    ),
    VendoredFile(
        "vega-embed@6.29.0",
        "build/vega-embed.min.js",
        "12d02acfbe3ec59ef9a37dd4822a2e04e2961b5bbb671bbe661d2221715b99da",
        "https://cdn.jsdelivr.net/npm/vega-embed@6",
    ),
    VendoredFile(
        "vega-embed@6.29.0",
        "LICENSE",
        "32df67148f0fc3db0eb9e263a7b75d07f1eb14c61955005a4a39c6918d10d137",
    ),
)

GX_WEB_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com"
GX_IMAGES = {
    f"{GX_WEB_ASSETS}/logo-long.png": "images/logo-long.png",
    # The dark-mode logo is not in GX's package: the light one stands in.
    f"{GX_WEB_ASSETS}/full_logo_dark.png": "images/logo-long.png",
}
"""GX's logo URLs and the copy GX's own ``static/`` folder holds."""

LOCAL_COPIES: dict[str, str] = {
    **{file.cdn_url: f"{VENDOR_DIR}/{file.relpath}" for file in VENDORED if file.cdn_url},
    **GX_IMAGES,
}
"""Each outside URL of a GX page and its copy, as a path under the site's ``static/``."""
