"""Deterministic AI-agent trace workload and its expected SpanLedger rollups.

`generate(seed, base_time_ns)` builds a few hundred runs (one trace each) across four
workflows and two services, using every attribute dialect of Schemas/conventions.md:
current and deprecated GenAI names, OpenInference, OpenLLMetry, the model+tokens
fallback, cache-read/-write tokens included in input (and, Anthropic-style, reported
exclusively), reasoning tokens in output, explicit cost, an unpriced model, tool calls,
verdicts from attributes and `gen_ai.evaluation.result` events (latest by time wins),
retries and errors.

The runs are plain data (`RunSpec`/`SpanSpec`), so the same run can be exported with the
OpenTelemetry SDK (`export_with_sdk`) or as a raw OTLP protobuf (support.py). Expected
values are computed from those span attributes by `interpret_run`, which follows
conventions.md rule by rule, and are cross-checked against what the generator meant
(`Intent`), so a slip in either one stops the generator instead of a wrong expectation
reaching the test. Costs are exact integers: prices become pico-dollars per token, each
call's cost is rounded half up to micro-dollars; explicit USD costs are rounded half away
from zero per call.

Runs standalone: `python Tests/e2e/workload.py` prints the expected totals.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000

# --------------------------------------------------------------------------------------
# Price file (Schemas/prices.md). Prices are decimal strings, USD per million tokens.
# --------------------------------------------------------------------------------------

PRICE_FILE: Dict[str, Any] = {
    "version": 1,
    "models": [
        # Two patterns match "gpt-4o-mini-…": the more specific one must win.
        {"match": "gpt-4o*", "provider": "openai", "input": "2.5", "cached_input": "1.25", "output": "10"},
        {"match": "gpt-4o-mini*", "provider": "openai", "effective_from": "2024-07-18",
         "input": "0.15", "cached_input": "0.075", "output": "0.6"},
        # reasoning defaults to output, cache_write to input.
        {"match": "o3-mini*", "provider": "openai", "input": "1.1", "cached_input": "0.55", "output": "4.4"},
        {"match": "claude-sonnet-4*", "provider": "anthropic", "input": "3", "cached_input": "0.3",
         "cache_write": "3.75", "output": "15"},
        # Not yet effective: must never apply to calls made now.
        {"match": "claude-sonnet-4*", "provider": "anthropic", "effective_from": "2099-01-01",
         "input": "30", "cached_input": "3", "cache_write": "37.5", "output": "150"},
        # Same pattern twice: the latest effective_from not after the call wins.
        {"match": "claude-3-5-haiku*", "provider": "anthropic", "effective_from": "2020-01-01",
         "input": "0.25", "output": "1.25"},
        {"match": "CLAUDE-3-5-HAIKU*", "provider": "anthropic", "effective_from": "2024-11-04T00:00:00Z",
         "input": "0.8", "cached_input": "0.08", "cache_write": "1", "output": "4"},
        # Six decimals: exact pico-dollar arithmetic and per-call half-up rounding matter.
        # Reported by a gateway as "openrouter/mistral-small-…" (matched without the prefix).
        {"match": "mistral-small*", "provider": "mistral", "input": "0.123457", "output": "0.370371"},
        {"match": "text-embedding-3-small", "provider": "openai", "input": "0.02", "output": "0"},
    ],
}

UNPRICED_MODEL = "acme-internal-7b"  # in no price file, built-in or ours


def price_file_json() -> str:
    """The price file's text; numbers are written exactly as the decimal strings above."""
    entries = []
    for e in PRICE_FILE["models"]:
        parts = []
        for k, v in e.items():
            if k in ("match", "provider", "effective_from"):
                parts.append(f"{json.dumps(k)}: {json.dumps(v)}")
            else:
                Decimal(v)  # validates
                parts.append(f"{json.dumps(k)}: {v}")
        entries.append("    {" + ", ".join(parts) + "}")
    return '{\n  "version": 1,\n  "models": [\n' + ",\n".join(entries) + "\n  ]\n}\n"


def _pico_per_token(usd_per_million: str) -> int:
    # USD per 1e6 tokens -> pico-dollars (1e-12 USD) per token: × 1e12 / 1e6 = × 1e6.
    v = Decimal(usd_per_million) * 1_000_000
    assert v == v.to_integral_value(), usd_per_million
    return int(v)


def _parse_effective(s: Optional[str]) -> int:
    if s is None:
        return -(2**63)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        dt = datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    else:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return int(dt.timestamp()) * NS_PER_S


@dataclass(frozen=True)
class PriceEntry:
    match: str
    effective_ns: int
    input: int
    cached_input: int
    cache_write: int
    output: int
    reasoning: int

    @property
    def specificity(self) -> int:
        return sum(1 for c in self.match if c not in "*?")

    def matches(self, model: str) -> bool:
        rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in self.match)
        return re.fullmatch(rx, model, flags=re.IGNORECASE | re.DOTALL) is not None


class PriceTable:
    """Schemas/prices.md selection rules over the user file only (our models are all in
    it, or, for UNPRICED_MODEL, in no table at all)."""

    def __init__(self, doc: Dict[str, Any] = PRICE_FILE):
        self.entries: List[PriceEntry] = []
        for e in doc["models"]:
            inp = _pico_per_token(e["input"])
            out = _pico_per_token(e["output"])
            self.entries.append(PriceEntry(
                match=e["match"], effective_ns=_parse_effective(e.get("effective_from")),
                input=inp, cached_input=_pico_per_token(e.get("cached_input", e["input"])),
                cache_write=_pico_per_token(e.get("cache_write", e["input"])),
                output=out, reasoning=_pico_per_token(e.get("reasoning", e["output"]))))

    def lookup(self, model: str, start_ns: int) -> Optional[PriceEntry]:
        names = [model]
        if "/" in model:
            names.append(model.split("/", 1)[1])
        for name in names:
            cands = [e for e in self.entries if e.matches(name) and e.effective_ns <= start_ns]
            if cands:
                return max(cands, key=lambda e: (e.specificity, e.effective_ns))
        return None


PRICES = PriceTable()

# --------------------------------------------------------------------------------------
# conventions.md, as code: span kind, model, tokens, cost, verdicts, workflow, retries.
# --------------------------------------------------------------------------------------

LLM_OPERATIONS = {"chat", "text_completion", "generate_content", "embeddings"}
WORKFLOW_OPERATIONS = {"invoke_workflow", "invoke_agent", "create_agent"}
MODEL_ATTRS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name",
               "llm.response.model", "llm.request.model")
