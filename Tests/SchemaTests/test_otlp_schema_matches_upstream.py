"""Schemas/ must describe exactly the OTLP wire contract that the released
opentelemetry-proto package (pinned in Tests/requirements.txt) describes.

Compares compiled descriptors of our .proto files with the descriptors shipped
in the upstream Python packages, in both directions, field by field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schema_tools import (
    OTLP_FILES,
    SCHEMAS_DIR,
    compare_files,
    compile_descriptor_set,
    files_by_name,
    upstream_file,
)

from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

UPSTREAM = {
    "opentelemetry/proto/common/v1/common.proto": common_pb2,
    "opentelemetry/proto/resource/v1/resource.proto": resource_pb2,
    "opentelemetry/proto/trace/v1/trace.proto": trace_pb2,
    "opentelemetry/proto/collector/trace/v1/trace_service.proto": trace_service_pb2,
}


def otlp_differences(schemas_dir: Path = SCHEMAS_DIR) -> list[str]:
    """Every difference between schemas_dir's OTLP files and upstream's."""
    ours = files_by_name(compile_descriptor_set(OTLP_FILES, schemas_dir))
    diffs: list[str] = []
    for name in OTLP_FILES:
        if name not in ours:
            diffs.append(f"{name}: not produced by protoc")
            continue
        diffs += compare_files(ours[name], upstream_file(UPSTREAM[name]))
    return diffs


def test_otlp_schema_matches_upstream():
    diffs = otlp_differences()
    assert not diffs, "Schemas/ differs from opentelemetry-proto:\n" + "\n".join(diffs)


def test_comparison_sees_every_upstream_type():
    # Guard against a comparison that passes because it looked at nothing.
    ours = files_by_name(compile_descriptor_set(OTLP_FILES))
    trace = ours["opentelemetry/proto/trace/v1/trace.proto"]
    assert [m.name for m in trace.message_type] == [
        "TracesData", "ResourceSpans", "ScopeSpans", "Span", "Status",
    ]
    names = {f.name for f in trace_pb2.Span.DESCRIPTOR.fields}
    assert {"trace_id", "span_id", "flags", "events", "links", "status"} <= names
    assert trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].methods_by_name["Export"]


# Each mutation of a temp copy of Schemas/ must be reported, with the offending
# name in the message. (file, old text, new text, expected substring)
MUTATIONS = [
    pytest.param(
        "opentelemetry/proto/trace/v1/trace.proto",
        "fixed64 end_time_unix_nano = 8;", "fixed64 end_time_unix_nano = 18;",
        "opentelemetry.proto.trace.v1.Span.end_time_unix_nano: number differs",
        id="field-number",
    ),
    pytest.param(
        "opentelemetry/proto/trace/v1/trace.proto",
        "fixed64 start_time_unix_nano = 7;", "uint64 start_time_unix_nano = 7;",
        "opentelemetry.proto.trace.v1.Span.start_time_unix_nano: type differs",
        id="field-type",
    ),
    pytest.param(
        "opentelemetry/proto/trace/v1/trace.proto",
        "  repeated Link links = 13;\n", "  Link links = 13;\n",
        "opentelemetry.proto.trace.v1.Span.links: label differs",
        id="field-label",
    ),
    pytest.param(
        "opentelemetry/proto/trace/v1/trace.proto",
        "    fixed32 flags = 6; // same layout as Span.flags\n", "",
        "opentelemetry.proto.trace.v1.Span.Link.flags: missing in Schemas/",
        id="nested-field-removed",
    ),
    pytest.param(
        "opentelemetry/proto/trace/v1/trace.proto",
        "SPAN_KIND_CONSUMER = 5;", "SPAN_KIND_CONSUMER = 5;\n    SPAN_KIND_EXTRA = 6;",
        "opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_EXTRA: present in Schemas/ but not upstream",
        id="enum-value-added",
    ),
    pytest.param(
        "opentelemetry/proto/trace/v1/trace.proto",
        "STATUS_CODE_ERROR = 2;", "STATUS_CODE_ERROR = 3;",
        "opentelemetry.proto.trace.v1.Status.StatusCode.STATUS_CODE_ERROR: number differs",
        id="enum-number",
    ),
    pytest.param(
        "opentelemetry/proto/common/v1/common.proto",
        "    bytes bytes_value = 7;\n", "",
        "opentelemetry.proto.common.v1.AnyValue.bytes_value: missing in Schemas/",
        id="oneof-member-removed",
    ),
    pytest.param(
        "opentelemetry/proto/common/v1/common.proto",
        "message EntityRef {", "message Extra { string x = 1; }\n\nmessage EntityRef {",
        "message opentelemetry.proto.common.v1.Extra: present in Schemas/ but not upstream",
        id="message-added",
    ),
    pytest.param(
        "opentelemetry/proto/resource/v1/resource.proto",
        "repeated opentelemetry.proto.common.v1.EntityRef entity_refs = 3;",
        "repeated opentelemetry.proto.common.v1.KeyValue entity_refs = 3;",
        "opentelemetry.proto.resource.v1.Resource.entity_refs: type_name differs",
        id="field-type-name",
    ),
    pytest.param(
        "opentelemetry/proto/collector/trace/v1/trace_service.proto",
        "returns (ExportTraceServiceResponse)", "returns (ExportTracePartialSuccess)",
        "TraceService.Export: output_type differs",
        id="service-output",
    ),
]


@pytest.mark.parametrize("path,old,new,expected", MUTATIONS)
def test_comparison_reports_mutation(tmp_path, path, old, new, expected):
    copy = tmp_path / "Schemas"
    shutil.copytree(SCHEMAS_DIR, copy, ignore=shutil.ignore_patterns("*.md", "*.sh"))
    target = copy / path
    text = target.read_text()
    assert text.count(old) == 1, f"mutation anchor {old!r} not unique in {path}"
    target.write_text(text.replace(old, new))

    diffs = otlp_differences(copy)
    assert any(expected in d for d in diffs), (
        f"expected a difference containing {expected!r}, got:\n" + "\n".join(diffs)
    )


def test_oneof_membership_is_compared(tmp_path):
    # Moving a field out of AnyValue's oneof keeps name/number/type but must be caught.
    copy = tmp_path / "Schemas"
    shutil.copytree(SCHEMAS_DIR, copy, ignore=shutil.ignore_patterns("*.md", "*.sh"))
    target = copy / "opentelemetry/proto/common/v1/common.proto"
    text = target.read_text()
    old = "    int32 string_value_strindex = 8;\n  }\n"
    assert text.count(old) == 1
    target.write_text(text.replace(old, "  }\n  int32 string_value_strindex = 8;\n"))
    diffs = otlp_differences(copy)
    assert any(
        "AnyValue.string_value_strindex: oneof differs" in d for d in diffs
    ), "\n".join(diffs)


# --- google.rpc / google.protobuf copies -------------------------------------

def test_google_copies_match_upstream():
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import error_details_pb2, status_pb2

    files = [
        "google/protobuf/any.proto",
        "google/protobuf/duration.proto",
        "google/rpc/status.proto",
        "google/rpc/error_details.proto",
    ]
    ours = files_by_name(compile_descriptor_set(files))
    diffs: list[str] = []
    # Exact equality (minus options/comments) for Any, Duration and Status.
    diffs += compare_files(ours["google/protobuf/any.proto"], upstream_file(any_pb2))
    diffs += compare_files(ours["google/protobuf/duration.proto"], upstream_file(duration_pb2))
    diffs += compare_files(ours["google/rpc/status.proto"], upstream_file(status_pb2))
    # error_details.proto keeps only the messages SpanLedger uses; each must match.
    diffs += compare_files(
        ours["google/rpc/error_details.proto"], upstream_file(error_details_pb2), subset=True
    )
    assert not diffs, "\n".join(diffs)
    names = [m.name for m in ours["google/rpc/error_details.proto"].message_type]
    assert "RetryInfo" in names
