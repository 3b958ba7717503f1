"""HTML pieces of the report (kdgat.results.report): escaping, cells, tables, small inline SVG line
charts, and the one stylesheet and script every page carries inline.

Nothing is fetched: no CDN, no font, no web request; the pages open from the file system. The
script sorts a table by a clicked column header (numbers by value, text alphabetically, blanks
last) and filters its rows by the words typed in the box above it.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:1.2em 2em;color:#111}
h1{font-size:1.35em;margin:.2em 0}h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #ccc}
h3{font-size:1em;margin:1em 0 .3em}
table{border-collapse:collapse;font-size:12.5px;margin:.3em 0 .8em}
th,td{border:1px solid #d4d4d4;padding:2px 6px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;position:sticky;top:0}td.t,th.t{text-align:left}
table.sortable th{cursor:pointer}table.sortable th.asc:after{content:" \\25B2"}
table.sortable th.desc:after{content:" \\25BC"}
tr.problem td{color:#777;background:#fafafa}td.flag{color:#a00;font-weight:600}
.note{color:#444;font-size:12.5px}.warn{color:#a00}
input.filter{width:28em;padding:3px 6px;margin:.3em 0}
figure{display:inline-block;margin:.4em 1em .8em 0;vertical-align:top}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:12px;color:#444}
pre{background:#f7f7f7;border:1px solid #ddd;padding:.5em;font-size:12px;overflow:auto}
nav a{margin-right:1em}svg text{font:10px sans-serif}
"""

SCRIPT = r"""
(function(){
function key(td){var v=td.getAttribute('data-v');if(v!==null&&v!=='')return parseFloat(v);
 var t=td.textContent.trim();if(t==='')return null;var n=Number(t);return isNaN(n)?t.toLowerCase():n;}
function sortBy(table,col,th){
 var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
 var desc=th.classList.contains('asc');
 Array.prototype.forEach.call(th.parentNode.cells,function(c){c.classList.remove('asc','desc');});
 th.classList.add(desc?'desc':'asc');
 var keyed=rows.map(function(r,i){return [key(r.cells[col]),i,r];});
 keyed.sort(function(a,b){var x=a[0],y=b[0];
  if(x===null&&y===null)return a[1]-b[1];if(x===null)return 1;if(y===null)return -1;
  var nx=typeof x==='number',ny=typeof y==='number';
  var c=(nx&&ny)?x-y:(nx?-1:(ny?1:(x<y?-1:(x>y?1:0))));
  return (desc?-c:c)||a[1]-b[1];});
 var frag=document.createDocumentFragment();keyed.forEach(function(k){frag.appendChild(k[2]);});
 body.appendChild(frag);}
function filter(input){
 var table=document.getElementById(input.getAttribute('data-table'));
 var words=input.value.toLowerCase().split(/\s+/).filter(Boolean),shown=0,rows=table.tBodies[0].rows;
 var only=document.querySelectorAll('input[data-only="'+table.id+'"]:checked');
 for(var i=0;i<rows.length;i++){var r=rows[i],text=r.textContent.toLowerCase(),ok=true;
  for(var w=0;w<words.length&&ok;w++)ok=text.indexOf(words[w])>=0;
  for(var o=0;o<only.length&&ok;o++)ok=r.classList.contains(only[o].value);
  r.style.display=ok?'':'none';if(ok)shown++;}
 var count=document.getElementById(table.id+'-count');if(count)count.textContent=shown+' of '+rows.length;}
document.querySelectorAll('table.sortable').forEach(function(table){
 var head=table.tHead.rows[0];Array.prototype.forEach.call(head.cells,function(th,i){
  th.addEventListener('click',function(){sortBy(table,i,th);});});});
document.querySelectorAll('input.filter').forEach(function(input){
 input.addEventListener('input',function(){filter(input);});});
document.querySelectorAll('input[data-only]').forEach(function(box){
 box.addEventListener('change',function(){
  filter(document.querySelector('input.filter[data-table="'+box.getAttribute('data-only')+'"]'));});});
document.documentElement.setAttribute('data-script','ran');
})();
"""

esc = html.escape


def page(title: str, body: str, nav: str = "", script: bool = True) -> str:
    """A whole HTML document with the inline stylesheet and (script=True) the inline script."""
    code = f"<script>{SCRIPT}</script>" if script else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>'
        f"<body>{nav}{body}{code}</body></html>\n"
    )


def number(value: Any, digits: int = 4) -> str | None:
    """A finite number as text (integers whole, floats with digits decimals); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    if math.isnan(x) or math.isinf(x):
        return None
    if x.is_integer() and abs(x) >= 1000:
        return str(int(x))
    return f"{x:.{digits}f}"


def cell(value: Any, digits: int = 4, cls: str = "", sortable: bool = True) -> str:
    """A <td>: numbers right-aligned (with their value for sorting, in a sortable table), text
    left-aligned and escaped."""
    shown = number(value, digits)
    if shown is not None:
        attr = f' class="{cls}"' if cls else ""
        if not sortable:
            return f"<td{attr}>{shown}</td>"
        return f'<td{attr} data-v="{float(value)!r}">{shown}</td>'
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return f'<td class="{" ".join(("t", cls)).strip()}">{esc(text)}</td>'


def float_cells(values: Sequence[float], digits: int = 4, counts: int = 0, sortable: bool = False) -> str:
    """<td>s of Python floats, as cell() shows them (blank for NaN; the first `counts` and whole
    values from 1000 up as integers): the fast path for the report's metric tables."""
    fixed = f"%.{digits}f"
    out = []
    for j, x in enumerate(values):
        if x - x != 0.0:  # NaN or infinite
            out.append("<td></td>")
            continue
        text = str(int(x)) if j < counts or ((x >= 1000 or x <= -1000) and x.is_integer()) else fixed % x
        out.append(f'<td data-v="{x!r}">{text}</td>' if sortable else f"<td>{text}</td>")
    return "".join(out)


