"""docs/openapi.json is the API the code serves (regenerate it with infra/export_openapi.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_matches_the_code() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "export_openapi.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_operation_documents_auth_and_errors() -> None:
    doc = json.loads((ROOT / "docs" / "openapi.json").read_text())
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            assert op.get("summary"), f"{method} {path} has no summary"
            assert "401" in op["responses"], f"{method} {path} does not document 401"
            assert op.get("security"), f"{method} {path} does not declare bearer auth"


def test_id_parameters_admit_only_ids() -> None:
    # Ids are 1..2^63-1 in plain decimal: no 0, no leading zero, at most 19 digits.
    doc = json.loads((ROOT / "docs" / "openapi.json").read_text())
    seen = 0
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["name"].endswith("_id"):
                    schema = param["schema"]
                    assert schema["type"] == "string", (method, path)
                    assert schema["pattern"] == "^[1-9][0-9]{0,18}$", (method, path)
                    seen += 1
    assert seen


def test_media_limit_is_the_domains() -> None:
    from newsfeed.posting.rules import MAX_MEDIA

    doc = json.loads((ROOT / "docs" / "openapi.json").read_text())
    media = doc["components"]["schemas"]["CreatePost"]["properties"]["media_ids"]
    assert media["maxItems"] == MAX_MEDIA == 4