INPUT_ATTRS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
               "llm.token_count.prompt", "llm.usage.prompt_tokens")
OUTPUT_ATTRS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                "llm.token_count.completion", "llm.usage.completion_tokens")
CACHE_READ_ATTRS = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
                    "llm.token_count.prompt_details.cache_read")
CACHE_WRITE_ATTRS = ("gen_ai.usage.cache_creation.input_tokens",
                     "gen_ai.usage.cache_creation_input_tokens",
                     "llm.token_count.prompt_details.cache_write")
REASONING_ATTRS = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
                   "llm.token_count.completion_details.reasoning")
TOTAL_ATTR = "llm.token_count.total"
TOKEN_ATTRS = INPUT_ATTRS + OUTPUT_ATTRS + CACHE_READ_ATTRS + CACHE_WRITE_ATTRS + REASONING_ATTRS + (TOTAL_ATTR,)
WORKFLOW_NAME_ATTRS = ("gen_ai.workflow.name", "traceloop.workflow.name", "gen_ai.agent.name")
EVALUATION_EVENT = "gen_ai.evaluation.result"

OUTCOME_LABELS: Dict[str, str] = {}
for _outcome, _labels in {
    "accepted": ["accepted", "accept", "approved", "approve", "pass", "passed", "correct", "success", "thumbs_up"],
    "edited": ["edited", "accepted_with_edits", "modified", "revised"],
    "rejected": ["rejected", "reject", "fail", "failed", "incorrect", "thumbs_down"],
    "escalated": ["escalated", "escalate", "handoff", "human_handoff"],
}.items():
    for _l in _labels:
        OUTCOME_LABELS[_l] = _outcome
OUTCOMES = ("accepted", "edited", "rejected", "escalated", "pending")


def span_kind(attrs: Dict[str, Any]) -> str:
    op = attrs.get("gen_ai.operation.name")
    oi = attrs.get("openinference.span.kind")
    tl = attrs.get("traceloop.span.kind")
    if op in LLM_OPERATIONS or oi in ("LLM", "EMBEDDING") or tl == "llm" or "llm.request.type" in attrs:
        return "llm"
    if op == "execute_tool" or oi == "TOOL" or tl == "tool":
        return "tool"
    if op in WORKFLOW_OPERATIONS or oi in ("AGENT", "CHAIN") or tl in ("workflow", "agent"):
        return "workflow"
    if _first(attrs, MODEL_ATTRS) is not None and any(a in attrs for a in TOKEN_ATTRS):
        return "llm"
    return "other"


def _first(attrs: Dict[str, Any], names: Sequence[str]) -> Any:
    for n in names:
        if n in attrs:
            return attrs[n]
    return None


def _as_int(v: Any) -> Optional[int]:
    if v is None:
        return None
    if isinstance(v, bool):
        raise TypeError("bool token count")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v)  # truncated
    if isinstance(v, str):
        return int(v.strip())
    raise TypeError(type(v))


def usd_to_micros(usd: float) -> int:
    """Round half away from zero (conventions.md). Inputs are kept away from .5."""
    d = Decimal(repr(usd)) * 1_000_000
    q = d.copy_abs().quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(q) if d >= 0 else -int(q)


@dataclass
class CallFacts:
    """What SpanLedger must derive from one LLM-call span."""
    model: str
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_micros: int
    priced: bool
    unpriced_tokens: int
    retry: bool = False
    error: bool = False


def call_facts(attrs: Dict[str, Any], start_ns: int, prices: PriceTable = PRICES) -> CallFacts:
    model = _first(attrs, MODEL_ATTRS)
    model = "" if model is None else str(model)
    inp = _as_int(_first(attrs, INPUT_ATTRS))
    out = _as_int(_first(attrs, OUTPUT_ATTRS))
    cr = _as_int(_first(attrs, CACHE_READ_ATTRS)) or 0
    cw = _as_int(_first(attrs, CACHE_WRITE_ATTRS)) or 0
    rs = _as_int(_first(attrs, REASONING_ATTRS)) or 0
    if inp is None and out is None and TOTAL_ATTR in attrs:
        inp = _as_int(attrs[TOTAL_ATTR])
    inp = inp or 0
    out = out or 0
    if cr + cw > inp:  # reported exclusively: add, never subtract again
        inp += cr + cw
    if rs > out:
        out += rs

    explicit: Optional[int] = None
    if "gen_ai.usage.cost" in attrs:
        explicit = usd_to_micros(float(attrs["gen_ai.usage.cost"]))
    elif "llm.cost.total" in attrs:
        explicit = usd_to_micros(float(attrs["llm.cost.total"]))
    elif "llm.cost.prompt" in attrs or "llm.cost.completion" in attrs:
        explicit = usd_to_micros(float(attrs.get("llm.cost.prompt", 0.0)) + float(attrs.get("llm.cost.completion", 0.0)))

    if explicit is not None:
        cost, priced, unpriced = explicit, True, 0
    else:
        entry = prices.lookup(model, start_ns) if model else None
        if entry is None:
            cost, priced, unpriced = 0, False, inp + out
        else:
            pico = ((inp - cr - cw) * entry.input + cr * entry.cached_input + cw * entry.cache_write
                    + (out - rs) * entry.output + rs * entry.reasoning)
            cost, priced, unpriced = (pico + 500_000) // 1_000_000, True, 0
    return CallFacts(model, inp, cr, cw, out, rs, cost, priced, unpriced)


# --------------------------------------------------------------------------------------
# Runs as data.
# --------------------------------------------------------------------------------------

@dataclass
class Event:
    name: str
    time_ns: int
    attributes: Dict[str, Any]


@dataclass
class SpanSpec:
    span_id: int
    parent_id: Optional[int]
    name: str
    service: str
    start_ns: int
    end_ns: int
    attributes: Dict[str, Any] = field(default_factory=dict)
    events: List[Event] = field(default_factory=list)
    error: bool = False
    kind: str = "internal"  # OTel SpanKind: internal, server, client
    links: List[Tuple[int, int]] = field(default_factory=list)  # (trace_id, span_id) of linked spans

    @property
    def span_id_hex(self) -> str:
        return f"{self.span_id:016x}"


@dataclass
class Intent:
    """What the generator meant; checked against interpret_run."""
    workflow: str
    outcome: str
    calls: Dict[int, Tuple[str, int, int, int, int, int]] = field(default_factory=dict)  # span -> model, in, cr, cw, out, rs
    retries: int = 0
    errors: int = 0


