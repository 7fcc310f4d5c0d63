"""Helpers for the schema tests: compile Schemas/ with grpc_tools.protoc and
compare descriptors structurally, reporting every difference by name."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT / "Schemas"

# The OTLP files whose every message/enum/service must equal upstream's.
OTLP_FILES = (
    "opentelemetry/proto/common/v1/common.proto",
    "opentelemetry/proto/resource/v1/resource.proto",
    "opentelemetry/proto/trace/v1/trace.proto",
    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
)

_TYPE_NAMES = {
    v: k for k, v in descriptor_pb2.FieldDescriptorProto.Type.items()
}
_LABEL_NAMES = {
    v: k for k, v in descriptor_pb2.FieldDescriptorProto.Label.items()
}


class ProtocError(RuntimeError):
    pass


def compile_descriptor_set(
    files: Iterable[str], schemas_dir: Path = SCHEMAS_DIR
) -> descriptor_pb2.FileDescriptorSet:
    """Compiles `files` (paths relative to schemas_dir) with only schemas_dir on
    the import path, so our own google/protobuf copies are the ones used."""
    files = list(files)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "set.pb")
        args = [
            "grpc_tools.protoc",
            f"--proto_path={schemas_dir}",
            "--include_imports",
            f"--descriptor_set_out={out}",
            *files,
        ]
        rc = protoc.main(args)
        if rc != 0:
            raise ProtocError(f"protoc failed with exit code {rc} for {files}")
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as fh:
            fds.ParseFromString(fh.read())
        return fds


def files_by_name(
    fds: descriptor_pb2.FileDescriptorSet,
) -> Dict[str, descriptor_pb2.FileDescriptorProto]:
    return {f.name: f for f in fds.file}


def upstream_file(module) -> descriptor_pb2.FileDescriptorProto:
    """FileDescriptorProto of an imported *_pb2 module."""
    fdp = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(fdp)
    return fdp


def _walk_messages(
    prefix: str, messages
) -> Iterable[Tuple[str, descriptor_pb2.DescriptorProto]]:
    for m in messages:
        fq = f"{prefix}.{m.name}"
        yield fq, m
        yield from _walk_messages(fq, m.nested_type)


def collect(fdp: descriptor_pb2.FileDescriptorProto):
    """All messages (nested included) and enums (top-level and nested) of a
    file, keyed by fully-qualified name (no leading dot)."""
    messages: Dict[str, descriptor_pb2.DescriptorProto] = {}
    enums: Dict[str, descriptor_pb2.EnumDescriptorProto] = {}
    for e in fdp.enum_type:
        enums[f"{fdp.package}.{e.name}"] = e
    for fq, m in _walk_messages(fdp.package, fdp.message_type):
        messages[fq] = m
        for e in m.enum_type:
            enums[f"{fq}.{e.name}"] = e
    services = {f"{fdp.package}.{s.name}": s for s in fdp.service}
    return messages, enums, services


def _field_signature(
    msg: descriptor_pb2.DescriptorProto, f: descriptor_pb2.FieldDescriptorProto
) -> Dict[str, object]:
    oneof: Optional[str] = None
    # proto3 `optional` creates a synthetic oneof; it is reported separately.
    if f.HasField("oneof_index") and not f.proto3_optional:
        oneof = msg.oneof_decl[f.oneof_index].name
    return {
        "number": f.number,
        "type": _TYPE_NAMES.get(f.type, f.type),
        "label": _LABEL_NAMES.get(f.label, f.label),
        "type_name": f.type_name,
        "oneof": oneof,
        "proto3_optional": f.proto3_optional,
    }


def _both_ways(kind: str, ours: Iterable[str], theirs: Iterable[str]) -> List[str]:
    ours, theirs = set(ours), set(theirs)
    diffs = [f"{kind} {n}: missing in Schemas/ (present upstream)" for n in sorted(theirs - ours)]
    diffs += [f"{kind} {n}: present in Schemas/ but not upstream" for n in sorted(ours - theirs)]
    return diffs


def compare_messages(
    name: str, ours: descriptor_pb2.DescriptorProto, theirs: descriptor_pb2.DescriptorProto
) -> List[str]:
    diffs: List[str] = []
    of = {f.name: f for f in ours.field}
    tf = {f.name: f for f in theirs.field}
    diffs += _both_ways("field", (f"{name}.{n}" for n in of), (f"{name}.{n}" for n in tf))
    for fname in sorted(of.keys() & tf.keys()):
        a = _field_signature(ours, of[fname])
        b = _field_signature(theirs, tf[fname])
        for key in a:
            if a[key] != b[key]:
                diffs.append(
                    f"field {name}.{fname}: {key} differs: Schemas/ has {a[key]!r}, upstream has {b[key]!r}"
                )
    real_oneofs = lambda m: {  # noqa: E731 - tiny local helper
        m.oneof_decl[f.oneof_index].name
        for f in m.field
        if f.HasField("oneof_index") and not f.proto3_optional
    }
    diffs += _both_ways(
        "oneof",
        (f"{name}.{o}" for o in real_oneofs(ours)),
        (f"{name}.{o}" for o in real_oneofs(theirs)),
    )
    ranges = lambda m: sorted((r.start, r.end) for r in m.reserved_range)  # noqa: E731
    if ranges(ours) != ranges(theirs):
        diffs.append(
            f"message {name}: reserved ranges differ: Schemas/ has {ranges(ours)}, upstream has {ranges(theirs)}"
        )
    if sorted(ours.reserved_name) != sorted(theirs.reserved_name):
        diffs.append(
            f"message {name}: reserved names differ: Schemas/ has {sorted(ours.reserved_name)}, "
            f"upstream has {sorted(theirs.reserved_name)}"
        )
    return diffs


def compare_enums(
    name: str, ours: descriptor_pb2.EnumDescriptorProto, theirs: descriptor_pb2.EnumDescriptorProto
) -> List[str]:
    diffs: List[str] = []
    ov = {v.name: v.number for v in ours.value}
    tv = {v.name: v.number for v in theirs.value}
    diffs += _both_ways("enum value", (f"{name}.{n}" for n in ov), (f"{name}.{n}" for n in tv))
    for vname in sorted(ov.keys() & tv.keys()):
        if ov[vname] != tv[vname]:
            diffs.append(
                f"enum value {name}.{vname}: number differs: Schemas/ has {ov[vname]}, upstream has {tv[vname]}"
            )
    return diffs


def compare_services(
    name: str, ours: descriptor_pb2.ServiceDescriptorProto, theirs: descriptor_pb2.ServiceDescriptorProto
) -> List[str]:
    diffs: List[str] = []
    om = {m.name: m for m in ours.method}
    tm = {m.name: m for m in theirs.method}
    diffs += _both_ways("method", (f"{name}.{n}" for n in om), (f"{name}.{n}" for n in tm))
    for mname in sorted(om.keys() & tm.keys()):
        for attr in ("input_type", "output_type", "client_streaming", "server_streaming"):
            a, b = getattr(om[mname], attr), getattr(tm[mname], attr)
            if a != b:
                diffs.append(
                    f"method {name}.{mname}: {attr} differs: Schemas/ has {a!r}, upstream has {b!r}"
                )
    return diffs


def compare_files(
    ours: descriptor_pb2.FileDescriptorProto,
    theirs: descriptor_pb2.FileDescriptorProto,
    *,
    subset: bool = False,
) -> List[str]:
    """Differences between two files' schemas, as human-readable lines.

    With subset=True, upstream messages/enums/services absent from ours are
    not reported (for files where we deliberately keep only some messages);
    everything we do declare must still match exactly.
    """
    diffs: List[str] = []
    where = ours.name
    if ours.name != theirs.name:
        diffs.append(f"file name differs: Schemas/ has {ours.name!r}, upstream has {theirs.name!r}")
    if ours.package != theirs.package:
        diffs.append(
            f"{where}: package differs: Schemas/ has {ours.package!r}, upstream has {theirs.package!r}"
        )
    if ours.syntax != theirs.syntax:
        diffs.append(f"{where}: syntax differs: Schemas/ has {ours.syntax!r}, upstream has {theirs.syntax!r}")
    if not subset and sorted(ours.dependency) != sorted(theirs.dependency):
        diffs.append(
            f"{where}: imports differ: Schemas/ has {sorted(ours.dependency)}, upstream has {sorted(theirs.dependency)}"
        )

    om, oe, os_ = collect(ours)
    tm, te, ts = collect(theirs)
    for kind, a, b in (("message", om, tm), ("enum", oe, te), ("service", os_, ts)):
        missing_ok = subset
        found = _both_ways(kind, a, b)
        if missing_ok:
            found = [d for d in found if "missing in Schemas/" not in d]
        diffs += found
    for n in sorted(om.keys() & tm.keys()):
        diffs += compare_messages(n, om[n], tm[n])
    for n in sorted(oe.keys() & te.keys()):
        diffs += compare_enums(n, oe[n], te[n])
    for n in sorted(os_.keys() & ts.keys()):
        diffs += compare_services(n, os_[n], ts[n])
    return diffs
