"""The committed protobuf-c output in Sources/OTLPProtoC must be exactly what
Schemas/generate.sh produces from the committed Schemas/ (the Swift build never
runs protoc-c, so a stale copy would silently decode an old schema)."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from pathlib import Path

import pytest

from schema_tools import REPO_ROOT, SCHEMAS_DIR

GENERATED = REPO_ROOT / "Sources" / "OTLPProtoC"


def _generated_files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and (p.name.endswith((".pb-c.c", ".pb-c.h")) or p.name == "module.modulemap")
    }


# protoc-c comes from scripts/install-deps --test; without it this test fails rather than skips.
def test_generated_c_matches_schemas(tmp_path):
    # Run the real script from a copy, so the work tree is never touched.
    shutil.copytree(SCHEMAS_DIR, tmp_path / "Schemas")
    subprocess.run(["bash", str(tmp_path / "Schemas" / "generate.sh")], check=True, cwd="/")
    fresh_root = tmp_path / "Sources" / "OTLPProtoC"

    fresh = _generated_files(fresh_root)
    committed = _generated_files(GENERATED)
    assert fresh == committed, (
        f"missing: {sorted(fresh - committed)}, stale extra: {sorted(committed - fresh)}; "
        "run Schemas/generate.sh"
    )
    changed = [
        f for f in sorted(fresh)
        if not filecmp.cmp(fresh_root / f, GENERATED / f, shallow=False)
    ]
    assert not changed, f"out of date: {changed}; run Schemas/generate.sh"