@dataclass
class RunSpec:
    trace_id: int
    service: str
    spans: List[SpanSpec]
    intent: Optional[Intent] = None
    label: str = ""  # what the run exercises, for messages

    @property
    def trace_id_hex(self) -> str:
        return f"{self.trace_id:032x}"

    @property
    def root(self) -> SpanSpec:
        roots = [s for s in self.spans if s.parent_id is None]
        assert len(roots) == 1
        return roots[0]


@dataclass
class RunFacts:
    trace_id: str
    workflow: str
    service: str
    outcome: str
    start_ns: int
    latency_ms: float
    tool_calls: int
    errors: int  # every ERROR span of the run
    non_llm_errors: int
    calls: Dict[int, CallFacts]  # span_id -> facts
    kinds: Dict[int, str]

    @property
    def cost_micros(self) -> int:
        return sum(c.cost_micros for c in self.calls.values())

    @property
    def models(self) -> List[str]:
        return sorted({c.model for c in self.calls.values()})


def _verdict_outcome(spans: Sequence[SpanSpec]) -> str:
    verdicts: List[Tuple[int, str]] = []
    for s in spans:
        label = s.attributes.get("outcome.verdict", s.attributes.get("review.verdict"))
        if label is not None and str(label).lower() in OUTCOME_LABELS:
            verdicts.append((s.end_ns, OUTCOME_LABELS[str(label).lower()]))
        for e in s.events:
            if e.name == EVALUATION_EVENT:
                label = e.attributes.get("gen_ai.evaluation.score.label")
                if label is not None and str(label).lower() in OUTCOME_LABELS:
                    verdicts.append((e.time_ns, OUTCOME_LABELS[str(label).lower()]))
    if not verdicts:
        return "pending"
    times = [t for t, _ in verdicts]
    assert len(times) == len(set(times)), "workload bug: two verdicts at the same time"
    return max(verdicts)[1]


def _workflow_name(spans: Sequence[SpanSpec]) -> str:
    root = next(s for s in spans if s.parent_id is None)
    children: Dict[int, List[SpanSpec]] = defaultdict(list)
    for s in spans:
        if s.parent_id is not None:
            children[s.parent_id].append(s)
    wf = None
    if span_kind(root.attributes) == "workflow":
        wf = root
    else:
        level = [root]
        while level and wf is None:
            nxt = sorted((c for p in level for c in children[p.span_id]), key=lambda s: s.start_ns)
            for c in nxt:
                if span_kind(c.attributes) == "workflow":
                    wf = c
                    break
            level = nxt
        wf = wf or root
    for span in (wf, root):
        for a in WORKFLOW_NAME_ATTRS:
            v = span.attributes.get(a)
            if isinstance(v, str) and v != "":
                return v
    return root.name


def interpret_run(run: RunSpec, prices: PriceTable = PRICES, check_intent: bool = True) -> RunFacts:
    spans = run.spans
    root = run.root
    kinds = {s.span_id: span_kind(s.attributes) for s in spans}
    calls: Dict[int, CallFacts] = {}
    for s in spans:
        if kinds[s.span_id] == "llm":
            f = call_facts(s.attributes, s.start_ns, prices)
            f.error = s.error
            f.retry = int(s.attributes.get("http.request.resend_count", 0)) > 0
            calls[s.span_id] = f
    llm_spans = [s for s in spans if kinds[s.span_id] == "llm"]
    for s in llm_spans:
        f = calls[s.span_id]
        if not f.retry:
            # conventions.md: a retry when the previous sibling call to the same model errored.
            earlier = [o for o in llm_spans if o is not s and o.parent_id == s.parent_id
                       and calls[o.span_id].model == f.model and o.start_ns < s.start_ns]
            f.retry = bool(earlier) and max(earlier, key=lambda o: o.start_ns).error
    errors = sum(1 for s in spans if s.error)
    facts = RunFacts(
        trace_id=run.trace_id_hex, workflow=_workflow_name(spans), service=root.service,
        outcome=_verdict_outcome(spans), start_ns=root.start_ns,
        latency_ms=(root.end_ns - root.start_ns) / NS_PER_MS,
        tool_calls=sum(1 for k in kinds.values() if k == "tool"),
        errors=errors, non_llm_errors=errors - sum(1 for c in calls.values() if c.error),
        calls=calls, kinds=kinds)
    if check_intent and run.intent is not None:
        it = run.intent
        problems = []
        if facts.workflow != it.workflow:
            problems.append(f"workflow {facts.workflow!r} != intended {it.workflow!r}")
        if facts.outcome != it.outcome:
            problems.append(f"outcome {facts.outcome!r} != intended {it.outcome!r}")
        got = {sid: (c.model, c.input_tokens, c.cached_input_tokens, c.cache_write_tokens,
                     c.output_tokens, c.reasoning_tokens) for sid, c in calls.items()}
        if got != it.calls:
            problems.append(f"calls {got} != intended {it.calls}")
        if sum(c.retry for c in calls.values()) != it.retries:
            problems.append(f"retries != intended {it.retries}")
        if errors != it.errors:
            problems.append(f"errors {errors} != intended {it.errors}")
        if problems:
            raise AssertionError(f"workload self-check failed for run {run.label} {run.trace_id_hex}: " + "; ".join(problems))
    return facts


# --------------------------------------------------------------------------------------
# Expected rollups.
# --------------------------------------------------------------------------------------

GROUP_KEYS = ("workflow", "model", "outcome", "service")
COUNT_FIELDS = ("runs", "accepted", "edited", "rejected", "escalated", "pending")
CALL_FIELDS = ("llm_calls", "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
               "reasoning_tokens", "unpriced_tokens", "cost_micros", "retries")
RUN_FIELDS = ("tool_calls", "errors", "incomplete_runs")
EXACT_FIELDS = COUNT_FIELDS + CALL_FIELDS + RUN_FIELDS
# Grouped by model, a run counts under each model it used and call measures split by
# model; tool calls and run-level errors have no model, so they are not compared there.
MODEL_EXACT_FIELDS = COUNT_FIELDS + CALL_FIELDS + ("incomplete_runs",)


def _empty_group() -> Dict[str, Any]:
    g: Dict[str, Any] = {f: 0 for f in EXACT_FIELDS}
    g["_latencies"] = []
    return g


def _add_calls(g: Dict[str, Any], calls: Iterable[CallFacts]) -> None:
    for c in calls:
        g["llm_calls"] += 1
        g["input_tokens"] += c.input_tokens
        g["cached_input_tokens"] += c.cached_input_tokens
        g["cache_write_tokens"] += c.cache_write_tokens
        g["output_tokens"] += c.output_tokens
        g["reasoning_tokens"] += c.reasoning_tokens
        g["unpriced_tokens"] += c.unpriced_tokens
        g["cost_micros"] += c.cost_micros
        g["retries"] += int(c.retry)


