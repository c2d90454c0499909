#!/usr/bin/python3
"""Turns a scenario report (`hvsim scenario run … --report R.json`) into a self-contained HTML page:
the table of backups (time, VM, point, full/incremental + reason, bytes changed/read/stored,
restore verified ✓/✗), totals with dedup and compression ratios, and an inline SVG chart of bytes
changed vs bytes stored per day. No JavaScript, no external resources.

usage: ci/report_html.py REPORT.json OUT.html
"""
import html
import json
import sys


def mib(n):
    return f"{n / 1048576:.1f} MiB"


def day_of(at):
    # "2d03h00m" → "2d"; "3h" → "0d"
    return at.split("d")[0] + "d" if "d" in at else "0d"


def chart(days):
    """Grouped bars: bytes changed (left) and bytes stored (right) per day, scaled to the max."""
    w, h, pad, left = 720, 260, 30, 70
    top = max([max(c, s) for _, c, s in days] + [1])
    n = max(len(days), 1)
    slot = (w - left - pad) / n
    bw = max(slot * 0.35, 2)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 40}" role="img" '
           f'aria-label="bytes changed and bytes stored per day">',
           f'<line x1="{left}" y1="{h}" x2="{w - pad}" y2="{h}" stroke="#333"/>',
           f'<line x1="{left}" y1="{pad}" x2="{left}" y2="{h}" stroke="#333"/>']
    for k in range(5):
        v = top * k / 4
        y = h - (h - pad) * k / 4
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v / 1048576:.0f} MiB</text>')
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - pad}" y2="{y:.1f}" stroke="#ddd"/>')
    for i, (d, changed, stored) in enumerate(days):
        x = left + i * slot + slot * 0.12
        for j, (v, color) in enumerate(((changed, "#4a7bd0"), (stored, "#e08a2c"))):
            bh = (h - pad) * v / top
            out.append(f'<rect class="bar" x="{x + j * bw:.1f}" y="{h - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
                       f'fill="{color}"><title>{html.escape(d)}: {mib(v)}</title></rect>')
        out.append(f'<text x="{x + bw:.1f}" y="{h + 14}" font-size="11" text-anchor="middle">{html.escape(d)}</text>')
    out.append(f'<rect x="{left}" y="{h + 24}" width="12" height="10" fill="#4a7bd0"/>'
               f'<text x="{left + 16}" y="{h + 33}" font-size="12">bytes changed</text>'
               f'<rect x="{left + 130}" y="{h + 24}" width="12" height="10" fill="#e08a2c"/>'
               f'<text x="{left + 146}" y="{h + 33}" font-size="12">bytes stored</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: ci/report_html.py REPORT.json OUT.html")
    with open(sys.argv[1]) as f:
        r = json.load(f)
    backups = r.get("backups", [])
    rows, per_day = [], {}
    for b in backups:
        ok = b.get("verified")
        mark = "✓" if ok else ("✗" if ok is False else "–")
        typ = b.get("type") or b.get("result")
        rows.append("<tr class=\"%s\"><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=n>%s</td>"
                    "<td class=n>%s</td><td class=n>%s</td><td class=v>%s</td></tr>" % (
                        "bad" if ok is False or b.get("result") != "ok" else "",
                        html.escape(str(b.get("at", ""))), html.escape(str(b.get("vm", ""))),
                        html.escape(str(b.get("point") if b.get("point") is not None else "")),
                        html.escape(str(typ or "")), html.escape(str(b.get("reason") or b.get("message") or "")),
                        mib(b.get("bytes_changed", 0)), mib(b.get("bytes_read", 0)), mib(b.get("bytes_stored", 0)),
                        mark))
        d = day_of(str(b.get("at", "0d")))
        c, s = per_day.get(d, (0, 0))
        per_day[d] = (c + b.get("bytes_changed", 0), s + b.get("bytes_stored", 0))
    days = [(d, c, s) for d, (c, s) in sorted(per_day.items(), key=lambda kv: int(kv[0][:-1] or 0))]
    t = r.get("totals", {})
    read, stored = t.get("bytes_read", 0), t.get("bytes_stored", 0)
    changed = t.get("bytes_changed", 0)
    ratio = lambda a, b: f"{a / b:.2f}×" if b else "–"
    exp = "".join("<li class=\"%s\">%s %s — %s</li>" % ("ok" if e.get("pass") else "bad", "✓" if e.get("pass") else "✗",
                                                         html.escape(e.get("expectation", "")),
                                                         html.escape(e.get("evidence", "")))
                  for e in r.get("expectations", []))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hvsim — {html.escape(r.get('scenario', ''))}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; }}
th {{ background: #f0f0f0; }} td.n {{ text-align: right; white-space: nowrap; }} td.v {{ text-align: center; }}
tr.bad td {{ background: #fbe3e3; }} li.bad {{ color: #b00; }} li.ok {{ color: #060; }}
</style></head><body>
<h1>{html.escape(r.get('scenario', ''))} (seed {r.get('seed', '')})</h1>
<p id="verdict">{'All expectations hold.' if r.get('passed') else 'Some expectations failed.'}</p>
<h2>Backups</h2>
<table id="backups"><tr><th>time</th><th>VM</th><th>point</th><th>type</th><th>reason</th><th>changed</th>
<th>read</th><th>stored</th><th>verified</th></tr>
{''.join(rows)}
</table>
<h2>Totals</h2>
<p id="totals">{len(backups)} backups; {mib(changed)} changed, {mib(read)} read, {mib(stored)} stored;
dedup + compression ratio (read / stored) {ratio(read, stored)}; changed / stored {ratio(changed, stored)}.</p>
<h2>Bytes changed vs bytes stored per day</h2>
{chart(days)}
<h2>Expectations</h2><ul id="expectations">{exp}</ul>
</body></html>
"""
    with open(sys.argv[2], "w") as f:
        f.write(page)


if __name__ == "__main__":
    main()
