"""No secrets in the repository: every file git would commit is scanned for keys, tokens
and passwords; the only ones allowed are the documented local-development defaults and
the throwaway credentials of test servers, listed below with where they may appear.

A planted secret of each kind proves the scan finds what it looks for.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from churnloop.redaction import MASK

REPO = Path(__file__).resolve().parents[2]

SECRET_NAME = (
    r"(?:password|passwd|secret|token|fernet|credential|api[_-]?key|access[_-]?key"
    r"|private[_-]?key)"
)
REFERENCE = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")
"""``${VAR}`` or ``${VAR:-default}``: a value from the environment, whose default counts."""
PATTERNS = {
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "API token": re.compile(
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|xox[abprs]-[A-Za-z0-9-]{10,}"
        r"|sk-[A-Za-z0-9_-]{32,}|glpat-[A-Za-z0-9_-]{20,})"
    ),
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?P<value>[^@\s/'\"]+)@"),
    "secret literal": re.compile(
        rf"(?i)[\w.-]*{SECRET_NAME}[\w.-]*[\"']?\s*[:=]\s*(?:SecretStr\()?"
        r"(?P<quote>[\"'])(?P<value>[^\"'\n]+)(?P=quote)"
    ),
}
BARE_VALUE = re.compile(rf"(?i)^\s*[\w.-]*{SECRET_NAME}[\w.-]*\s*[:=]\s*(?P<value>[^\s\"'#]+)")
"""A secret written unquoted, as in YAML or an .env file (Python code is not read so)."""
PLACEHOLDER = "${}"

ALLOWED: dict[str, tuple[tuple[str, ...], str]] = {
    "churnloop-dev-password": (("docker-compose.yaml",), "compose: dev DB and S3 default"),
    "churnloop-dev-admin-token": (("docker-compose.yaml",), "compose: dev model-server token"),
    "churnloop-dev-jwt-secret": (("docker-compose.yaml",), "compose: dev Airflow JWT secret"),
    "Y2h1cm5sb29wLWxvY2FsLWRldi1vbmx5LWZlcm5ldCE=": (
        ("docker-compose.yaml",),
        "compose: dev Fernet key, 'churnloop-local-dev-only-fernet!'",
    ),
    "admin": (("docker-compose.yaml",), "compose: dev Airflow admin password"),
    "churnloop": (("docker-compose.yaml",), "compose: dev S3 user (its access key id)"),
    "churnloop-test": (("tests/service_support.py",), "the test S3 server's access key id"),
    "churnloop-test-secret": (("tests/service_support.py",), "the throwaway test S3 server's key"),
    "dev default": (("tests/test_docker_compose.py",), "a docstring's ${VAR:-dev default}"),
    "s3cret": (
        ("tests/churnloop/features/test_feast_config.py",),
        "a made-up URL the config renders",
    ),
    "test-admin-token": (("tests/*",), "admin token of a model server a test starts"),
    "deploy-test-token": (("tests/*",), "admin token of a model server a test starts"),
    "deploy-outage-token": (("tests/*",), "admin token of a model server a test starts"),
    "security-test-token": (("tests/*",), "admin token of a model server a test starts"),
    "integration-admin-token": (("tests/integration/*",), "token of the integration stack"),
    "observability-test-webhook-token": (
        ("tests/observability/*",),
        "token of the webhook receiver the monitoring test starts",
    ),
    "unused": (("tests/observability/*",), "the test Alertmanager's SMTP password (no server)"),
    "bench-admin-token": (("bench/*",), "admin token of the benchmark's own server"),
    "pl4nted-pw": (("tests/*",), "a made-up credential the redaction tests plant"),
    "password": (("include/churnloop/redaction.py",), "the shape of a URI it masks, in its docs"),
    "false": (("include/kubernetes/*",), "automountServiceAccountToken: false, a boolean"),
}
"""Value -> (files it may appear in, why it is no secret). README and docker-compose.yaml
document the compose defaults as local-development only."""


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.value[:12]}..."


def findings_in(path: str, text: str) -> Iterable[Finding]:
    """Every candidate secret in one file's text."""
    for number, line in enumerate(text.splitlines(), 1):
        for reference in REFERENCE.finditer(line):
            default = reference["default"]
            if default and re.search(SECRET_NAME, line[: reference.end()], re.IGNORECASE):
                yield Finding(path, number, f"default of ${{{reference['name']}}}", default)
        line = REFERENCE.sub(PLACEHOLDER, line)
        for kind, pattern in PATTERNS.items():
            for match in pattern.finditer(line):
                value = match.groupdict().get("value") or match.group(0)
                if not value.startswith(("{", "$")) and value != MASK:  # not a value
                    yield Finding(path, number, kind, value)
        bare = BARE_VALUE.match(line)
        if bare and not path.endswith(".py") and not bare["value"].startswith(("$", "/", "{")):
            yield Finding(path, number, "secret value", bare["value"])