def _finish(g: Dict[str, Any]) -> Dict[str, Any]:
    decided = g["accepted"] + g["edited"] + g["rejected"] + g["escalated"]
    ok = g["accepted"] + g["edited"]
    g["acceptance_rate"] = None if decided == 0 else ok / decided
    g["cost_usd"] = g["cost_micros"] / 1e6
    g["cost_per_accepted_usd"] = None if ok == 0 else g["cost_micros"] / 1e6 / ok
    return g


def expected_groups(facts: Sequence[RunFacts], group_by: Sequence[str] = (),
                    workflow: Optional[str] = None) -> Dict[Tuple[str, ...], Dict[str, Any]]:
    """Expected query groups, keyed by the group_by values in group_by's order."""
    for k in group_by:
        assert k in GROUP_KEYS, k
    groups: Dict[Tuple[str, ...], Dict[str, Any]] = {}
    for r in facts:
        if workflow is not None and r.workflow != workflow:
            continue
        # A run that called no model counts under model "" (README "Query contract").
        models = (r.models or [""]) if "model" in group_by else [None]
        for m in models:
            vals = {"workflow": r.workflow, "outcome": r.outcome, "service": r.service, "model": m}
            key = tuple(vals[k] for k in group_by)
            g = groups.setdefault(key, _empty_group())
            g["runs"] += 1
            g[r.outcome] += 1
            g["_latencies"].append(r.latency_ms)
            if m is None:
                _add_calls(g, r.calls.values())
                g["tool_calls"] += r.tool_calls
                g["errors"] += r.errors
            else:
                _add_calls(g, (c for c in r.calls.values() if c.model == m))
                g["errors"] += sum(1 for c in r.calls.values() if c.model == m and c.error)
    return {k: _finish(g) for k, g in groups.items()}


# --------------------------------------------------------------------------------------
# The generator.
# --------------------------------------------------------------------------------------

SERVICES = ("support-api", "batch-worker")
TOOL_SERVICE = "tool-runner"  # emits some tool spans of other services' runs; never a run's service
WORKFLOWS = ("support-answer", "doc-summarize", "triage-agent", "nightly-report")

MODEL_ALIASES = {  # response model -> request model
    "gpt-4o-mini-2024-07-18": "gpt-4o-mini",
    "gpt-4o-2024-08-06": "gpt-4o",
    "o3-mini-2025-01-31": "o3-mini",
    "claude-sonnet-4-20250514": "claude-sonnet-4-0",
    "claude-3-5-haiku-20241022": "claude-3-5-haiku-latest",
    "openrouter/mistral-small-2501": "mistral-small",
    "text-embedding-3-small": "text-embedding-3-small",
    UNPRICED_MODEL: UNPRICED_MODEL,
}
CACHING_MODELS = {"gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "o3-mini-2025-01-31",
                  "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"}
CACHE_WRITE_MODELS = {"claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"}
REASONING_MODELS = {"o3-mini-2025-01-31"}
ANTHROPIC = {"claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"}

LABELS_BY_OUTCOME: Dict[str, List[str]] = defaultdict(list)
for _l, _o in OUTCOME_LABELS.items():
    LABELS_BY_OUTCOME[_o].append(_l)
IGNORED_LABELS = ["needs_review", "unsure", "n/a"]


class IdSource:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.seen: set = set()

    def _new(self, bits: int) -> int:
        while True:
            v = self.rng.getrandbits(bits)
            if v and v not in self.seen:
                self.seen.add(v)
                return v

    def trace_id(self) -> int:
        return self._new(128)

    def span_id(self) -> int:
        return self._new(64)


