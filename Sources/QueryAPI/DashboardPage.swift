/// The dashboard served at `GET /` (being written; replaced by the full page).
public enum DashboardPage {
    public static let html: String = #"""
<!doctype html><html><head><meta charset="utf-8"><title>SpanLedger</title></head><body><h1>SpanLedger</h1><p>Dashboard loading…</p></body></html>
"""#
}