def scan(root: Path, paths: Iterable[str]) -> list[Finding]:
    """Findings in ``paths`` (relative to ``root``) that the allowlist does not cover."""
    found = []
    for path in paths:
        try:
            text = (root / path).read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary, or deleted in the work tree
        for finding in findings_in(path, text):
            where, _ = ALLOWED.get(finding.value, ((), ""))
            if not any(fnmatch.fnmatch(path, pattern) for pattern in where):
                found.append(finding)
    return found


VENDORED = "great_expectations/vendor/"
"""Third-party libraries at pinned versions (Data Docs' styles and scripts), each file's
sha256 checked by tests/churnloop/validation/test_data_docs_assets.py, so a change to
them fails there; their minified lines (100,000s of characters) would stall these regexes."""


def committable_files(root: Path) -> list[str]:
    """Tracked files and new ones git would add (not ignored): what a commit can carry,
    less the vendored libraries."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return [name for name in listing.decode().split("\0") if name and not name.startswith(VENDORED)]


def test_the_repository_holds_no_secret_beyond_the_documented_defaults():
    files = committable_files(REPO)
    assert "docker-compose.yaml" in files and "tests/service_support.py" in files

    found = scan(REPO, files)

    assert not found, "secrets in the repository:\n" + "\n".join(map(str, found))


# Written in pieces, so that this file holds none of them.
PLANTED = {
    "aws_key.py": 'KEY_ID = "AKIA' + 'QWERTYUIOPASDFGH"\n',
    "deploy.pem": "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n",
    "ci.yaml": "env:\n  GITHUB_TOKEN: ghp" + "_" + "a1B2c3D4e5" * 4 + "\n",
    "settings.py": 'url = "postgresql://churnloop:' + 'Sup3rSecret@db.example.com/prod"\n',
    "client.py": "api_key" + ' = "4f1d2c3b4a5e6f7081920a1b2c3d4e5f"\n',
    "server.py": "serving_admin_token" + ' = SecretStr("a-real-production-token")\n',
    ".env": "POSTGRES_PASSWORD" + "=hunter2hunter2\n",
    "docker-compose.yaml": "  MINIO_ROOT_PASSWORD: $" + "{MINIO_ROOT_PASSWORD:-not-the-dev}\n",
    "test_client.py": "TOKEN" + ' = "churnloop-dev-password"  # a compose default elsewhere\n',
}


@pytest.mark.parametrize("name", PLANTED)
def test_a_planted_secret_is_found(tmp_path, name):
    (tmp_path / name).write_text(PLANTED[name])

    found = scan(tmp_path, [name])

    line = 2 if PLANTED[name].startswith("env:") else 1
    assert found and {(finding.path, finding.line) for finding in found} == {(name, line)}


def test_references_and_documented_defaults_pass(tmp_path):
    clean = {
        "docker-compose.yaml": "  POSTGRES_PASSWORD: $"
        + "{POSTGRES_PASSWORD:-churnloop-dev-password}\n"
        + "  URL: postgresql://${POSTGRES_USER}:${POSTGRES_PASSWORD}@postgres/db\n",
        "code.py": "token = settings.serving_admin_token\npassword: str\n"
        'headers = {"Authorization": f"Bearer {token}"}\n',
        "conf.yaml": "token_file: /run/secrets/token\napi_key: ${API_KEY}\n",
        "server.log": "registry http://alice:***@mlflow:5000/ down (?token=***)\n",
    }
    for name, text in clean.items():
        (tmp_path / name).write_text(text)

    assert scan(tmp_path, list(clean)) == []