class RunBuilder:
    """Builds one run: spans laid out sequentially in time under their parents."""

    def __init__(self, rng: random.Random, ids: IdSource, service: str, start_ns: int, label: str):
        self.rng, self.ids, self.service = rng, ids, service
        self.trace_id = ids.trace_id()
        self.spans: List[SpanSpec] = []
        self.cursor = start_ns + rng.randint(1, 40) * NS_PER_MS
        self.root: Optional[SpanSpec] = None
        self.intent = Intent(workflow="", outcome="pending")
        self.label = label

    def ms(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi) * NS_PER_MS

    def add(self, parent: Optional[SpanSpec], name: str, attrs: Dict[str, Any], *, dur_ns: Optional[int] = None,
            error: bool = False, kind: str = "internal", service: Optional[str] = None,
            start_ns: Optional[int] = None) -> SpanSpec:
        if start_ns is None:
            start_ns = self.cursor + self.ms(1, 30)
        dur = dur_ns if dur_ns is not None else self.ms(20, 3000)
        s = SpanSpec(span_id=self.ids.span_id(), parent_id=None if parent is None else parent.span_id,
                     name=name, service=service or self.service, start_ns=start_ns, end_ns=start_ns + dur,
                     attributes=dict(attrs), error=error, kind=kind)
        if parent is not None:
            self.cursor = s.end_ns
        self.spans.append(s)
        if error:
            self.intent.errors += 1
        return s

    def start_root(self, name: str, attrs: Dict[str, Any], workflow: str, kind: str = "internal") -> SpanSpec:
        self.root = self.add(None, name, attrs, dur_ns=0, start_ns=self.cursor, kind=kind)
        self.cursor = self.root.start_ns
        self.intent.workflow = workflow
        return self.root

    # ---- LLM calls -----------------------------------------------------------------

    def llm(self, parent: SpanSpec, model: str, dialect: str, *, error: bool = False, resend: bool = False,
            retry: bool = False, small: bool = False, explicit: Optional[str] = None, exclusive: bool = False,
            service: Optional[str] = None) -> SpanSpec:
        """One LLM call. `retry` says whether the generator expects it to count as a retry."""
        rng = self.rng
        if small:
            inp, out = rng.randint(1, 40), rng.randint(0, 20)
        elif dialect in ("embeddings", "oi_embedding_total"):
            inp, out = rng.randint(50, 4000), 0
        else:
            inp, out = rng.randint(120, 6000), rng.randint(10, 1500)
        if error:
            out = 0
        cr = cw = rs = 0
        if not small and model in CACHING_MODELS and (rng.random() < 0.45 or (exclusive and model not in REASONING_MODELS)):
            cr = rng.randint(1, inp - 2)
        if not small and model in CACHE_WRITE_MODELS and rng.random() < 0.3:
            cw = rng.randint(1, max(1, inp - cr - 1))
            if cr + cw >= inp:
                cw = 0
        if not small and model in REASONING_MODELS and out > 2 and not error:
            rs = rng.randint(1, out - 1)
        # Reported values: inclusive (GenAI conventions) unless `exclusive`.
        rep_in, rep_out = inp, out
        if exclusive:
            assert cr + cw > 0 or rs > 0
            if cr + cw > 0:
                rep_in = rng.randint(1, cr + cw - 1) if cr + cw > 1 else 0
                inp = rep_in + cr + cw
            if rs > 0 and rep_out > 0:
                rep_out = rng.randint(0, rs - 1)
                out = rep_out + rs

        req = MODEL_ALIASES[model]
        a: Dict[str, Any] = {}
        name = f"chat {req}"
        kind = "client"
        if dialect == "genai":
            a = {"gen_ai.operation.name": rng.choice(["chat", "chat", "text_completion", "generate_content"]),
                 "gen_ai.provider.name": "anthropic" if model in ANTHROPIC else "openai",
                 "gen_ai.request.model": req, "gen_ai.response.model": model,
                 "gen_ai.usage.input_tokens": rep_in, "gen_ai.usage.output_tokens": rep_out}
            name = f"{a['gen_ai.operation.name']} {req}"
            if cr:
                a["gen_ai.usage.cache_read.input_tokens"] = cr
            if cw:
                a["gen_ai.usage.cache_creation.input_tokens"] = cw
            if rs:
                a["gen_ai.usage.reasoning.output_tokens"] = rs
            if rng.random() < 0.2:  # lower-precedence names with other values: must be ignored
                a["gen_ai.usage.prompt_tokens"] = rep_in + 11
                a["gen_ai.usage.completion_tokens"] = rep_out + 5
                a["llm.token_count.prompt"] = rep_in + 3
                a["llm.model_name"] = "gpt-3.5-turbo"
        elif dialect == "genai_deprecated":
            a = {"gen_ai.operation.name": "chat", "gen_ai.system": "anthropic" if model in ANTHROPIC else "openai",
                 "gen_ai.request.model": model,
                 "gen_ai.usage.prompt_tokens": rep_in, "gen_ai.usage.completion_tokens": rep_out}
            if cr:
                a["gen_ai.usage.cache_read_input_tokens"] = cr
            if cw:
                a["gen_ai.usage.cache_creation_input_tokens"] = cw
            if rs:
                a["gen_ai.usage.reasoning_tokens"] = rs
        elif dialect == "openllmetry":
            a = {"llm.request.type": "chat", "gen_ai.system": "anthropic" if model in ANTHROPIC else "openai",
                 "gen_ai.request.model": req, "gen_ai.response.model": model,
                 "gen_ai.usage.prompt_tokens": rep_in, "gen_ai.usage.completion_tokens": rep_out,
                 "llm.usage.total_tokens": rep_in + rep_out}
            name = "openai.chat" if model not in ANTHROPIC else "anthropic.chat"
            if cr:
                a["gen_ai.usage.cache_read_input_tokens"] = cr
            if cw:
                a["gen_ai.usage.cache_creation_input_tokens"] = cw
        elif dialect == "openinference":
            fmt = rng.choice([int, int, str, float])
            a = {"openinference.span.kind": "LLM", "llm.model_name": model,
                 "llm.provider": "anthropic" if model in ANTHROPIC else "openai",
                 "llm.token_count.prompt": fmt(rep_in), "llm.token_count.completion": fmt(rep_out),
                 "llm.token_count.total": fmt(rep_in + rep_out)}
            name = "ChatCompletion"
            if cr:
                a["llm.token_count.prompt_details.cache_read"] = fmt(cr)
            if cw:
                a["llm.token_count.prompt_details.cache_write"] = fmt(cw)
            if rs:
                a["llm.token_count.completion_details.reasoning"] = fmt(rs)
        elif dialect == "fallback":  # no kind attribute: a model and token counts
            a = {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": rep_in,
                 "gen_ai.usage.output_tokens": rep_out}
            name = "llm.generate"
            kind = "internal"
            assert not (cr or cw or rs)
        elif dialect == "embeddings":
            a = {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": model,
                 "gen_ai.usage.input_tokens": rep_in}
            name = f"embeddings {model}"
        elif dialect == "oi_embedding_total":  # only a total: counted as input
            a = {"openinference.span.kind": "EMBEDDING", "llm.model_name": model, "llm.token_count.total": rep_in}
            name = "Embedding"
            assert out == 0
        else:
            raise ValueError(dialect)
        if resend:
            a["http.request.resend_count"] = 1
        if explicit is not None:
            usd = self._explicit_usd()
            if explicit == "gen_ai.usage.cost":
                a["gen_ai.usage.cost"] = usd
            elif explicit == "llm.cost.total":
                a["llm.cost.total"] = usd
            elif explicit == "llm.cost.parts":
                p, c = self._explicit_usd(frac=0.1), self._explicit_usd(frac=0.2)
                a["llm.cost.prompt"], a["llm.cost.completion"] = p, c
            else:
                raise ValueError(explicit)
        s = self.add(parent, name, a, error=error, kind=kind, service=service)
        self.intent.calls[s.span_id] = (model, inp, cr, cw, out, rs)
        if retry:
            self.intent.retries += 1
        return s

    def _explicit_usd(self, frac: Optional[float] = None) -> float:
        micros = self.rng.randint(1, 90_000)
        f = frac if frac is not None else self.rng.choice([0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 0.0])
        usd = round((micros + f) / 1e6, 7)
        x = usd * 1e6
        assert abs((x - int(x)) - 0.5) > 0.05
        return usd

    def llm_sequence(self, parent: SpanSpec, models: Sequence[str], dialect: str, n: int,
                     service: Optional[str] = None) -> List[SpanSpec]:
        """n calls under `parent`, sometimes with a retry scenario."""
        rng = self.rng
        out: List[SpanSpec] = []
        scenario = rng.choices(["plain", "resend", "error_retry", "error_fallback", "error_twice"],
                               weights=[70, 8, 10, 6, 6])[0]
        m = rng.choice(models)
        if scenario == "resend":
            out.append(self.llm(parent, m, dialect, resend=True, retry=True, service=service))
        elif scenario == "error_retry":
            out.append(self.llm(parent, m, dialect, error=True, service=service))
            out.append(self.llm(parent, m, dialect, retry=True, service=service))
        elif scenario == "error_fallback":
            others = [x for x in models if x != m]
            if others:  # a different model after the failure: a fallback, not a retry
                out.append(self.llm(parent, m, dialect, error=True, service=service))
                out.append(self.llm(parent, rng.choice(others), dialect, service=service))
        elif scenario == "error_twice":  # the retry fails too and is retried again
            out.append(self.llm(parent, m, dialect, error=True, service=service))
            out.append(self.llm(parent, m, dialect, error=True, retry=True, resend=rng.random() < 0.5, service=service))
            out.append(self.llm(parent, m, dialect, retry=True, service=service))
        # Whether the latest call to each model so far errored: the next call to it is then a retry.
        last_errored = {}
        for s in out:
            last_errored[self.intent.calls[s.span_id][0]] = s.error
        while len(out) < n:
            mm = rng.choice(models)
            out.append(self.llm(parent, mm, dialect, small=rng.random() < 0.1, retry=last_errored.get(mm, False),
                                service=service))
            last_errored[mm] = False
        return out

    # ---- tools, other spans, verdicts ----------------------------------------------

    def tool(self, parent: SpanSpec, name: str, dialect: str = "genai", error: bool = False,
             service: Optional[str] = None) -> SpanSpec:
        if dialect == "genai":
            a = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
            span_name = f"execute_tool {name}"
        elif dialect == "openinference":
            a = {"openinference.span.kind": "TOOL", "tool.name": name}
            span_name = name
        else:
            a = {"traceloop.span.kind": "tool", "traceloop.entity.name": name}
            span_name = f"{name}.tool"
        return self.add(parent, span_name, a, error=error, service=service)

    def _label(self, outcome: str) -> str:
        label = self.rng.choice(LABELS_BY_OUTCOME[outcome])
        return self.rng.choice([label, label.upper(), label.capitalize()])

    def _pick_outcome(self) -> str:
        return self.rng.choices(["accepted", "edited", "rejected", "escalated"], weights=[55, 15, 20, 10])[0]

    def _eval_event(self, span: SpanSpec, t: int, label: str) -> None:
        span.events.append(Event(EVALUATION_EVENT, t, {
            "gen_ai.evaluation.name": "review", "gen_ai.evaluation.score.label": label,
            "gen_ai.evaluation.score.value": 1.0}))

    def finish(self, verdict: str) -> RunSpec:
        """Adds the verdict scenario, closes the root and returns the run."""
        rng, root = self.rng, self.root
        assert root is not None
        # Verdict events go on spans of the run's own service, which reach the daemon with
        # the root (TOOL_SERVICE spans are exported afterwards).
        last = [s for s in self.spans if s is not root and s.service == self.service][-1]
        outcome = "pending"
        if verdict == "review_child_after_event":
            first = self._pick_outcome()
            second = self._pick_outcome()
            self._eval_event(root, last.end_ns, self._label(first))  # before the review span ends
            self.add(root, "human review", {"outcome.verdict": self._label(second), "outcome.reviewer": "ops@example.com",
                                            "outcome.reviewer_kind": "human"})
            outcome = second
        root.end_ns = self.cursor + self.ms(1, 50)
        end = root.end_ns
        if verdict in ("attr", "review_attr", "both_attrs"):
            outcome = self._pick_outcome()
            if verdict == "attr":
                root.attributes["outcome.verdict"] = self._label(outcome)
            elif verdict == "review_attr":
                root.attributes["review.verdict"] = self._label(outcome)
            else:
                other = rng.choice([o for o in ("accepted", "rejected", "escalated") if o != outcome])
                root.attributes["outcome.verdict"] = self._label(outcome)
                root.attributes["review.verdict"] = self._label(other)
            root.attributes["outcome.reviewer_kind"] = rng.choice(["human", "llm", "code"])
        elif verdict == "event_root":
            outcome = self._pick_outcome()
            self._eval_event(root, end - self.ms(1, 5) // 2 - 1, self._label(outcome))
        elif verdict == "event_child":
            outcome = self._pick_outcome()
            self._eval_event(last, last.end_ns - 1, self._label(outcome))
        elif verdict == "two_events":
            first, second = self._pick_outcome(), self._pick_outcome()
            while second == first:
                second = self._pick_outcome()
            t1 = root.start_ns + (end - root.start_ns) // 3
            t2 = end - 1
            evs = [(t1, first), (t2, second)]
            if rng.random() < 0.5:
                evs.reverse()  # recorded out of time order: time decides, not position
            for t, o in evs:
                self._eval_event(root, t, self._label(o))
            outcome = second
        elif verdict == "event_then_attr":
            first, second = self._pick_outcome(), self._pick_outcome()
            self._eval_event(last, last.end_ns - 1, self._label(first))
            root.attributes["outcome.verdict"] = self._label(second)  # at root end: later
            outcome = second
        elif verdict == "ignored":
            self._eval_event(root, end - 1, rng.choice(IGNORED_LABELS))
        elif verdict == "valid_then_ignored":
            outcome = self._pick_outcome()
            self._eval_event(root, root.start_ns + 1, self._label(outcome))
            self._eval_event(root, end - 1, rng.choice(IGNORED_LABELS))
        elif verdict in ("none", "review_child_after_event"):
            pass
        else:
            raise ValueError(verdict)
        self.intent.outcome = outcome
        return RunSpec(self.trace_id, self.service, self.spans, self.intent, self.label)


VERDICT_SCENARIOS = ["none", "attr", "review_attr", "both_attrs", "event_root", "event_child", "two_events",
                     "event_then_attr", "review_child_after_event", "ignored", "valid_then_ignored"]
VERDICT_WEIGHTS = [14, 24, 8, 4, 15, 8, 9, 6, 5, 4, 3]


def _support_answer(b: RunBuilder) -> None:
    rng = b.rng
    root = b.start_root("invoke_workflow support-answer",
                        {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "support-answer"},
                        "support-answer", kind="server")
    b.add(root, "retrieve", {"openinference.span.kind": "RETRIEVER", "input.value": "reset password"},
          error=rng.random() < 0.05)
    if rng.random() < 0.6:
        b.tool(root, "search_kb", "genai", error=rng.random() < 0.1,
               service=TOOL_SERVICE if rng.random() < 0.3 else None)
    b.llm_sequence(root, ["gpt-4o-mini-2024-07-18", "claude-sonnet-4-20250514"],
                   rng.choice(["genai", "genai", "genai_deprecated"]), rng.randint(1, 3))


def _doc_summarize(b: RunBuilder) -> None:
    rng = b.rng
    root = b.start_root("doc-summarize.workflow",
                        {"traceloop.span.kind": "workflow", "traceloop.workflow.name": "doc-summarize",
                         "traceloop.entity.name": "doc-summarize"}, "doc-summarize")
    if rng.random() < 0.5:
        b.llm(root, "text-embedding-3-small", "embeddings")
    elif rng.random() < 0.5:
        b.llm(root, "text-embedding-3-small", "oi_embedding_total")
    for _ in range(rng.randint(1, 2)):
        task = b.add(root, "summarize_chunk.task", {"traceloop.span.kind": "task",
                                                    "traceloop.entity.name": "summarize_chunk",
                                                    "traceloop.workflow.name": "doc-summarize"}, dur_ns=0)
        b.llm_sequence(task, ["gpt-4o-mini-2024-07-18", "claude-3-5-haiku-20241022"], "openllmetry",
                       rng.randint(1, 2))
        task.end_ns = b.cursor + NS_PER_MS
        b.cursor = task.end_ns
    if rng.random() < 0.4:
        b.tool(root, "store_summary", "traceloop", error=rng.random() < 0.1)


def _triage_agent(b: RunBuilder) -> None:
    rng = b.rng
    agent_attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage-agent",
                   "gen_ai.agent.id": "agt_triage"}
    if rng.random() < 0.5:
        agent = b.start_root("invoke_agent triage-agent", agent_attrs, "triage-agent")
    else:
        # An HTTP server root that is no workflow span: the agent span below it names the run.
        root = b.start_root("POST /v1/triage", {"http.request.method": "POST", "url.path": "/v1/triage",
                                                "http.response.status_code": 200}, "triage-agent", kind="server")
        agent = b.add(root, "invoke_agent triage-agent", agent_attrs, dur_ns=0)
        b.cursor = agent.start_ns
    b.llm_sequence(agent, ["claude-sonnet-4-20250514", "openrouter/mistral-small-2501"], "openinference",
                   rng.randint(1, 2))
    if rng.random() < 0.5:
        b.llm(agent, "o3-mini-2025-01-31", "genai", exclusive=rng.random() < 0.3)
    if rng.random() < 0.7:
        b.tool(agent, "lookup_account", "openinference", error=rng.random() < 0.1,
               service=TOOL_SERVICE if rng.random() < 0.3 else None)
    if rng.random() < 0.35:
        # A sub-agent deeper in the tree: its name must not become the workflow's.
        sub = b.add(agent, "invoke_agent kb-subagent", {"gen_ai.operation.name": "invoke_agent",
                                                        "gen_ai.agent.name": "kb-subagent"}, dur_ns=0)
        b.cursor = sub.start_ns
        b.llm(sub, "claude-sonnet-4-20250514", "genai", exclusive=rng.random() < 0.5,
              explicit="gen_ai.usage.cost" if rng.random() < 0.3 else None)
        sub.end_ns = b.cursor + NS_PER_MS
        b.cursor = sub.end_ns
    if agent is not b.root:
        agent.end_ns = b.cursor + NS_PER_MS
        b.cursor = agent.end_ns