def table(
    headers: Sequence[str],
    rows: Iterable[str],
    table_id: str = "",
    sortable: bool = True,
    text_columns: Sequence[int] = (),
) -> str:
    """A table from header names and rows already rendered as '<tr>...</tr>'."""
    ths = _header_cells(tuple(headers), tuple(text_columns))
    ident = f' id="{esc(table_id)}"' if table_id else ""
    cls = ' class="sortable"' if sortable else ""
    return f"<table{ident}{cls}><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


@functools.lru_cache(maxsize=64)
def _header_cells(headers: tuple[str, ...], text_columns: tuple[int, ...]) -> str:
    """<th>s of a header row (cached: every run page repeats the same few tables' headers)."""
    return "".join(
        f'<th class="t">{esc(h)}</th>' if i in text_columns else f"<th>{esc(h)}</th>"
        for i, h in enumerate(headers)
    )


def filter_box(table_id: str, total: int, flags: Sequence[tuple[str, str]] = ()) -> str:
    """The filter input of a table, its row count, and checkboxes keeping rows with a class."""
    boxes = "".join(
        f' <label><input type="checkbox" data-only="{table_id}" value="{esc(value)}"> {esc(label)}</label>'
        for value, label in flags
    )
    return (
        f'<div><input class="filter" data-table="{table_id}" type="search" '
        f'placeholder="filter: words that a row must contain, e.g. set04 tiny standard">{boxes} '
        f'<span class="note"><span id="{table_id}-count">{total} of {total}</span> shown; click a '
        f"column header to sort</span></div>"
    )


def line_chart(
    series: Sequence[tuple[str, Any, Any, str]],
    title: str,
    x_label: str,
    y_range: tuple[float, float] | None = None,
    width: int = 330,
    height: int = 200,
) -> str:
    """An inline SVG line chart: (name, xs, ys, dash pattern) per series (xs and ys: sequences or
    arrays of numbers), black and grey lines told
    apart by their dashes (readable in greyscale), with axes, end labels of the range and a legend."""
    drawn = [(n, list(map(float, xs)), list(map(float, ys)), d) for n, xs, ys, d in series if len(xs)]
    drawn = [(n, xs, ys, d) for n, xs, ys, d in drawn if all(map(math.isfinite, ys))]
    if not drawn:
        return ""
    left, right, top, bottom = 42, 8, 18, 30
    xs_all = [x for _, xs, _, _ in drawn for x in xs]
    ys_all = [y for _, _, ys, _ in drawn for y in ys]
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = y_range or (min(ys_all), max(ys_all))
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(title)}"><text x="{left}" y="12">{esc(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
        f'fill="none" stroke="#999"/>',
        f'<text x="{left - 4}" y="{py(y0):.1f}" text-anchor="end">{y0:.3g}</text>',
        f'<text x="{left - 4}" y="{py(y1) + 8:.1f}" text-anchor="end">{y1:.3g}</text>',
        f'<text x="{left}" y="{height - bottom + 12}">{x0:.3g}</text>',
        f'<text x="{width - right}" y="{height - bottom + 12}" text-anchor="end">{x1:.3g}</text>',
        f'<text x="{(left + width) / 2:.0f}" y="{height - 4}" text-anchor="middle">{esc(x_label)}</text>',
    ]
    dx, dy = x1 - x0, y1 - y0
    x_span, y_span = width - left - right, height - top - bottom
    for i, (name, xs, ys, dash) in enumerate(drawn):
        colour = "#000" if i % 2 == 0 else "#777"
        # px and py of each point (the same arithmetic, so the same figures), in two list passes
        x_px = [left + (x - x0) / dx * x_span for x in xs]
        points = _points(x_px, [height - bottom - (y - y0) / dy * y_span for y in ys])
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}" '
            f'points="{points}"/>'
        )
        ly = top + 12 + 12 * i
        parts.append(
            f'<line x1="{width - right - 70}" y1="{ly - 3}" x2="{width - right - 50}" y2="{ly - 3}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>'
            f'<text x="{width - right - 46}" y="{ly}">{esc(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _points(xs: list[float], ys: list[float]) -> str:
    """An SVG polyline's "x,y x,y ..." with one decimal, formatted in one pass (a run page has a
    few hundred points; a report of 10,000 runs a few million)."""
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} x values but {len(ys)} y values")
    flat: list[float] = [0.0] * (2 * len(xs))
    flat[0::2], flat[1::2] = xs, ys
    return " ".join(["%.1f,%.1f"] * len(xs)) % tuple(flat)
