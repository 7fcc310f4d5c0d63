"""Schemas/spanledger/v1/rollup.proto must be a valid proto3 file."""

from __future__ import annotations

from schema_tools import compile_descriptor_set, files_by_name

ROLLUP = "spanledger/v1/rollup.proto"


def test_rollup_proto_parses():
    files = files_by_name(compile_descriptor_set([ROLLUP]))
    fdp = files[ROLLUP]
    assert fdp.syntax == "proto3"
    assert fdp.package == "spanledger.v1"
    messages = {m.name: m for m in fdp.message_type}
    for name in (
        "LatencySketch",
        "RollupRecord",
        "RollupSegment",
        "TraceIndexEntry",
        "TraceIndexSegment",
        "TraceShape",
        "TraceSpan",
        "TraceDetail",
        "TraceDetailSegment",
    ):
        assert name in messages, f"{name} missing from {ROLLUP}"
    assert [e.name for e in fdp.enum_type] == ["Outcome", "VerdictSource", "ReviewerKind"]
    # Every segment starts with the same three header fields.
    for seg in ("RollupSegment", "TraceIndexSegment", "TraceDetailSegment"):
        fields = {f.name: f.number for f in messages[seg].field}
        assert fields["format_version"] == 1
        assert fields["created_unix_ms"] == 2
        assert fields["strings"] == 3