def _nightly_report(b: RunBuilder) -> None:
    rng = b.rng
    variant = rng.choice(["plain", "empty_name", "chain"])
    attrs: Dict[str, Any] = {}
    if variant == "empty_name":
        attrs = {"gen_ai.workflow.name": ""}  # empty: skipped
    elif variant == "chain":
        attrs = {"openinference.span.kind": "CHAIN"}  # a workflow span without a name attribute
    root = b.start_root("nightly-report", attrs, "nightly-report")
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if r < 0.4:
            b.llm(root, UNPRICED_MODEL, "fallback", small=rng.random() < 0.1)
        elif r < 0.55:
            b.llm(root, UNPRICED_MODEL, "fallback", explicit="gen_ai.usage.cost")
        elif r < 0.8:
            b.llm(root, "gpt-4o-2024-08-06", "genai", explicit="gen_ai.usage.cost" if rng.random() < 0.5 else None)
        else:
            b.llm(root, "gpt-4o-2024-08-06", "openinference",
                  explicit=rng.choice(["llm.cost.total", "llm.cost.parts", None]))
    if rng.random() < 0.5:
        b.tool(root, "fetch_metrics", "genai", error=rng.random() < 0.2)
    if rng.random() < 0.3:
        b.add(root, "render_pdf", {"code.function.name": "render_pdf"}, error=rng.random() < 0.3)


