/// The web dashboard served on the API listener at `GET /` and `GET /index.html`
/// (`text/html; charset=utf-8`): one self-contained page (inline CSS, vanilla JS, SVG
/// charts drawn by the page itself; no external resources) that reads the query API of
/// the same origin: rollups, series, top, traces, workflows, scorecard, routes, alerts.
///
/// Deep links live in the URL hash: `#range=24h` (1h, 24h, 7d, 30d, 90d; default 24h),
/// `#range=7d&workflow=NAME` (a workflow's detail), `#range=24h&trace=ID` (one run's tree).
/// Stable hooks for tests: `data-testid` attributes (headline-*, workflow-row-NAME,
/// top-*, chart-*, route-row, agent-row, trace-*, span-row) and `data-value` on numbers.
public enum DashboardPage {
    public static let contentType = "text/html; charset=utf-8"

    public static let html: String = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SpanLedger · cost per accepted outcome</title>
<style>
:root{--bg:#f4f5f7;--panel:#fff;--ink:#1c2230;--muted:#667085;--line:#e3e6eb;--accent:#2356c9;--good:#2f9e5b;--bad:#d64545;--warn:#e58e1a;
--acc:#2f9e5b;--edi:#8cc36a;--rej:#d64545;--esc:#ee9a2e;--pen:#aab2bd}
*{box-sizing:border-box}
html,body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
header{position:sticky;top:0;z-index:5;background:#182033;color:#fff;display:flex;flex-wrap:wrap;align-items:center;gap:12px 20px;padding:10px 24px}
header h1{font-size:18px;margin:0;font-weight:650;letter-spacing:.2px}header h1 a{color:#fff}
header .tag{color:#aab4c8;font-size:12.5px}
.ranges{display:flex;border:1px solid #3a4560;border-radius:7px;overflow:hidden}
.ranges a{color:#cfd6e4;padding:4px 11px;font-size:13px;border-right:1px solid #3a4560}.ranges a:last-child{border-right:0}
.ranges a.on{background:#3b6ff0;color:#fff;font-weight:600}.ranges a:hover{text-decoration:none;background:#2a3550}.ranges a.on:hover{background:#3b6ff0}
form.search{display:flex;gap:6px;margin-left:auto}
form.search input{width:300px;padding:5px 9px;border-radius:6px;border:1px solid #3a4560;background:#0f1524;color:#fff;font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
form.search button,.btn{padding:5px 11px;border-radius:6px;border:1px solid #3a4560;background:#2a3550;color:#fff;cursor:pointer;font-size:13px}
.refresh{color:#aab4c8;font-size:12.5px;display:flex;align-items:center;gap:8px}
.refresh button{background:none;border:1px solid #3a4560;color:#cfd6e4;border-radius:6px;cursor:pointer;padding:2px 8px}
.searcherr{color:#ffb4b4;font-size:12.5px;width:100%;text-align:right}
main{max-width:1360px;margin:0 auto;padding:18px 24px 40px}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:0 0 18px}
h2{font-size:16px;margin:0 0 12px;font-weight:650}h2 small,h3 small{font-weight:400;color:var(--muted);font-size:12.5px;margin-left:8px}
h3{font-size:14px;margin:0 0 8px;font-weight:650}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin:0 0 18px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:12px 14px;min-height:96px}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.5px}
.card .v{font-size:26px;font-weight:650;margin:2px 0;font-variant-numeric:tabular-nums;white-space:nowrap}
.card .s{color:var(--muted);font-size:12px}
.card.hero{border-color:#b9ccf5;background:linear-gradient(180deg,#f7faff,#fff)}
.cards.head{grid-template-columns:1.7fr 1.5fr repeat(5,minmax(0,1fr))}
@media (max-width:1100px){.cards.head{grid-template-columns:repeat(auto-fit,minmax(170px,1fr))}}
.card.hero .v{font-size:34px}
.card.alarm{border-color:#f1b0b0;background:#fff5f5;cursor:pointer}.card.alarm .v{color:var(--bad)}
.card .spark{display:block;margin-top:4px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th{font-size:11.5px;text-transform:uppercase;letter-spacing:.4px;color:var(--muted);font-weight:600;text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
td{padding:7px 8px;border-bottom:1px solid #f0f1f4;vertical-align:middle}
th.n,td.n{text-align:right;white-space:nowrap}
tr.click{cursor:pointer}tr.click:hover td{background:#f6f8fd}
td.name{font-weight:600;white-space:nowrap}
.sub{color:var(--muted);font-size:12px;font-weight:400}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.mix{width:170px;height:14px;display:block;border-radius:3px;overflow:hidden}
.legend{display:flex;gap:14px;flex-wrap:wrap;color:var(--muted);font-size:12px;margin-top:8px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:11.5px;font-weight:600;background:#eef0f4;color:#445}
.b-accepted{background:#e3f4ea;color:#1d6b3d}.b-edited{background:#eef7e6;color:#4b7a2a}.b-rejected{background:#fde8e8;color:#a12b2b}
.b-escalated{background:#fdf0df;color:#8f560c}.b-pending{background:#eef0f4;color:#555}
.b-critical{background:#d64545;color:#fff}.b-warning{background:#f6c343;color:#3d2b00}.b-info{background:#dbe6fb;color:#1d3f8f}
.b-llm{background:#e6edfd;color:#2246a0}.b-tool{background:#f3e8fd;color:#6a2aa0}.b-workflow{background:#e3f4ea;color:#1d6b3d}.b-other{background:#eef0f4;color:#555}
.flag{display:inline-block;padding:0 6px;border-radius:4px;font-size:11px;font-weight:700;margin-right:3px}
.f-err{background:#fde8e8;color:#a12b2b}.f-retry{background:#fdf0df;color:#8f560c}.f-unpriced{background:#fff4cc;color:#7a5b00}.f-explicit{background:#e6edfd;color:#2246a0}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px}
.grid4{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:14px}
.toplist{margin:0;padding:0;list-style:none;counter-reset:i}
.toplist li{display:flex;justify-content:space-between;gap:10px;padding:6px 0;border-bottom:1px solid #f0f1f4;counter-increment:i}
.toplist li:before{content:counter(i);color:var(--muted);width:16px;font-size:12px;padding-top:1px}
.toplist li .l{flex:1;min-width:0;overflow:hidden;text-overflow:ellipsis}
.toplist li .r{text-align:right;font-weight:650;white-space:nowrap}
.empty{color:var(--muted);font-style:italic;padding:10px 0}
.err{color:#a12b2b;background:#fff5f5;border:1px solid #f1b0b0;border-radius:8px;padding:8px 12px;margin:6px 0;font-size:13px}
.up{color:var(--bad)}.down{color:var(--good)}
svg.chart{width:100%;height:auto;display:block}
svg.chart text{font-size:10.5px;fill:#667085}
svg.chart .grid{stroke:#eceef2}svg.chart .axis{stroke:#c8ccd4}
svg.chart .hit{fill:transparent}svg.chart .hit:hover{fill:rgba(35,86,201,.08)}
.chartbox{border:1px solid var(--line);border-radius:8px;padding:10px 12px 6px}
.alerts li{padding:8px 0;border-bottom:1px solid #f0f1f4;list-style:none}.alerts ul{margin:0;padding:0}
.crumbs{margin:0 0 10px;font-size:13px}
.sentence{font-size:14px;color:#344054;margin:-4px 0 14px}
.tree td{padding:5px 8px}.tree .nm{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:420px}
.tree .tw{width:230px}
.wf{position:relative;height:10px;background:#f2f4f7;border-radius:3px}
.wf span{position:absolute;top:0;height:10px;border-radius:3px;background:#7a9ee8;min-width:2px}
.wf span.k-llm{background:#3b6ff0}.wf span.k-tool{background:#9b59d0}.wf span.k-workflow{background:#2f9e5b}.wf span.e{background:#d64545}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;font-size:13px}.kv dt{color:var(--muted)}.kv dd{margin:0}
.ci{width:110px;height:12px;display:inline-block;vertical-align:middle;margin-left:6px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:0 0 24px}
</style>
</head>
<body>
<header>
  <h1><a href="#range=24h" id="home">SpanLedger</a></h1>
  <span class="tag">what each accepted outcome costs</span>
  <nav class="ranges" id="ranges" data-testid="range-picker"></nav>
  <form class="search" id="traceform" autocomplete="off">
    <input id="traceid" data-testid="trace-search" placeholder="open a run: trace ID (32 hex digits)" spellcheck="false">
    <button type="submit" data-testid="trace-search-open">Open run</button>
  </form>
  <span class="refresh"><span id="refreshed" data-testid="last-refresh">loading…</span><button id="refreshnow" title="refresh now (auto every 30 s)">↻</button></span>
  <span class="searcherr" id="searcherr" hidden></span>
</header>
<main id="main" data-testid="main"><p class="empty">Loading…</p></main>
<footer>SpanLedger · data from this daemon's query API (<span class="mono">/api/v1</span>) · auto-refresh every 30 s</footer>
<script>
(function () {
"use strict";
var RANGES = ["1h", "24h", "7d", "30d", "90d"];
var STEPS = {"1h": "1m", "24h": "1h", "7d": "6h", "30d": "1d", "90d": "1d"};
var OUTCOMES = ["accepted", "edited", "rejected", "escalated", "pending"];
var COLORS = {accepted: "#2f9e5b", edited: "#8cc36a", rejected: "#d64545", escalated: "#ee9a2e", pending: "#aab2bd"};
var REFRESH_MS = 30000;
var st = {range: "24h", workflow: null, trace: null, seq: 0};
var main = document.getElementById("main");

// ---------- formatting ----------
function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
  });
}
function group3(digits) { return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
function num(v) { return typeof v === "number" && isFinite(v); }
function fmtInt(v) { return num(v) ? (v < 0 ? "-" : "") + group3(String(Math.round(Math.abs(v)))) : "—"; }
// Money: $ and 6 decimals under $0.01, 4 under $1, else 2 (thousands separated).
function fmtUSD(v) {
  if (!num(v)) return "—";
  var a = Math.abs(v);
  if (a === 0) return "$0.00";
  var t = a.toFixed(a < 0.01 ? 6 : a < 1 ? 4 : 2).split(".");
  return (v < 0 ? "-" : "") + "$" + group3(t[0]) + "." + t[1];
}
function fmtSignedUSD(v) { return num(v) ? (v > 0 ? "+" : "") + fmtUSD(v) : "—"; }
function fmtPct(r) { return num(r) ? (r * 100).toFixed(1) + "%" : "—"; }
function fmtSignedPct(r) { return num(r) ? (r > 0 ? "+" : "") + (r * 100).toFixed(1) + "%" : "—"; }
function fmtMs(ms) {
  if (!num(ms)) return "—";
  if (ms === 0) return "0 ms";
  if (ms < 10) return ms.toFixed(1) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  return (ms / 60000).toFixed(1) + " min";
}
function fmtCount(v) { return !num(v) ? "—" : Math.abs(v - Math.round(v)) < 1e-9 ? fmtInt(v) : v.toFixed(1); }
function plural(n, one, many) { return fmtInt(n) + " " + (n === 1 ? one : many || one + "s"); }
function pad2(n) { return (n < 10 ? "0" : "") + n; }
function fmtTime(ms, withDate) {
  var d = new Date(ms);
  var hm = pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
  return withDate ? d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) + (hm === "00:00" ? "" : " " + hm) : hm;
}
function fmtStamp(iso) { if (!iso) return "—"; var t = Date.parse(iso); return isNaN(t) ? esc(iso) : fmtTime(t, true) + " UTC"; }
function accepted(g) { return (g.accepted || 0) + (g.edited || 0); }
function decided(g) { return accepted(g) + (g.rejected || 0) + (g.escalated || 0); }
function nameOf(w) { return w === "" ? "(unnamed)" : w; }
function dv(v) { return v == null ? "" : ' data-value="' + esc(v) + '"'; }

// ---------- URL hash: range, workflow, trace ----------
function readHash() {
  var p = new URLSearchParams(location.hash.replace(/^#/, ""));
  var r = p.get("range");
  st.range = RANGES.indexOf(r) >= 0 ? r : "24h";
  st.workflow = p.get("workflow") || null;
  var t = p.get("trace");
  st.trace = t ? t.trim().toLowerCase() : null;
}
function link(o) {
  var p = new URLSearchParams();
  p.set("range", o.range || st.range);
  if (o.workflow != null) p.set("workflow", o.workflow);
  if (o.trace) p.set("trace", o.trace);
  return "#" + p.toString();
}
function wfLink(w, extra) { return '<a href="' + esc(link({workflow: w})) + '"' + (extra || "") + ">" + esc(nameOf(w)) + "</a>"; }

// ---------- the API ----------
function qs(path, params) {
  var parts = [];
  Object.keys(params).forEach(function (k) {
    if (params[k] != null) parts.push(k + "=" + (k === "group_by" ? params[k] : encodeURIComponent(params[k])));
  });
  return path + (parts.length ? "?" + parts.join("&") : "");
}
function api(path) {
  return fetch(path, {cache: "no-store", headers: {Accept: "application/json"}}).then(function (r) {
    return r.text().then(function (t) {
      var doc = null;
      try { doc = JSON.parse(t); } catch (e) { doc = null; }
      if (!r.ok) {
        var e = new Error(path.split("?")[0] + " answered " + r.status + ": " +
          (doc && doc.error && doc.error.message ? doc.error.message : (t.slice(0, 200) || r.statusText)));
        e.status = r.status;
        throw e;
      }
      if (doc === null) throw new Error(path.split("?")[0] + " did not answer JSON");
      return doc;
    });
  });
}
function soft(p) { return p.then(function (d) { return {ok: true, data: d}; }, function (e) { return {ok: false, error: e}; }); }
function errBox(res, what) { return '<div class="err" data-testid="error">Could not load ' + esc(what) + ": " + esc(res.error && res.error.message) + "</div>"; }

// ---------- SVG ----------
function ticks(max, integer) {
  if (!(max > 0)) return {top: integer ? 4 : 1, step: integer ? 1 : 0.25};
  var raw = max / 4, p = Math.pow(10, Math.floor(Math.log10(raw))), step = 10 * p;
  [1, 2, 2.5, 5, 10].some(function (m) { if (m * p >= raw - 1e-12) { step = m * p; return true; } return false; });
  if (integer) step = Math.max(1, Math.ceil(step));
  return {top: step * Math.ceil(max / step - 1e-9), step: step};
}
// A chart of one value per step: bars (counts) or a line with gaps where a value is null.
function chart(o) {
  var W = 600, H = 200, L = 70, R = 14, T = 12, B = 28, pw = W - L - R, ph = H - T - B, n = o.values.length;
  var max = 0, total = 0, count = 0;
  o.values.forEach(function (v) { if (v != null) { count++; total += v; if (v > max) max = v; } });
  var tk = ticks(max, o.integer), top = tk.top || 1;
  var band = n > 0 ? pw / n : pw;
  function x(i) { return L + (i + 0.5) * band; }
  function y(v) { return T + ph - v / top * ph; }
  var s = '<svg class="chart" viewBox="0 0 ' + W + " " + H + '" data-testid="' + esc(o.id) + '" data-points="' + n +
    '" data-total="' + (o.integer ? total : +total.toFixed(6)) + '"' + (n ? ' data-start="' + new Date(o.times[0]).toISOString() + '"' : "") + ' role="img" aria-label="' + esc(o.title) + '">';
  for (var v = 0; v <= top + 1e-9; v += tk.step) {
    s += '<line class="' + (v === 0 ? "axis" : "grid") + '" x1="' + L + '" x2="' + (W - R) + '" y1="' + y(v).toFixed(1) + '" y2="' + y(v).toFixed(1) + '"/>';
    s += '<text x="' + (L - 6) + '" y="' + (y(v) + 3.5).toFixed(1) + '" text-anchor="end">' + esc(o.fmt(v)) + "</text>";
  }
  var labels = n > 0 ? [0, Math.floor((n - 1) / 2), n - 1] : [];
  labels.forEach(function (i, k) {
    if (k > 0 && i === labels[k - 1]) return;
    s += '<text x="' + x(i).toFixed(1) + '" y="' + (H - 8) + '" text-anchor="' + (k === 0 ? "start" : k === 2 ? "end" : "middle") + '">' + esc(fmtTime(o.times[i], o.withDate)) + "</text>";
  });
  if (o.kind === "bar") {
    var bw = Math.max(1, band * 0.72);
    o.values.forEach(function (v, i) {
      if (v > 0) s += '<rect class="bar" x="' + (x(i) - bw / 2).toFixed(2) + '" y="' + y(v).toFixed(2) + '" width="' + bw.toFixed(2) + '" height="' + (y(0) - y(v)).toFixed(2) + '" fill="' + o.color + '" rx="1"/>';
    });
  } else {
    var d = "", prev = false;
    o.values.forEach(function (v, i) {
      if (v == null) { prev = false; return; }
      d += (prev ? "L" : "M") + x(i).toFixed(2) + " " + y(v).toFixed(2);
      prev = true;
    });
    if (d) s += '<path d="' + d + '" fill="none" stroke="' + o.color + '" stroke-width="2" stroke-linejoin="round"/>';
    if (n <= 120) o.values.forEach(function (v, i) {
      if (v != null) s += '<circle cx="' + x(i).toFixed(2) + '" cy="' + y(v).toFixed(2) + '" r="2.6" fill="' + o.color + '"/>';
    });
  }
  o.values.forEach(function (v, i) {
    s += '<rect class="hit" x="' + (L + i * band).toFixed(2) + '" y="' + T + '" width="' + band.toFixed(2) + '" height="' + ph + '"><title>' +
      esc(fmtTime(o.times[i], true) + " UTC: " + (v == null ? "no data" : o.fmt(v))) + "</title></rect>";
  });
  if (count === 0) s += '<text x="' + (L + pw / 2) + '" y="' + (T + ph / 2) + '" text-anchor="middle">' + esc(o.emptyText || "nothing in this range") + "</text>";
  return s + "</svg>";
}
function sparkline(values, id) {
  var W = 220, H = 40, n = values.length, max = 0;
  values.forEach(function (v) { if (v > max) max = v; });
  var pts = values.map(function (v, i) {
    return (n > 1 ? i * (W - 4) / (n - 1) + 2 : W / 2).toFixed(1) + "," + (H - 3 - (max > 0 ? v / max * (H - 8) : 0)).toFixed(1);
  });
  return '<svg class="spark" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '" data-testid="' + id + '" data-points="' + n + '" data-total="' + values.reduce(function (a, v) { return a + v; }, 0) + '">' +
    (n ? '<polygon points="2,' + (H - 3) + " " + pts.join(" ") + " " + (W - 2) + "," + (H - 3) + '" fill="#dbe6fb"/>' +
      '<polyline points="' + pts.join(" ") + '" fill="none" stroke="#2356c9" stroke-width="1.6"/>' : "") + "<title>accepted outcomes per step</title></svg>";
}
function mixBar(g, costs, id) {
  var runs = g.runs || 0, x = 0, s = '<svg class="mix" viewBox="0 0 100 10" preserveAspectRatio="none" data-testid="' + esc(id) + '" data-mix="' +
    OUTCOMES.map(function (o) { return g[o] || 0; }).join(",") + '">';
  if (!runs) return s + '<rect width="100" height="10" fill="#eef0f4"/></svg>';
  OUTCOMES.forEach(function (o) {
    var c = g[o] || 0;
    if (!c) return;
    var w = c / runs * 100;
    s += '<rect x="' + x.toFixed(3) + '" width="' + w.toFixed(3) + '" height="10" fill="' + COLORS[o] + '"><title>' + esc(o + ": " + plural(c, "run") + " (" +
      fmtPct(c / runs) + ")" + (costs && costs[o] != null ? ", " + fmtUSD(costs[o]) : "")) + "</title></rect>";
    x += w;
  });
  return s + "</svg>";
}
function legend() {
  return '<div class="legend">' + OUTCOMES.map(function (o) { return '<span><i style="background:' + COLORS[o] + '"></i>' + o + "</span>"; }).join("") +
    "<span>· hover a bar for runs and cost per outcome</span></div>";
}
function ciBar(r) {
  if (!num(r.acceptance_rate)) return "";
  var lo = (r.acceptance_low || 0) * 100, hi = (r.acceptance_high || 0) * 100, e = r.acceptance_rate * 100;
  return '<svg class="ci" viewBox="0 0 100 10" preserveAspectRatio="none"><rect width="100" height="10" fill="#f2f4f7"/><rect x="' + lo.toFixed(2) + '" width="' +
    Math.max(0.5, hi - lo).toFixed(2) + '" y="2" height="6" fill="#b9ccf5"/><rect x="' + Math.max(0, e - 0.6).toFixed(2) + '" width="1.2" height="10" fill="#2356c9"/><title>' +
    esc("95% interval " + fmtPct(r.acceptance_low) + " – " + fmtPct(r.acceptance_high)) + "</title></svg>";
}
function card(label, value, sub, testid, opts) {
  opts = opts || {};
  return '<div class="card' + (opts.cls ? " " + opts.cls : "") + '"' + (opts.attrs || "") + '><div class="k">' + esc(label) + '</div><div class="v" data-testid="' + testid + '"' +
    dv(opts.value) + ">" + esc(value) + '</div><div class="s">' + (sub || "") + "</div>" + (opts.extra || "") + "</div>";
}

// ---------- chrome ----------
function renderChrome() {
  document.getElementById("ranges").innerHTML = RANGES.map(function (r) {
    return '<a href="' + esc(link({range: r, workflow: st.workflow, trace: st.trace})) + '" data-testid="range-' + r + '"' +
      (r === st.range ? ' class="on" aria-current="true"' : "") + ">" + r + "</a>";
  }).join("");
  document.getElementById("home").setAttribute("href", link({}));
  var box = document.getElementById("traceid");
  if (st.trace && document.activeElement !== box) box.value = st.trace;
}
function setRefreshed() {
  var d = new Date(), el = document.getElementById("refreshed");
  el.textContent = "updated " + pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes()) + ":" + pad2(d.getUTCSeconds()) + " UTC";
  el.setAttribute("data-time", d.toISOString());
}

// ---------- overview ----------
function loadOverview(seq) {
  var r = st.range;
  var calls = [
    api(qs("/api/v1/rollups", {since: r})),
    api(qs("/api/v1/rollups", {since: r, group_by: "workflow"})),
    api(qs("/api/v1/rollups", {since: r, group_by: "workflow,outcome"})),
    api(qs("/api/v1/series", {since: r, step: STEPS[r]})),
    api("/api/v1/alerts"),
    api("/api/v1/scorecard"),
    api("/api/v1/workflows")
  ].concat(["spend", "retries", "acceptance", "change"].map(function (by) {
    return api(qs("/api/v1/top", {by: by, dimension: "workflow", since: r, limit: 5}));
  }));
  return Promise.all(calls.map(soft)).then(function (res) {
    if (seq !== st.seq) return;
    var alerts = res[4], firing = alerts.ok ? (alerts.data.firing || []) : [];
    var html = headline(res[0], res[3], alerts, firing);
    var alertHtml = alertsSection(alerts, firing);
    if (firing.length) html += alertHtml;
    html += workflowsSection(res[1], res[2], res[6]);
    html += diagnostics(res.slice(7, 11));
    html += scorecardSection(res[5]);
    if (!firing.length) html += alertHtml;
    main.innerHTML = html;
    main.setAttribute("data-view", "overview");
  });
}
function headline(totalRes, seriesRes, alertsRes, firing) {
  var html = '<section data-testid="headline"><div class="cards head">';
  if (!totalRes.ok) return '<section data-testid="headline">' + errBox(totalRes, "the totals") + "</section>";
  var g = totalRes.data.groups[0] || {runs: 0, cost_usd: 0, accepted: 0, edited: 0, rejected: 0, escalated: 0, pending: 0};
  var none = !g.runs;
  var spark = "";
  if (seriesRes.ok) {
    var s = seriesRes.data.series[0];
    var vals = s ? s.points.map(accepted) : [];
    spark = sparkline(vals, "headline-sparkline");
  } else {
    spark = '<div class="s" data-testid="headline-sparkline-error">trend unavailable: ' + esc(seriesRes.error.message) + "</div>";
  }
  var rangeTxt = "in the last " + st.range;
  html += card("Accepted outcomes", fmtInt(accepted(g)), none ? "no runs in this range" : "accepted + edited " + rangeTxt + " · " + plural(g.runs, "run"),
    "headline-accepted", {cls: "hero", value: accepted(g), extra: spark});
  html += card("Cost per accepted outcome", fmtUSD(g.cost_per_accepted_usd),
    none ? "no runs in this range" : g.cost_per_accepted_usd == null ? "nothing accepted yet" : "all spend ÷ accepted outcomes",
    "headline-cost-per-accepted", {value: g.cost_per_accepted_usd, cls: "hero"});
  html += card("Spend", fmtUSD(g.cost_usd || 0), plural(g.llm_calls || 0, "LLM call") + (g.unpriced_tokens ? ' · <span class="flag f-unpriced">' + fmtInt(g.unpriced_tokens) + " unpriced tokens</span>" : ""),
    "headline-spend", {value: g.cost_usd || 0});
  html += card("Acceptance rate", fmtPct(g.acceptance_rate), decided(g) ? "of " + fmtInt(decided(g)) + " reviewed runs" : "no reviewed runs", "headline-acceptance", {value: g.acceptance_rate});
  html += card("Rework rate", fmtPct(g.rework_rate), plural(g.rework_runs || 0, "rework run") + " · " + fmtUSD(g.rework_cost_usd || 0), "headline-rework", {value: g.rework_rate});
  html += card("Pending reviews", fmtInt(g.pending || 0), "runs without a verdict yet", "headline-pending", {value: g.pending || 0});
  var nf = alertsRes.ok ? firing.length : null;
  html += card("Firing alerts", alertsRes.ok ? fmtInt(nf) : "?", alertsRes.ok ? (nf ? "see the list below" : "all quiet") : "alerts unavailable", "headline-alerts",
    {value: nf, cls: nf ? "alarm" : "", attrs: nf ? ' onclick="document.getElementById(\'alerts\').scrollIntoView({behavior:\'smooth\'})"' : ""});
  return html + "</div></section>";
}
function workflowsSection(wfRes, mixRes, allRes) {
  var html = '<section class="panel" id="workflows" data-testid="workflows"><h2>Workflows<small>by spend, ' + esc(st.range) + " · click a workflow for its trends, models and agents</small></h2>";
  if (!wfRes.ok) return html + errBox(wfRes, "workflows") + "</section>";
  var groups = wfRes.data.groups.slice().sort(function (a, b) { return (b.cost_micros - a.cost_micros) || (a.workflow < b.workflow ? -1 : a.workflow > b.workflow ? 1 : 0); });
  var costs = {};
  if (mixRes.ok) mixRes.data.groups.forEach(function (m) { (costs[m.workflow] = costs[m.workflow] || {})[m.outcome] = m.cost_usd; });
  var totalCost = groups.reduce(function (a, g) { return a + g.cost_micros; }, 0);
  if (!groups.length) {
    html += '<p class="empty" data-testid="workflows-empty">No runs in this range (' + esc(st.range) + "). Pick a longer range, or send OTLP traces to this collector.</p>";
  } else {
    html += '<table data-testid="workflow-table"><thead><tr><th>Workflow</th><th class="n">Runs</th><th class="n">Accepted</th><th class="n">Cost / accepted</th><th class="n">Spend</th>' +
      '<th>Outcome mix</th><th class="n">Acceptance</th><th class="n">Rework</th><th class="n">Latency p50 / p95</th><th class="n">Retries</th></tr></thead><tbody>';
    groups.forEach(function (g) {
      var w = g.workflow, id = esc(w);
      html += '<tr class="click" data-testid="workflow-row-' + id + '" data-workflow="' + id + '" data-href="' + esc(link({workflow: w})) + '">' +
        '<td class="name">' + wfLink(w) + (g.unpriced_tokens ? ' <span class="flag f-unpriced" title="' + esc(fmtInt(g.unpriced_tokens) + " tokens of models with no price: spend is understated") + '">unpriced</span>' : "") + "</td>" +
        '<td class="n" data-testid="workflow-runs-' + id + '"' + dv(g.runs) + ">" + fmtInt(g.runs) + "</td>" +
        '<td class="n" data-testid="workflow-accepted-' + id + '"' + dv(accepted(g)) + "><b>" + fmtInt(accepted(g)) + "</b></td>" +
        '<td class="n" data-testid="workflow-cost-per-accepted-' + id + '"' + dv(g.cost_per_accepted_usd) + "><b>" + fmtUSD(g.cost_per_accepted_usd) + "</b></td>" +
        '<td class="n" data-testid="workflow-spend-' + id + '"' + dv(g.cost_usd) + ">" + fmtUSD(g.cost_usd) + '<div class="sub">' + (totalCost ? fmtPct(g.cost_micros / totalCost) + " of spend" : "") + "</div></td>" +
        "<td>" + mixBar(g, costs[w], "workflow-mix-" + w) + "</td>" +
        '<td class="n" data-testid="workflow-acceptance-' + id + '"' + dv(g.acceptance_rate) + ">" + fmtPct(g.acceptance_rate) + '<div class="sub">' + fmtInt(decided(g)) + " reviewed</div></td>" +
        '<td class="n" data-testid="workflow-rework-' + id + '"' + dv(g.rework_rate) + ">" + fmtPct(g.rework_rate) + '<div class="sub">' + plural(g.rework_runs, "run") + " · " + fmtUSD(g.rework_cost_usd) + "</div></td>" +
        '<td class="n" data-testid="workflow-latency-' + id + '">' + fmtMs(g.latency_p50_ms) + " / " + fmtMs(g.latency_p95_ms) + "</td>" +
        '<td class="n" data-testid="workflow-retries-' + id + '"' + dv(g.retries) + ">" + fmtInt(g.retries) + '<div class="sub">' + plural(g.errors, "error") + "</div></td></tr>";
    });
    html += "</tbody></table>" + legend();
  }
  if (allRes.ok) {
    var seen = {};
    groups.forEach(function (g) { seen[g.workflow] = true; });
    var idle = (allRes.data.workflows || []).filter(function (w) { return w !== "" && !seen[w]; });
    if (idle.length) html += '<p class="sub" data-testid="workflows-idle">No runs in this range: ' + idle.map(function (w) { return wfLink(w); }).join(", ") + "</p>";
  }
  return html + "</section>";
}
var TOPS = [
  {by: "spend", title: "Highest spend", empty: "no spend in this range",
    value: function (i) { return fmtUSD(i.value); },
    sub: function (i) { return plural(i.runs, "run") + " · acceptance " + fmtPct(i.acceptance_rate); }},
  {by: "retries", title: "Most retries", empty: "no workflow retried a call in this range",
    value: function (i) { return fmtInt(i.value); },
    sub: function (i) { return fmtPct(i.retry_rate) + " of LLM calls · " + plural(i.runs, "run"); }},
  {by: "acceptance", title: "Lowest acceptance", empty: "no workflow has 5 reviewed runs in this range",
    value: function (i) { return fmtPct(i.value); },
    sub: function (i) { return "of " + fmtInt(i.decided) + " reviewed" + (i.previous_acceptance_rate != null ? " · before " + fmtPct(i.previous_acceptance_rate) : ""); }},
  {by: "change", title: "Largest change vs previous " + "window", empty: "no spend in this or the previous window",
    value: function (i) { return fmtSignedUSD(i.change_usd); },
    sub: function (i) { return fmtUSD(i.previous_cost_usd) + " → " + fmtUSD(i.cost_usd); }}
];
function diagnostics(results) {
  var html = '<section class="panel" id="diagnostics" data-testid="diagnostics"><h2>Diagnostics<small>where to look first, ' + esc(st.range) + " against the " + esc(st.range) + " before</small></h2><div class=\"grid4\">";
  TOPS.forEach(function (t, k) {
    var res = results[k];
    html += '<div><h3>' + esc(t.title) + "</h3>";
    if (!res.ok) html += errBox(res, "/api/v1/top?by=" + t.by);
    else if (!res.data.items.length) html += '<p class="empty" data-testid="top-' + t.by + '-empty">' + esc(t.empty) + "</p>";
    else {
      html += '<ol class="toplist" data-testid="top-' + t.by + '">';
      res.data.items.forEach(function (i) {
        var cls = t.by === "change" ? (i.change_usd > 0 ? " up" : i.change_usd < 0 ? " down" : "") : "";
        html += '<li data-testid="top-' + t.by + '-item" data-workflow="' + esc(i.workflow) + '" data-value="' + esc(i.value) + '"><span class="l">' + wfLink(i.workflow) +
          '<div class="sub">' + t.sub(i) + '</div></span><span class="r' + cls + '">' + esc(t.value(i)) + "</span></li>";
      });
      html += "</ol>";
    }
    html += "</div>";
  });
  return html + "</div></section>";
}
function scorecardSection(res) {
  if (!res.ok) return '<section class="panel" id="scorecard">' + errBox(res, "the scorecard") + "</section>";
  var c = res.data;
  if (!c.functions || !c.functions.length) return "";
  var html = '<section class="panel" id="scorecard" data-testid="scorecard"><h2>Scorecard<small>declared outcomes against quarterly targets and budgets · ' +
    esc(fmtStamp(c.from)) + " to now · " + fmtPct(c.quarter_elapsed) + " of the quarter elapsed</small></h2>" +
    '<table><thead><tr><th>Function / workflow</th><th>Owner</th><th class="n">Runs</th><th class="n">Accepted</th><th class="n">Target</th><th class="n">Of target</th><th class="n">Pace</th>' +
    '<th class="n">Spend</th><th class="n">Budget</th><th class="n">Budget used</th><th class="n">Cost / accepted</th><th class="n">Trend 7d</th><th class="n">Share</th></tr></thead><tbody>';
  c.functions.forEach(function (f) {
    html += '<tr data-testid="scorecard-function-' + esc(f.function) + '" style="background:#f8f9fb"><td><b>' + esc(f.function) + '</b></td><td></td><td></td><td class="n"><b>' + fmtInt(f.accepted) +
      '</b></td><td class="n">' + (f.target == null ? "—" : fmtInt(f.target)) + '</td><td></td><td></td><td class="n"><b>' + fmtUSD(f.cost_usd) + '</b></td><td class="n">' +
      fmtUSD(f.budget_usd) + '</td><td></td><td class="n"><b>' + fmtUSD(f.cost_per_accepted_usd) + '</b></td><td></td><td class="n">' + fmtPct(f.share_of_spend) + "</td></tr>";
    f.workflows.forEach(function (l) {
      var tr = l.cost_per_accepted_trend;
      html += '<tr data-testid="scorecard-row-' + esc(l.workflow) + '"><td style="padding-left:22px">' + wfLink(l.workflow) + '<div class="sub">' + esc(l.outcome || "") + "</div></td><td>" + esc(l.owner || "") +
        '</td><td class="n">' + fmtInt(l.runs) + '</td><td class="n" data-testid="scorecard-accepted-' + esc(l.workflow) + '"' + dv(l.accepted) + "><b>" + fmtInt(l.accepted) + '</b></td><td class="n">' +
        (l.target == null ? "—" : fmtInt(l.target)) + '</td><td class="n">' + fmtPct(l.target_attainment) + '</td><td class="n' + (num(l.pace) ? (l.pace < 1 ? " up" : " down") : "") + '">' +
        fmtPct(l.pace) + '</td><td class="n">' + fmtUSD(l.cost_usd) + '</td><td class="n">' + fmtUSD(l.budget_usd) + '</td><td class="n' + (l.budget_used > 1 ? " up" : "") + '">' +
        fmtPct(l.budget_used) + '</td><td class="n">' + fmtUSD(l.cost_per_accepted_usd) + '</td><td class="n' + (num(tr) ? (tr > 0 ? " up" : tr < 0 ? " down" : "") : "") + '">' +
        fmtSignedPct(tr) + '</td><td class="n">' + fmtPct(l.share_of_spend) + "</td></tr>";
    });
  });
  html += "</tbody></table>";
  var u = c.undeclared || {workflows: []}, o = c.one_off || {workflows: []};
  html += '<p data-testid="scorecard-undeclared"' + dv(u.cost_usd) + "><b>No declared outcome:</b> " + fmtUSD(u.cost_usd) + " (" + fmtPct(u.share_of_spend) + " of spend)" +
    (u.workflows.length ? ": " + u.workflows.map(function (l) { return wfLink(l.workflow) + " " + fmtUSD(l.cost_usd); }).join(", ") : "") + "</p>";
  html += '<p class="sub" data-testid="scorecard-one-off"><b>One-off workflows</b> (fewer than ' + fmtInt(o.max_runs) + " runs): " + fmtUSD(o.cost_usd) + " (" + fmtPct(o.share_of_spend) + " of spend)" +
    (o.workflows.length ? ": " + o.workflows.map(function (l) { return wfLink(l.workflow); }).join(", ") : "") + "</p>";
  return html + "</section>";
}
function alertsSection(res, firing) {
  var html = '<section class="panel alerts" id="alerts" data-testid="alerts"><h2>Alerts';
  if (!res.ok) return html + "</h2>" + errBox(res, "alerts") + "</section>";
  var a = res.data;
  html += "<small>" + fmtInt(firing.length) + " firing · " + fmtInt((a.pending || []).length) + " pending · " + plural((a.rules || []).length, "rule") + "</small></h2>";
  if (!(a.rules || []).length) return html + '<p class="empty" data-testid="alerts-none">No alert rules loaded (start the daemon with --alerts FILE).</p></section>';
  if (!firing.length) html += '<p class="empty" data-testid="alerts-none">No alerts firing.</p>';
  else {
    html += "<ul>";
    firing.forEach(function (al) {
      var sev = (al.labels && al.labels.severity) || "warning", ann = al.annotations || {};
      html += '<li data-testid="alert-firing" data-rule="' + esc(al.rule) + '"><span class="badge b-' + esc(sev) + '">' + esc(sev) + "</span> <b>" + esc(al.rule) + "</b> " +
        '<span class="sub">' + esc(al.type || "") + (al.labels && al.labels.workflow ? " · " + wfLink(al.labels.workflow) : "") + " · since " + fmtStamp(al.active_since || al.starts_at) + "</span>" +
        '<div data-testid="alert-summary">' + esc(ann.summary || "") + "</div></li>";
    });
    html += "</ul>";
  }
  var resolved = (a.resolved || []).slice(0, 5);
  if (resolved.length) html += '<h3 style="margin-top:12px">Recently resolved</h3><ul>' + resolved.map(function (al) {
    return '<li class="sub"><b>' + esc(al.rule) + "</b> " + esc((al.annotations || {}).summary || "") + " · resolved " + fmtStamp(al.ends_at) + "</li>";
  }).join("") + "</ul>";
  return html + "</section>";
}

// ---------- one workflow ----------
function loadWorkflow(seq) {
  var r = st.range, w = st.workflow;
  var calls = [
    api(qs("/api/v1/rollups", {since: r, workflow: w})),
    api(qs("/api/v1/series", {since: r, step: STEPS[r], workflow: w})),
    api(qs("/api/v1/routes", {since: r, workflow: w})),
    api(qs("/api/v1/rollups", {since: r, group_by: "agent", workflow: w})),
    api(qs("/api/v1/rollups", {since: r, group_by: "outcome", workflow: w})),
    api("/api/v1/scorecard"),
    api(qs("/api/v1/runs", {since: r, workflow: w, limit: 20}))
  ];
  return Promise.all(calls.map(soft)).then(function (res) {
    if (seq !== st.seq) return;
    var html = '<div class="crumbs"><a href="' + esc(link({})) + '" data-testid="back">← all workflows</a></div>';
    html += '<section data-testid="workflow-detail" data-workflow="' + esc(w) + '"><h2 style="font-size:20px">' + esc(nameOf(w)) + "<small>" + esc(st.range) + "</small></h2>";
    if (res[5].ok) {
      var decl = null, sc = res[5].data;
      (sc.functions || []).forEach(function (f) { f.workflows.forEach(function (l) { if (l.workflow === w) decl = l; }); });
      if (decl) html += '<p class="sentence" data-testid="workflow-outcome">Outcome: “' + esc(decl.outcome) + "” · " + esc(decl.function) + " · owner " + esc(decl.owner) + "</p>";
      else if ((sc.functions || []).length) html += '<p class="sentence sub">No declared outcome in the registry for this workflow.</p>';
    }
    var tot = res[0], none = false;
    if (!tot.ok) html += errBox(tot, "the workflow's totals");
    else {
      var g = tot.data.groups[0];
      none = !g || !g.runs;
      if (none) html += '<p class="empty panel" data-testid="workflow-empty">No runs of ' + esc(nameOf(w)) + " in this range (" + esc(st.range) +
        '). Pick a longer range, or go back to <a href="' + esc(link({})) + '">all workflows</a>.</p>';
      else {
        html += '<div class="cards">' +
          card("Accepted outcomes", fmtInt(accepted(g)), plural(g.runs, "run") + " · " + fmtInt(g.pending) + " pending review", "detail-accepted", {value: accepted(g), cls: "hero"}) +
          card("Cost per accepted outcome", fmtUSD(g.cost_per_accepted_usd), g.cost_per_accepted_usd == null ? "nothing accepted yet" : "all spend ÷ accepted", "detail-cost-per-accepted", {value: g.cost_per_accepted_usd, cls: "hero"}) +
          card("Spend", fmtUSD(g.cost_usd), plural(g.llm_calls, "LLM call") + " · " + plural(g.tool_calls, "tool call"), "detail-spend", {value: g.cost_usd}) +
          card("Acceptance", fmtPct(g.acceptance_rate), "of " + fmtInt(decided(g)) + " reviewed", "detail-acceptance", {value: g.acceptance_rate}) +
          card("Rework", fmtPct(g.rework_rate), plural(g.rework_runs, "run") + " · " + fmtUSD(g.rework_cost_usd), "detail-rework", {value: g.rework_rate}) +
          card("Latency p95", fmtMs(g.latency_p95_ms), "run duration · p50 " + fmtMs(g.latency_p50_ms), "detail-latency", {value: g.latency_p95_ms}) +
          card("Retries", fmtInt(g.retries), plural(g.errors, "error") + (g.unpriced_tokens ? ' · <span class="flag f-unpriced">' + fmtInt(g.unpriced_tokens) + " unpriced tokens</span>" : ""), "detail-retries", {value: g.retries}) +
          "</div>";
      }
    }
    html += "</section>";
    if (none) {
      main.innerHTML = html;
      main.setAttribute("data-view", "workflow");
      return;
    }
    html += seriesCharts(res[1]);
    html += '<div class="grid2">' + outcomesPanel(res[4]) + agentsPanel(res[3]) + "</div>";
    html += routesPanel(res[2]);
    html += runsPanel(res[6]);
    main.innerHTML = html;
    main.setAttribute("data-view", "workflow");
  });
}
// Recent runs of the workflow: click one to open its tree.
function runsPanel(res) {
  var html = '<section class="panel" data-testid="workflow-runs"><h2>Recent runs<small>newest first · click a run to see its tree</small></h2>';
  if (!res.ok) return html + errBox(res, "the runs") + "</section>";
  var runs = res.data.runs || [];
  if (!runs.length) return html + '<p class="empty">No runs in this range.</p></section>';
  html += '<table><thead><tr><th>Started</th><th>Outcome</th><th class="n">Cost</th><th class="n">LLM calls</th><th>Models</th><th class="n">Duration</th><th>Flags</th></tr></thead><tbody>';
  runs.forEach(function (r) {
    html += '<tr data-testid="run-row" data-trace-id="' + esc(r.trace_id) + '" data-href="' + esc(link({trace: r.trace_id})) + '" style="cursor:pointer">' +
      '<td><a href="' + esc(link({trace: r.trace_id})) + '" class="mono">' + fmtStamp(r.start) + "</a></td>" +
      '<td><span class="badge b-' + esc(r.outcome) + '">' + esc(r.outcome) + "</span></td>" +
      '<td class="n"' + dv(r.cost_usd) + ">" + fmtUSD(r.cost_usd) + '</td><td class="n">' + fmtInt(r.llm_calls) + "</td>" +
      '<td class="mono">' + (r.models || []).map(esc).join(", ") + '</td><td class="n">' + fmtMs(r.duration_ms) + "</td><td>" +
      (r.rework ? '<span class="flag f-retry">rework</span>' : "") + (r.retries ? '<span class="flag f-retry">' + plural(r.retries, "retry", "retries") + "</span>" : "") +
      (r.errors ? '<span class="flag f-err">' + plural(r.errors, "error") + "</span>" : "") + "</td></tr>";
  });
  return html + "</tbody></table></section>";
}
function seriesCharts(res) {
  var html = '<section class="panel" data-testid="workflow-series"><h2>Trends<small>per ' + esc(STEPS[st.range]) + " step, UTC</small></h2>";
  if (!res.ok) return html + errBox(res, "the time series") + "</section>";
  var s = res.data.series[0];
  if (!s) return html + '<p class="empty">No runs in this range.</p></section>';
  var times = s.points.map(function (p) { return Date.parse(p.t); });
  var withDate = res.data.step_seconds >= 3600;
  function c(id, title, vals, kind, fmt, color, integer, emptyText) {
    return '<div class="chartbox"><h3>' + esc(title) + "</h3>" + chart({id: id, title: title, values: vals, times: times, kind: kind, fmt: fmt, color: color, integer: integer, withDate: withDate, emptyText: emptyText}) + "</div>";
  }
  html += '<div class="grid2">' +
    c("chart-accepted", "Accepted outcomes per step", s.points.map(accepted), "bar", fmtCount, "#2f9e5b", true) +
    c("chart-cost-per-accepted", "Cost per accepted outcome", s.points.map(function (p) { return p.cost_per_accepted_usd; }), "line", fmtUSD, "#2356c9", false, "nothing accepted in this range") +
    c("chart-spend", "Spend per step", s.points.map(function (p) { return p.cost_usd; }), "bar", fmtUSD, "#7a9ee8", false) +
    c("chart-latency-p95", "Latency p95 (run duration)", s.points.map(function (p) { return p.runs ? p.latency_p95_ms : null; }), "line", fmtMs, "#e58e1a", false) +
    "</div>";
  return html + "</section>";
}
function outcomesPanel(res) {
  var html = '<section class="panel" data-testid="workflow-outcomes"><h2>Outcomes<small>runs and what they cost</small></h2>';
  if (!res.ok) return html + errBox(res, "outcomes") + "</section>";
  var by = {};
  res.data.groups.forEach(function (g) { by[g.outcome] = g; });
  var total = res.data.groups.reduce(function (a, g) { return a + g.cost_micros; }, 0);
  if (!res.data.groups.length) return html + '<p class="empty">No runs in this range.</p></section>';
  html += '<table><thead><tr><th>Outcome</th><th class="n">Runs</th><th class="n">Spend</th><th class="n">Share of spend</th></tr></thead><tbody>';
  OUTCOMES.forEach(function (o) {
    var g = by[o];
    if (!g) return;
    html += '<tr data-testid="outcome-row" data-outcome="' + o + '"><td><span class="badge b-' + o + '">' + o + '</span></td><td class="n">' + fmtInt(g.runs) + '</td><td class="n">' + fmtUSD(g.cost_usd) +
      '</td><td class="n">' + (total ? fmtPct(g.cost_micros / total) : "—") + "</td></tr>";
  });
  var waste = ["rejected", "escalated"].reduce(function (a, o) { return a + (by[o] ? by[o].cost_micros : 0); }, 0);
  html += '</tbody></table><p class="sub">Spent on rejected and escalated runs: <b data-testid="workflow-waste">' + fmtUSD(waste / 1e6) + "</b>" + (total ? " (" + fmtPct(waste / total) + ")" : "") + "</p>";
  return html + "</section>";
}
function agentsPanel(res) {
  var html = '<section class="panel" data-testid="workflow-agents"><h2>Agents<small>who spent it (sub-agents split out)</small></h2>';
  if (!res.ok) return html + errBox(res, "agents") + "</section>";
  if (!res.data.groups.length) return html + '<p class="empty">No runs in this range.</p></section>';
  html += '<table data-testid="agents-table"><thead><tr><th>Agent</th><th class="n">Runs</th><th class="n">LLM calls</th><th class="n">Tokens in / out</th><th class="n">Spend</th><th class="n">Cost / accepted</th></tr></thead><tbody>';
  res.data.groups.forEach(function (g) {
    html += '<tr data-testid="agent-row" data-agent="' + esc(g.agent) + '"><td class="name">' + (g.agent ? esc(g.agent) : '<span class="sub">(calls outside any agent span)</span>') + '</td><td class="n">' + fmtInt(g.runs) +
      '</td><td class="n">' + fmtInt(g.llm_calls) + '</td><td class="n">' + fmtInt(g.input_tokens) + " / " + fmtInt(g.output_tokens) + '</td><td class="n"' + dv(g.cost_usd) + ">" + fmtUSD(g.cost_usd) +
      '</td><td class="n">' + fmtUSD(g.cost_per_accepted_usd) + "</td></tr>";
  });
  return html + "</tbody></table></section>";
}
function routesPanel(res) {
  var html = '<section class="panel" data-testid="workflow-routes"><h2>Model routes<small>acceptance with its 95% interval and cost per accepted outcome, per model</small></h2>';
  if (!res.ok) return html + errBox(res, "routes") + "</section>";
  var d = res.data;
  if (!d.routes.length) return html + '<p class="empty" data-testid="routes-empty">No model calls in this range.</p></section>';
  html += '<table data-testid="routes-table"><thead><tr><th>Model</th><th class="n">Runs</th><th class="n">Reviewed</th><th class="n">Acceptance</th><th class="n">Spend</th><th class="n">Cost / run</th><th class="n">Cost / accepted</th></tr></thead><tbody>';
  d.routes.forEach(function (r) {
    html += '<tr data-testid="route-row" data-model="' + esc(r.model) + '"' + (r.incumbent ? ' data-incumbent="true"' : "") + '><td class="name mono">' + esc(r.model || "(no model)") +
      (r.incumbent ? ' <span class="badge b-info" title="the model with the most runs">incumbent</span>' : "") + '</td><td class="n">' + fmtInt(r.runs) + '</td><td class="n">' + fmtInt(r.decided) +
      '</td><td class="n">' + fmtPct(r.acceptance_rate) + ciBar(r) + '</td><td class="n"' + dv(r.cost_usd) + ">" + fmtUSD(r.cost_usd) + '</td><td class="n">' + fmtUSD(r.cost_per_run_usd) +
      '</td><td class="n"><b>' + fmtUSD(r.cost_per_accepted_usd) + "</b></td></tr>";
  });
  html += "</tbody></table>";
  if (d.recommendations.length) {
    html += '<h3 style="margin-top:14px">Cheaper models</h3><ul class="alerts">';
    d.recommendations.forEach(function (m) {
      var b = m.verdict === "switch" ? "b-accepted" : m.verdict === "worse" ? "b-rejected" : "b-pending";
      html += '<li data-testid="route-recommendation" data-candidate="' + esc(m.candidate) + '" title="' + esc(m.test) + '"><span class="badge ' + b + '">' + esc(m.verdict.replace(/_/g, " ")) + "</span> " +
        '<span class="mono">' + esc(m.candidate) + "</span> instead of <span class=\"mono\">" + esc(m.incumbent) + "</span>: acceptance " + fmtPct(m.candidate_acceptance) + " vs " + fmtPct(m.incumbent_acceptance) +
        (m.p_value != null ? " (p = " + m.p_value.toFixed(4) + ")" : "") + (m.verdict === "switch" ? " · would have saved <b>" + fmtUSD(m.savings_usd) + "</b>" : "") + "</li>";
    });
    html += "</ul>";
  } else html += '<p class="sub">No cheaper model to compare with the incumbent.</p>';
  return html + '<p class="sub">Window ' + fmtStamp(d.from) + " – " + fmtStamp(d.to) + " · candidates need " + fmtInt(d.settings.min_decided_runs) + " reviewed runs · confidence " + fmtPct(d.settings.confidence) + "</p></section>";
}

// ---------- one run ----------
function loadTrace(seq) {
  var id = st.trace;
  return soft(api("/api/v1/traces/" + encodeURIComponent(id))).then(function (res) {
    if (seq !== st.seq) return;
    var html = '<div class="crumbs"><a href="' + esc(link({})) + '" data-testid="back">← all workflows</a></div>';
    if (!res.ok) {
      main.innerHTML = html + '<section class="panel" data-testid="trace-view"><h2>Run <span class="mono">' + esc(id) + '</span></h2><p class="err" data-testid="trace-error">' +
        esc(res.error.status === 404 ? "No run with this trace ID: it may still be waiting in trace assembly, or it is not in this ledger. (" + res.error.message + ")" : res.error.message) + "</p></section>";
      main.setAttribute("data-view", "trace");
      return;
    }
    var t = res.data, v = t.verdict || {};
    html += '<section class="panel" data-testid="trace-view" data-trace-id="' + esc(t.trace_id) + '"><h2>Run <span class="mono">' + esc(t.trace_id) + "</span><small>" + fmtStamp(t.start) + "</small></h2>";
    html += '<div class="cards">' +
      card("Cost", fmtUSD(t.cost_usd), plural(t.llm_calls, "LLM call") + " · " + plural(t.tool_calls, "tool call") + (t.unpriced_tokens ? " · unpriced calls not included" : ""), "trace-cost", {value: t.cost_usd}) +
      card("Outcome", t.outcome, "verdict from " + esc(v.source || "none") + (v.reviewer ? " · " + esc(v.reviewer) : "") + (v.reviewer_kind ? " (" + esc(v.reviewer_kind) + ")" : "") +
        (v.corrections ? " · " + plural(v.corrections, "correction") : ""), "trace-outcome", {value: t.outcome}) +
      card("Tokens in / out", fmtInt(t.input_tokens) + " / " + fmtInt(t.output_tokens), t.unpriced_tokens ? '<span class="flag f-unpriced">' + fmtInt(t.unpriced_tokens) + " unpriced</span>" : "all priced", "trace-tokens") +
      card("Duration", fmtMs(t.duration_ms), plural(t.retries, "retry", "retries") + " · " + plural(t.errors, "error"), "trace-duration", {value: t.duration_ms}) +
      "</div>";
    html += '<dl class="kv" data-testid="trace-facts"><dt>Workflow</dt><dd data-testid="trace-workflow">' + wfLink(t.workflow) + "</dd><dt>Service</dt><dd>" + esc(t.service) + "</dd>" +
      "<dt>Agents</dt><dd>" + (t.agents && t.agents.length ? t.agents.map(esc).join(", ") : "—") + "</dd>" +
      "<dt>Verdict</dt><dd>" + '<span class="badge b-' + esc(t.outcome) + '">' + esc(t.outcome) + "</span> " + esc(v.source || "") + (v.time ? " · " + fmtStamp(v.time) : "") + (v.reviewer ? " · " + esc(v.reviewer) : "") + "</dd>" +
      (t.task_id ? "<dt>Task</dt><dd class=\"mono\">" + esc(t.task_id) + "</dd>" : "") +
      '<dt>Rework</dt><dd data-testid="trace-rework">' + (t.rework ? '<span class="flag f-retry">rework</span> ran again after a rejected or edited run of its task' : "no") + "</dd>" +
      (t.incomplete ? '<dt>Incomplete</dt><dd><span class="flag f-err">incomplete</span> released without its root or at a limit</dd>' : "") + "</dl>";
    html += "</section>" + traceTree(t);
    main.innerHTML = html;
    main.setAttribute("data-view", "trace");
  });
}
function traceTree(t) {
  var spans = t.spans || [], byId = {}, kids = {}, roots = [];
  spans.forEach(function (s) { byId[s.span_id] = s; });
  spans.forEach(function (s) {
    if (s.parent_span_id && byId[s.parent_span_id] && s.parent_span_id !== s.span_id) (kids[s.parent_span_id] = kids[s.parent_span_id] || []).push(s);
    else roots.push(s);
  });
  var end = t.duration_ms || 0;
  spans.forEach(function (s) { end = Math.max(end, (s.start_offset_ms || 0) + (s.duration_ms || 0)); });
  var rows = "", seen = {};
  function walk(s, depth) {
    if (seen[s.span_id]) return;
    seen[s.span_id] = true;
    var tokens = s.kind === "llm" || s.input_tokens || s.output_tokens;
    var flags = (s.error ? '<span class="flag f-err">error</span>' : "") + (s.retry ? '<span class="flag f-retry">retry</span>' : "") +
      (s.kind === "llm" && !s.priced ? '<span class="flag f-unpriced">unpriced</span>' : "") + (s.explicit_cost ? '<span class="flag f-explicit" title="cost reported on the span">explicit cost</span>' : "");
    var left = end ? (s.start_offset_ms || 0) / end * 100 : 0, width = end ? (s.duration_ms || 0) / end * 100 : 0;
    rows += '<tr data-testid="span-row" data-span-id="' + esc(s.span_id) + '" data-kind="' + esc(s.kind) + '" data-depth="' + depth + '"' + (s.kind === "llm" ? ' data-cost-micros="' + esc(s.cost_micros) + '"' : "") +
      (s.retry ? ' data-retry="true"' : "") + (s.error ? ' data-error="true"' : "") + '><td class="nm" style="padding-left:' + (8 + depth * 18) + 'px" title="' + esc(s.name) + '">' + (depth ? '<span class="sub">└ </span>' : "") + esc(s.name) +
      '</td><td><span class="badge b-' + esc(s.kind) + '">' + esc(s.kind) + "</span></td>" +
      '<td class="mono" data-testid="span-model">' + esc(s.model) + (s.agent ? '<div class="sub">' + esc(s.agent) + "</div>" : "") + "</td>" +
      '<td class="n">' + (tokens ? fmtInt(s.input_tokens) + (s.cached_input_tokens ? '<div class="sub">' + fmtInt(s.cached_input_tokens) + " cached</div>" : "") : "") + "</td>" +
      '<td class="n">' + (tokens ? fmtInt(s.output_tokens) + (s.reasoning_tokens ? '<div class="sub">' + fmtInt(s.reasoning_tokens) + " reasoning</div>" : "") : "") + "</td>" +
      '<td class="n">' + (s.kind === "llm" ? (s.priced || s.explicit_cost || s.cost_micros ? "<b>" + fmtUSD(s.cost_micros / 1e6) + "</b>" : '<span class="sub">no price</span>') : "") + "</td><td>" + flags + "</td>" +
      '<td class="tw"><div class="wf" title="' + esc("+" + fmtMs(s.start_offset_ms) + ", " + fmtMs(s.duration_ms)) + '"><span class="k-' + esc(s.kind) + (s.error ? " e" : "") + '" style="left:' + left.toFixed(2) + "%;width:" +
      width.toFixed(2) + '%"></span></div></td></tr>';
    (kids[s.span_id] || []).sort(function (a, b) { return a.start_offset_ms - b.start_offset_ms; }).forEach(function (c) { walk(c, depth + 1); });
  }
  roots.sort(function (a, b) { return a.start_offset_ms - b.start_offset_ms; }).forEach(function (s) { walk(s, 0); });
  spans.forEach(function (s) { walk(s, 0); });
  return '<section class="panel"><h2>Run tree<small>' + fmtInt(spans.length) + " spans · bars on the run's timeline (" + fmtMs(end) + ")</small></h2>" +
    '<table class="tree" data-testid="trace-tree" data-spans="' + spans.length + '"><thead><tr><th>Span</th><th>Kind</th><th>Model / agent</th><th class="n">Input</th><th class="n">Output</th><th class="n">Cost</th><th>Flags</th><th>Timeline</th></tr></thead><tbody>' +
    rows + '</tbody><tfoot><tr><td colspan="5" class="n"><b>Total</b></td><td class="n" data-testid="trace-tree-total"' + dv(t.cost_usd) + "><b>" + fmtUSD(t.cost_usd) + "</b></td><td colspan=\"2\"></td></tr></tfoot></table></section>";
}

// ---------- loop ----------
// Loads the view the hash names; `auto` (the 30 s refresh) keeps the page marked ready.
function load(auto) {
  var seq = ++st.seq;
  readHash();
  renderChrome();
  if (!auto) document.documentElement.setAttribute("data-ready", "0");
  var p = st.trace ? loadTrace(seq) : st.workflow != null ? loadWorkflow(seq) : loadOverview(seq);
  return p.catch(function (e) {
    if (seq === st.seq) main.innerHTML = '<div class="err" data-testid="error">The page failed: ' + esc(e && e.message) + "</div>";
  }).then(function () {
    if (seq !== st.seq) return;
    setRefreshed();
    document.documentElement.setAttribute("data-ready", "1");
    document.documentElement.setAttribute("data-range", st.range);
  });
}
window.addEventListener("hashchange", function () { window.scrollTo(0, 0); load(); });
document.getElementById("refreshnow").addEventListener("click", function () { load(true); });
document.getElementById("traceform").addEventListener("submit", function (ev) {
  ev.preventDefault();
  var id = document.getElementById("traceid").value.trim().toLowerCase().replace(/[^0-9a-f]/g, "");
  var errEl = document.getElementById("searcherr");
  if (!/^[0-9a-f]{32}$/.test(id)) { errEl.textContent = "a trace ID is 32 hex digits"; errEl.hidden = false; return; }
  errEl.hidden = true;
  location.hash = link({trace: id}).slice(1);
});
main.addEventListener("click", function (ev) {
  var tr = ev.target.closest && ev.target.closest("tr[data-href]");
  if (tr && !ev.target.closest("a")) location.hash = tr.getAttribute("data-href").slice(1);
});
setInterval(function () { if (!document.hidden) load(true); }, REFRESH_MS);
load();
})();
</script>
</body>
</html>
"""#
}