WORKFLOW_BUILDERS = {"support-answer": _support_answer, "doc-summarize": _doc_summarize,
                     "triage-agent": _triage_agent, "nightly-report": _nightly_report}


def showcase_run(rng: random.Random, ids: IdSource, start_ns: int) -> RunSpec:
    """One hand-laid run with most features, checked span by span through `trace`."""
    b = RunBuilder(rng, ids, "support-api", start_ns, "showcase")
    agent = b.start_root("invoke_agent triage-agent",
                         {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage-agent"},
                         "triage-agent")
    b.add(agent, "retrieve", {"openinference.span.kind": "RETRIEVER"})
    b.llm(agent, "claude-sonnet-4-20250514", "genai", exclusive=True)          # cache tokens reported apart
    b.llm(agent, "openrouter/mistral-small-2501", "openinference")             # gateway prefix
    b.llm(agent, "o3-mini-2025-01-31", "genai")                                # reasoning inside output
    b.llm(agent, UNPRICED_MODEL, "fallback")                                   # unpriced
    b.llm(agent, "gpt-4o-2024-08-06", "genai", error=True)                     # error ...
    b.llm(agent, "gpt-4o-2024-08-06", "genai", retry=True, explicit="gen_ai.usage.cost")  # ... then retry
    b.tool(agent, "lookup_account", "genai", service=TOOL_SERVICE)
    run = b.finish("two_events")
    return run


@dataclass
class Workload:
    runs: List[RunSpec]
    facts: List[RunFacts]
    showcase: RunSpec

    def facts_for(self, run: RunSpec) -> RunFacts:
        return self.facts[self.runs.index(run)]

    def groups(self, group_by: Sequence[str] = (), workflow: Optional[str] = None):
        return expected_groups(self.facts, group_by, workflow)

    @property
    def span_count(self) -> int:
        return sum(len(r.spans) for r in self.runs)


def generate(seed: int = 20261123, runs: int = 300, base_time_ns: Optional[int] = None) -> Workload:
    """`runs` runs whose roots start 2–28 minutes before base_time_ns (default: now)."""
    import time
    if base_time_ns is None:
        base_time_ns = time.time_ns()
    rng = random.Random(seed)
    ids = IdSource(rng)
    window_lo = base_time_ns - 28 * 60 * NS_PER_S
    window_hi = base_time_ns - 2 * 60 * NS_PER_S
    specs = [showcase_run(rng, ids, window_lo + 30 * NS_PER_S)]
    wf_weights = [35, 25, 25, 15]
    for i in range(runs - 1):
        wf = rng.choices(WORKFLOWS, weights=wf_weights)[0]
        if wf in ("support-answer",):
            service = "support-api"
        elif wf == "triage-agent":
            service = "support-api" if rng.random() < 0.7 else "batch-worker"
        else:
            service = "batch-worker"
        start = rng.randint(window_lo, window_hi)
        b = RunBuilder(rng, ids, service, start, f"#{i + 1} {wf}")
        WORKFLOW_BUILDERS[wf](b)
        specs.append(b.finish(rng.choices(VERDICT_SCENARIOS, weights=VERDICT_WEIGHTS)[0]))
    for r in specs:
        assert r.root.end_ns < base_time_ns - 30 * NS_PER_S, "run ends in the future"
        for s in r.spans:
            assert s.start_ns <= s.end_ns
    facts = [interpret_run(r) for r in specs]
    return Workload(specs, facts, specs[0])


# --------------------------------------------------------------------------------------
# Export with the OpenTelemetry SDK.
# --------------------------------------------------------------------------------------

class _PresetIdGenerator:
    """An SDK IdGenerator that hands out the ids the workload chose."""

    def __init__(self):
        from opentelemetry.sdk.trace.id_generator import IdGenerator

        class Gen(IdGenerator):
            def __init__(self):
                self.trace_id: Optional[int] = None
                self.span_id: Optional[int] = None

            def generate_trace_id(self) -> int:
                v, self.trace_id = self.trace_id, None
                assert v is not None, "no preset trace id"
                return v

            def generate_span_id(self) -> int:
                v, self.span_id = self.span_id, None
                assert v is not None, "no preset span id"
                return v

        self.gen = Gen()


def export_with_sdk(runs: Sequence[RunSpec], endpoint: str, timeout_s: float = 60.0) -> Dict[str, int]:
    """export_runs with the OTLP/HTTP protobuf exporter, never through a proxy (the daemon
    is on loopback)."""
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    def make_exporter():
        session = requests.Session()
        session.trust_env = False
        return OTLPSpanExporter(endpoint=endpoint, timeout=30, session=session)

    return export_runs(runs, make_exporter, timeout_s)


def export_runs(runs: Sequence[RunSpec], make_exporter: Callable[[], Any], timeout_s: float = 60.0) -> Dict[str, int]:
    """Exports the runs through TracerProvider + BatchSpanProcessor, one provider per
    service, with exporters from make_exporter() (any official SDK exporter). Spans of run
    services go first (root before its descendants), then the TOOL_SERVICE spans, so every
    root reaches the daemon before any span of its trace from another service. Returns
    per-service counts of spans exported successfully; raises on any failure."""
    from opentelemetry import trace as trace_api
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

    class CountingExporter(SpanExporter):
        def __init__(self, inner):
            self.inner, self.ok, self.failed = inner, 0, 0

        def export(self, spans):
            res = self.inner.export(spans)
            if res == SpanExportResult.SUCCESS:
                self.ok += len(spans)
            else:
                self.failed += len(spans)
            return res

        def shutdown(self):
            self.inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    ids = _PresetIdGenerator().gen
    kinds = {"internal": SpanKind.INTERNAL, "server": SpanKind.SERVER, "client": SpanKind.CLIENT}
    services = list(SERVICES) + [TOOL_SERVICE]
    providers, exporters = {}, {}
    for svc in services:
        exp = CountingExporter(make_exporter())
        tp = TracerProvider(resource=Resource.create({"service.name": svc}), id_generator=ids, sampler=ALWAYS_ON)
        tp.add_span_processor(BatchSpanProcessor(exp, max_queue_size=200_000, max_export_batch_size=512,
                                                 schedule_delay_millis=100))
        providers[svc], exporters[svc] = tp, exp
    tracers = {svc: providers[svc].get_tracer("spanledger-e2e-workload", "1.0") for svc in services}

    def emit(run: RunSpec, span: SpanSpec) -> None:
        ctx = None
        if span.parent_id is not None:
            parent = SpanContext(trace_id=run.trace_id, span_id=span.parent_id, is_remote=False,
                                 trace_flags=TraceFlags(TraceFlags.SAMPLED))
            ctx = trace_api.set_span_in_context(NonRecordingSpan(parent))
        else:
            ids.trace_id = run.trace_id
        ids.span_id = span.span_id
        s = tracers[span.service].start_span(span.name, context=ctx, kind=kinds[span.kind],
                                             attributes=span.attributes, start_time=span.start_ns)
        assert s.get_span_context().span_id == span.span_id and s.get_span_context().trace_id == run.trace_id
        for e in span.events:
            s.add_event(e.name, e.attributes, timestamp=e.time_ns)
        if span.error:
            s.set_status(Status(StatusCode.ERROR, "upstream error"))
        s.end(end_time=span.end_ns)

    def flush(svcs):
        for svc in svcs:
            if not providers[svc].force_flush(timeout_millis=int(timeout_s * 1000)):
                raise AssertionError(f"force_flush of {svc} timed out")

    for run in runs:
        for span in run.spans:
            if span.service != TOOL_SERVICE:
                emit(run, span)
    flush(SERVICES)
    for run in runs:
        for span in run.spans:
            if span.service == TOOL_SERVICE:
                emit(run, span)
    flush([TOOL_SERVICE])
    for tp in providers.values():
        tp.shutdown()
    failed = {svc: e.failed for svc, e in exporters.items() if e.failed}
    if failed:
        details = [p for e in exporters.values() for p in getattr(e.inner, "problems", [])]
        raise AssertionError(f"OTLP export failed for spans: {failed} {details[:5]}")
    return {svc: e.ok for svc, e in exporters.items()}


def summary(w: Workload) -> str:
    lines = [f"{len(w.runs)} runs, {w.span_count} spans"]
    for by in ((), ("workflow",), ("service",), ("model",), ("workflow", "outcome")):
        lines.append(f"-- group_by={','.join(by) or '(total)'}")
        for k, g in sorted(w.groups(by).items(), key=lambda kv: (-kv[1]["cost_micros"], kv[0])):
            fields = " ".join(f"{f}={g[f]}" for f in EXACT_FIELDS)
            lines.append(f"  {k}: {fields}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(generate()))
