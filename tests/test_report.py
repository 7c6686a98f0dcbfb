#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""keyline-report on recorded keyline-burst runs (tests/data, see README there): the HTML report
parses (html.parser, and as XML), every plot is an <svg> with its id and real data, the summary
numbers in the HTML and the Markdown are the run's, the CDF drawn from the histogram is monotone
and ends at 1 at the exact maximum, the comparison ratios are right (of medians; per-run figures
show as median, min - max and n, in the table, compare.json and the bar plot) and missing fields are
tolerated; bad input gives exit 2 and one line on stderr, never a traceback.

usage: test_report.py KEYLINE_REPORT DATA_DIR
"""
import html.parser
import json
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

REPORT, DATA = sys.argv[1], sys.argv[2]
ck = kl_itest.Checks('report')
tmp = tempfile.mkdtemp(prefix='kl-report-')
PLOTS = ('plot-answered', 'plot-latency', 'plot-cdf', 'plot-retries')


def run(args, stdin=None):
    return subprocess.run([sys.executable, REPORT] + list(args), capture_output=True, text=True,
                          input=stdin, timeout=60)


def fixture(name):
    path = os.path.join(DATA, name)
    with open(path) as f:
        objs = [json.loads(line) for line in f if line.strip()]
    return path, [o for o in objs if o.get('type') == 'interval'], objs[-1]


class Page(html.parser.HTMLParser):
    """What the checks need: svgs by id (polylines, texts), data-key cells, tables by class."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.svgs, self.cells, self.tables = {}, {}, {}
        self.svg = self.text = self.cell = self.table = self.row = None
        self.tags = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == 'svg':
            self.svg = {'polylines': [], 'texts': [], 'circles': [], 'lines': []}
            self.svgs[a.get('id')] = self.svg
        elif self.svg is not None and tag == 'polyline':
            pts = [tuple(float(v) for v in p.split(',')) for p in a.get('points', '').split()]
            self.svg['polylines'].append((a, pts))
        elif self.svg is not None and tag == 'circle':
            self.svg['circles'].append(a)
        elif self.svg is not None and tag == 'line':
            self.svg['lines'].append(a)
        elif self.svg is not None and tag == 'rect':
            self.svg.setdefault('rects', []).append(a)
        elif self.svg is not None and tag == 'text':
            self.text = [a, '']
        elif tag == 'table':
            self.table = self.tables.setdefault(a.get('class'), [])
        elif tag == 'tr' and self.table is not None:
            self.row = []
            self.table.append(self.row)
        elif tag in ('td', 'th') and self.row is not None:
            self.cell = [a, '']

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag == 'svg':
            self.svg = None
        elif tag == 'text' and self.text is not None:
            self.svg['texts'].append(tuple(self.text))
            self.text = None
        elif tag in ('td', 'th') and self.cell is not None:
            self.row.append(tuple(self.cell))
            if 'data-key' in self.cell[0]:
                self.cells.setdefault(self.cell[0]['data-key'], []).append(tuple(self.cell))
            self.cell = None
        elif tag == 'table':
            self.table = None

    def handle_data(self, data):
        if self.text is not None:
            self.text[1] += data
        if self.cell is not None:
            self.cell[1] += data


def parse_si(t):
    """Tick label back to a number: '20k', '1.5M', '0.25', '100 µs', '1 ms', '10 s'."""
    t = t.strip()
    for suf, mul in ((' µs', 1), (' ms', 1e3), (' s', 1e6), ('k', 1e3), ('M', 1e6)):
        if t.endswith(suf):
            return float(t[:-len(suf)]) * mul
    return float(t)


def y_ticks(svg):
    """(value, pixel y) of the y tick labels (text-anchor end; drawn 4 px below the tick)."""
    return [(parse_si(t), float(a['y']) - 4) for a, t in svg['texts']
            if a.get('class') == 'tl' and a.get('text-anchor') == 'end']


def x_ticks(svg):
    return [(parse_si(t), float(a['x'])) for a, t in svg['texts']
            if a.get('class') == 'tl' and a.get('text-anchor') == 'middle']


def lin_inverse(ticks):
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    return lambda p: v0 + (p - p0) * (v1 - v0) / (p1 - p0)


def log_forward(ticks):
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    return lambda v: p0 + (math.log10(v) - math.log10(v0)) * (p1 - p0) / (math.log10(v1) -
                                                                          math.log10(v0))


def series(svg, cls):
    return [pts for a, pts in svg['polylines'] if a.get('class') == cls]


def md_rows(md):
    rows = {}
    for line in md.splitlines():
        if line.startswith('| ') and not line.startswith('|---'):
            cells = [c.strip() for c in line.strip('|').split(' | ')]
            rows.setdefault(cells[0], cells[1:])
    return rows


def close(text, value, digits):
    """A number shown with `digits` decimals is the value rounded."""
    try:
        return abs(float(text) - value) <= 0.5 * 10 ** -digits + 1e-9 * abs(value)
    except ValueError:
        return False


# (data-key, Markdown label, decimals shown) of the numbers the summary table must carry
SUMMARY_KEYS = (
    ('ues', 'UEs', 0), ('ok', 'UEs ok (key verified)', 0), ('failed', 'UEs failed', 0),
    ('complete_s', 'completion time (s)', 6), ('requests_per_s', 'requests/s (sent)', 1),
    ('answered_per_s', 'answered/s', 1), ('verified_per_s', 'verified/s', 1),
    ('latency_us.p50', 'latency p50 (µs)', 3), ('latency_us.p90', 'latency p90 (µs)', 3),
    ('latency_us.p99', 'latency p99 (µs)', 3), ('latency_us.p99.9', 'latency p99.9 (µs)', 3),
    ('latency_us.max', 'latency max (µs)', 3),
    ('counters.retransmissions', 'retransmissions', 0), ('counters.timeouts', 'timeouts', 0),
    ('counters.sent', 'sent', 0),
)


def lookup(s, key):
    head, _, rest = key.partition('.')
    return s[head][rest] if rest else s[head]


def expected_rates(intervals, key):
    """answered/s etc. per interval; a partial interval under half the usual length counts with
    the one before (what the report documents)."""
    spans, prev = [], 0.0
    for o in intervals:
        if o['t'] > prev:
            spans.append([o['t'] - prev, o[key]])
        prev = o['t']
    usual = sorted(d for d, _ in spans)[len(spans) // 2]
    merged = [spans[0]]
    for d, c in spans[1:]:
        if d < usual / 2:
            merged[-1] = [merged[-1][0] + d, merged[-1][1] + c]
        else:
            merged.append([d, c])
    return [c / d for d, c in merged]


def check_report(name, with_compare):
    path, intervals, s = fixture(name)
    out = os.path.join(tmp, name)
    args = [path, '-o', out] + (['--compare', os.path.join(DATA, 'compare.json')]
                                if with_compare else [])
    p = run(args)
    ck.eq(p.returncode, 0, f'{name}: exit status ({p.stderr.strip()})')
    ck.eq(p.stderr, '', f'{name}: nothing on stderr')
    if p.returncode:
        return None
    with open(os.path.join(out, 'report.html'), encoding='utf-8') as f:
        page_text = f.read()
    with open(os.path.join(out, 'summary.md'), encoding='utf-8') as f:
        md = f.read()
    ck.eq(p.stdout, md, f'{name}: stdout is summary.md')
    with open(path, 'rb') as a, open(os.path.join(out, 'burst.jsonl'), 'rb') as b:
        ck.check(a.read() == b.read(), f'{name}: burst.jsonl is a copy of the input')

    # self-contained, well formed
    try:
        ET.fromstring(page_text)
        ck.check(True, '')
    except ET.ParseError as e:
        ck.check(False, f'{name}: report.html is not well-formed XHTML: {e}')
    page = Page()
    page.feed(page_text)
    page.close()
    outside = [(t, a) for t, a in page.tags
               if t in ('script', 'link', 'img', 'iframe') or 'src' in a or 'href' in a]
    ck.eq(outside, [], f'{name}: no scripts, links or external resources')
    ck.check(page_text.count('<style>') == 1, f'{name}: inline CSS')

    # every plot: an svg with its id, polylines with several points, ticks and axis labels
    for pid in PLOTS:
        svg = page.svgs.get(pid)
        if not ck.check(svg is not None, f'{name}: <svg id="{pid}"> present'):
            continue
        longest = max((len(pts) for _, pts in svg['polylines']), default=0)
        ck.check(longest >= 6, f'{name}: {pid} draws a line of several points ({longest})')
        ck.check(len(x_ticks(svg)) >= 3 and len(y_ticks(svg)) >= 3,
                 f'{name}: {pid} has x and y tick labels')
        ck.check(sum(1 for a, _ in svg['texts'] if a.get('class') == 'al') == 2,
                 f'{name}: {pid} has both axis labels')
        ck.check(any(a.get('class') == 'tick' for a in svg['lines']), f'{name}: {pid} has ticks')

    # answered/s: one step per interval (the short last one merged), peak = the data's peak
    svg = page.svgs.get('plot-answered')
    if svg:
        rates = expected_rates(intervals, 'answered')
        ans = series(svg, 'answered')
        ck.eq(len(ans), 1, f'{name}: one answered/s line')
        if ans:
            pts = ans[0]
            ck.eq(len(pts), 2 * len(rates), f'{name}: answered/s has two points per interval')
            ck.check(all(b[0] >= a[0] for a, b in zip(pts, pts[1:])),
                     f'{name}: answered/s goes forward in time')
            inv = lin_inverse(y_ticks(svg))
            got = [inv(y) for _, y in pts[::2]]
            ck.check(all(abs(g - r) <= 0.002 * max(rates) + 1 for g, r in zip(got, rates)),
                     f'{name}: answered/s values are the intervals\' ({got[:3]} vs {rates[:3]})')
        for cls in ('sent', 'verified'):
            ck.eq(len(series(svg, cls)), 1, f'{name}: {cls}/s line drawn')

    # latency percentiles: all four drawn, on a log axis, inside the data's range
    svg = page.svgs.get('plot-latency')
    if svg:
        with_answers = [o for o in intervals if o['lat_us']['n'] > 0]
        for pc in ('p50', 'p90', 'p99', 'p99.9'):
            segs = series(svg, 'lat-' + pc)
            npts = sum(len(x) for x in segs)
            singles = sum(1 for c in svg['circles'] if c.get('class') == 'lat-' + pc)
            ck.eq(npts + singles, len(with_answers),
                  f'{name}: latency {pc}: one point per interval with answers')

    # retransmissions and timeouts: the totals come back from the steps
    svg = page.svgs.get('plot-retries')
    if svg:
        inv = lin_inverse(y_ticks(svg))
        for cls in ('retransmissions', 'timeouts'):
            lines = series(svg, cls)
            if not ck.eq(len(lines), 1, f'{name}: {cls}/s line drawn'):
                continue
            xs = lin_inverse(x_ticks(svg))
            pts = lines[0]
            total = sum(inv(a[1]) * (xs(b[0]) - xs(a[0])) for a, b in zip(pts[::2], pts[1::2]))
            want = sum(o[cls] for o in intervals)
            ck.check(abs(total - want) <= 0.01 * want + 2,
                     f'{name}: {cls}/s integrates to the run\'s {want} ({total:.1f})')

    # CDF from the final histogram: monotone, from 0 at the exact min to 1 at the exact max
    svg = page.svgs.get('plot-cdf')
    if svg:
        lines = series(svg, 'cdf')
        if ck.eq(len(lines), 1, f'{name}: one latency CDF line'):
            pts = lines[0]
            yt = dict(y_ticks(svg))
            y0, y1 = yt.get(0.0), yt.get(1.0)
            ck.check(y0 is not None and y1 is not None, f'{name}: CDF y axis runs 0..1')
            ck.check(all(b[0] >= a[0] - 1e-9 for a, b in zip(pts, pts[1:])),
                     f'{name}: CDF x increases')
            ck.check(all(b[1] <= a[1] + 1e-9 for a, b in zip(pts, pts[1:])),
                     f'{name}: CDF is monotone (never decreases)')
            if y0 is not None and y1 is not None:
                frac = [(y0 - y) / (y0 - y1) for _, y in pts]
                ck.check(abs(frac[0]) < 1e-3, f'{name}: CDF starts at 0 ({frac[0]})')
                ck.check(abs(frac[-1] - 1) < 1e-4, f'{name}: CDF ends at 1 ({frac[-1]})')
                lat = s['latency_us']
                cum, want = 0, []
                for b in sorted(lat['buckets']):
                    cum += b[2]
                    want.append(cum / lat['n'])
                ck.check(all(any(abs(w - f) < 1e-3 for f in frac) for w in want),
                         f'{name}: CDF passes through every bucket\'s cumulative fraction')
                fx = log_forward(x_ticks(svg))
                ck.check(abs(pts[-1][0] - fx(lat['max'])) < 0.6,
                         f'{name}: CDF ends at the exact max {lat["max"]} µs')
                ck.check(abs(pts[0][0] - fx(lat['min'])) < 0.6,
                         f'{name}: CDF starts at the exact min {lat["min"]} µs')
        if isinstance(s.get('ue_latency_us'), dict) and s['ue_latency_us']['n']:
            ck.eq(len(series(svg, 'cdf-ue')), 1, f'{name}: per-UE CDF drawn')

    # summary numbers: HTML cells carry the exact value and show it rounded; Markdown too
    mdr = md_rows(md)
    for key, label, digits in SUMMARY_KEYS:
        want = lookup(s, key)
        cells = page.cells.get(key)
        if not ck.check(cells is not None, f'{name}: summary cell {key}'):
            continue
        a, text = cells[0]
        ck.eq(json.loads(a['data-value']), want, f'{name}: {key} value in the HTML')
        row = mdr.get(label)
        if want is None:
            ck.check('not complete' in text, f'{name}: {key} null shows "not complete"')
            ck.check(row is not None and 'not complete' in row[0], f'{name}: {key} in Markdown')
            continue
        ck.check(close(text, want, digits), f'{name}: {key} shown as {text!r}, value {want}')
        ck.check(row is not None and close(row[0], want, digits),
                 f'{name}: Markdown "{label}" is {row} for {want}')
    for no, count in s['errors'].items():
        cells = page.cells.get(f'errors.{no}')
        ck.check(cells is not None and json.loads(cells[0][0]['data-value']) == count and
                 cells[0][1] == str(count), f'{name}: errors ERR {no} = {count} in the HTML')
        row = [v for k, v in mdr.items() if k.startswith(f'ERR {no} (')]
        ck.check(row and row[0][0] == str(count), f'{name}: ERR {no} = {count} in Markdown')
    ck.eq(sorted(k for k in page.cells if k.startswith('errors.')),
          sorted(f'errors.{k}' for k in s['errors']), f'{name}: no other ERR rows')
    verdict = 'PASS' if s['failed'] == 0 else 'FAIL'
    ck.check(f'**{verdict}**' in md, f'{name}: Markdown verdict {verdict}')
    return page, md


def check_compare(page, md):
    with open(os.path.join(DATA, 'compare.json')) as f:
        rows = json.load(f)
    base = next(r for r in rows if r.get('io') == 'socket' and r.get('crypto') == 'openssl')
    ceil = next(r for r in rows if r['config'].startswith('crypto-only'))
    bpc = base['requests_per_s'] / base['server_cores']
    cpc = ceil['requests_per_s'] / ceil['server_cores']
    table = page.tables.get('compare')
    if not ck.check(table is not None and len(table) == len(rows) + 1,
                    'comparison table: a header and one row per input row'):
        return
    mdr = md_rows(md)
    for r, tr in zip(rows, table[1:]):
        cells = {a.get('data-key'): (a, t) for a, t in tr}
        pc = r['requests_per_s'] / r['server_cores']
        for key, want, digits in (('per_core', pc, 0), ('vs_baseline', pc / bpc, 2),
                                  ('vs_ceiling', pc / cpc, 3),
                                  ('requests_per_s', r['requests_per_s'], 0)):
            a, text = cells[key]
            got = json.loads(a['data-value'])
            ck.check(abs(got - want) <= 1e-9 * want,
                     f'compare {r["config"]}: {key} {got} != {want}')
            ck.check(close(text, want, digits), f'compare {r["config"]}: {key} shown {text!r}')
        ck.eq(cells['config'][1], r['config'], 'compare: config name')
        row = mdr.get(r['config'])
        ck.check(row is not None and close(row[10], pc / bpc, 2) and close(row[11], pc / cpc, 3),
                 f'compare {r["config"]}: Markdown ratios ({row})')
        ck.check(row is not None and row[3] == '1' and row[5] == 'one run',
                 f'compare {r["config"]}: a row without runs is one run ({row})')
    ck.check(abs(json.loads(dict((a.get('data-key'), a) for a, _ in table[1])['vs_baseline']
                            ['data-value']) - 1) < 1e-12, 'baseline row is 1.00x itself')


def render_compare(doc, name, what):
    """Renders burst_ok.jsonl with the comparison doc; (process, page, compare table rows) or
    None when it failed."""
    cmp = os.path.join(tmp, f'{name}.json')
    with open(cmp, 'w') as f:
        json.dump(doc, f)
    out = os.path.join(tmp, name)
    p = run([os.path.join(DATA, 'burst_ok.jsonl'), '-o', out, '--compare', cmp])
    if not ck.eq(p.returncode, 0, f'{what} renders ({p.stderr.strip()})'):
        return None
    page = Page()
    with open(os.path.join(out, 'report.html'), encoding='utf-8') as f:
        page.feed(f.read())
    return p, page, page.tables.get('compare') or []


def check_compare_runs():
    """Rows with per-run figures: the table shows the median, min - max and n, the ratios are of
    medians, compare.json carries them, the plot draws a bar at the median and a whisker from
    min to max; a single run shows n 1 and no spread."""
    rows = [{'config': 'socket+openssl', 'io': 'socket', 'crypto': 'openssl', 'server_cores': 1,
             'runs': [100000, 120000, 90000]},
            {'config': 'dpdk+ipsec-mb', 'io': 'dpdk', 'crypto': 'ipsec-mb', 'server_cores': 1,
             'runs': [463000, 812000, 600000, 700000, 650000]},
            {'config': 'dpdk+openssl', 'io': 'dpdk', 'crypto': 'openssl', 'server_cores': 2,
             'runs': [300000, 340000, 'x', 310000, 330000]},
            {'config': 'single', 'io': 'dpdk', 'crypto': 'openssl', 'server_cores': 1,
             'requests_per_s': 250000},
            {'config': 'summarised', 'server_cores': 1, 'requests_per_s': 200000, 'n': 4,
             'requests_per_s_min': 150000, 'requests_per_s_max': 260000},
            {'config': 'crypto-only ceiling', 'role': 'ceiling', 'server_cores': 1,
             'runs': [1400000, 1500000, 1450000]},
            {'config': 'no rate'}]
    # (median, min, max, n) as the report must compute them
    want = [(100000, 90000, 120000, 3), (650000, 463000, 812000, 5), (320000, 300000, 340000, 4),
            (250000, 250000, 250000, 1), (200000, 150000, 260000, 4),
            (1450000, 1400000, 1500000, 3), None]
    res = render_compare(rows, 'runs', 'comparison with runs')
    if not res:
        return
    p, page, t = res
    out = os.path.join(tmp, 'runs')
    if not ck.eq(len(t), len(rows) + 1, 'runs: every row shown'):
        return
    mdr = md_rows(p.stdout)
    cpc = 1450000
    with open(os.path.join(out, 'compare.json')) as f:
        written = json.load(f)
    ck.eq(len(written), len(rows), 'compare.json: one row per input row')
    svg = page.svgs.get('plot-compare')
    ck.check(svg is not None, 'runs: <svg id="plot-compare"> present')
    bars = {a.get('data-config'): a for a in (svg or {}).get('rects', [])
            if a.get('class') == 'bar'}
    ranges = {a.get('data-config'): a for a in (svg or {}).get('lines', [])
              if a.get('class') == 'range'}
    labels = {a.get('data-config'): txt for a, txt in (svg or {}).get('texts', [])
              if a.get('class') == 'bl'}
    xinv = lin_inverse(x_ticks(svg)) if svg and len(x_ticks(svg)) >= 2 else None
    ck.check(xinv is not None, 'runs: the comparison plot has x tick labels')
    for r, w, tr, wr in zip(rows, want, t[1:], written):
        name = r['config']
        c = {a.get('data-key'): (json.loads(a['data-value']), x) for a, x in tr}
        if w is None:
            ck.eq(c['n'], (0, '-'), f'{name}: no rate, no runs')
            ck.eq(c['range'], (None, '-'), f'{name}: no range')
            ck.check(name not in bars, f'{name}: no bar without a rate')
            ck.check('n' not in wr, f'{name}: compare.json adds nothing without a rate')
            continue
        med, lo, hi, n = w
        ck.eq(c['requests_per_s'][0], med, f'{name}: median requests/s')
        ck.check(close(c['requests_per_s'][1], med, 0), f'{name}: median shown')
        ck.eq(c['n'], (n, str(n)), f'{name}: number of runs')
        if n == 1:
            ck.eq(c['range'], (None, 'one run'), f'{name}: a single run says so, no spread')
        else:
            ck.eq(c['range'], ([lo, hi], f'{lo} – {hi}'), f'{name}: min – max')
        pc = med / r['server_cores']
        ck.eq(c['per_core'][0], pc, f'{name}: median per core')
        ck.check(abs(c['vs_ceiling'][0] - pc / cpc) < 1e-12, f'{name}: ratio of medians to '
                 f'the ceiling ({c["vs_ceiling"]})')
        ck.check(abs(c['vs_baseline'][0] - pc / 100000) < 1e-12, f'{name}: ratio of medians '
                 'to the baseline')
        md = mdr.get(name) or []
        ck.check(len(md) > 11 and md[3] == str(n) and close(md[4], med, 0) and
                 md[5] == (f'{lo} – {hi}' if n > 1 else 'one run') and
                 close(md[11], pc / cpc, 3), f'{name}: Markdown row ({md})')
        ck.eq((wr.get('requests_per_s_median'), wr.get('requests_per_s_min'),
               wr.get('requests_per_s_max'), wr.get('n'), wr.get('requests_per_s')),
              (med, lo, hi, n, med), f'{name}: compare.json median, min, max, n')
        bar = bars.get(name)
        if ck.check(bar is not None and xinv, f'{name}: a bar in the plot'):
            x0 = float(bar['x'])
            ck.check(abs(xinv(x0)) < 1e-6 * hi + 1, f'{name}: bar starts at 0')
            ck.check(abs(xinv(x0 + float(bar['width'])) - med) <= 0.002 * med,
                     f'{name}: bar ends at the median')
            ck.eq(bar.get('data-n'), str(n), f'{name}: bar carries n')
        rg = ranges.get(name)
        if n == 1:
            ck.check(rg is None, f'{name}: a single run draws no whisker')
        elif ck.check(rg is not None and xinv, f'{name}: a min-max whisker'):
            ck.check(abs(xinv(float(rg['x1'])) - lo) <= 0.002 * hi and
                     abs(xinv(float(rg['x2'])) - hi) <= 0.002 * hi,
                     f'{name}: whisker from min to max ({rg})')
        ck.check(f'(n={n})' in labels.get(name, ''), f'{name}: the plot labels n '
                 f'({labels.get(name)!r})')
    ck.check('requests/s: median of the runs' in p.stdout, 'Markdown says what the figure is')


def check_compare_tolerant():
    """Missing and mistyped fields render as '-', an explicit role wins, cores divide."""
    rows = [{'config': 'only a name'},
            {'io': 'dpdk', 'crypto': 'ipsec-mb', 'requests_per_s': 240000, 'server_cores': 2},
            {'config': 'socket+openssl', 'io': 'socket', 'crypto': 'openssl',
             'requests_per_s': 'fast', 'server_cores': 1},
            {'config': 'mine', 'role': 'baseline', 'requests_per_s': 60000, 'server_cores': 1,
             'p99_us': None},
            {'config': 'no cores', 'requests_per_s': 100000}]
    res = render_compare({'title': 'Partial table', 'rows': rows}, 'partial',
                         'partial comparison')
    if not res:
        return
    p, page, t = res
    ck.eq(len(t), len(rows) + 1, 'partial comparison: every row shown')
    if len(t) != len(rows) + 1:
        return
    c = [{a.get('data-key'): (json.loads(a['data-value']), x) for a, x in tr} for tr in t[1:]]
    ck.eq(c[0]['requests_per_s'], (None, '-'), 'a missing number shows "-"')
    ck.eq(c[0]['vs_baseline'], (None, '-'), 'no ratio without a rate')
    ck.eq(c[1]['config'][1], 'row 2', 'a row without a name gets one')
    ck.eq(c[1]['per_core'][0], 120000, 'per core = requests/s / server cores')
    ck.eq(c[1]['vs_baseline'][0], 2.0, 'explicit baseline role is the reference (120000/60000)')
    ck.eq(c[2]['requests_per_s'], (None, '-'), 'a mistyped number shows "-"')
    ck.eq(c[3]['vs_baseline'], (1.0, '1.00'), 'baseline against itself')
    ck.eq(c[4]['per_core'], (None, '-'), 'no per-core rate without server_cores')
    ck.check(all(r['vs_ceiling'] == (None, '-') for r in c), 'no ceiling row: no ceiling ratio')
    ck.check('## Partial table' in p.stdout, 'comparison title used')
    # compare.json keeps the document's shape: title and rows, a rate as one run, none without
    with open(os.path.join(tmp, 'partial', 'compare.json')) as f:
        w = json.load(f)
    ck.check(isinstance(w, dict) and w.get('title') == 'Partial table' and
             len(w.get('rows', [])) == len(rows), 'compare.json: the title and every row')
    wr = (w.get('rows') if isinstance(w, dict) else None) or [{}] * len(rows)
    ck.eq([r.get('n') for r in wr], [None, 1, None, 1, 1], 'compare.json: n of each row')
    ck.eq((wr[1].get('requests_per_s_min'), wr[1].get('requests_per_s_max')), (240000, 240000),
          'compare.json: one run is its own min and max')


def check_other_inputs():
    path, intervals, s = fixture('burst_errors.jsonl')
    # a keyline-burst --summary file: one indented JSON document, no intervals
    doc = os.path.join(tmp, 'summary.json')
    with open(doc, 'w') as f:
        json.dump(s, f, indent=1)
    out = os.path.join(tmp, 'doc')
    p = run([doc, '-o', out])
    ck.eq(p.returncode, 0, f'--summary file renders ({p.stderr.strip()})')
    if p.returncode == 0:
        ck.check(os.path.exists(os.path.join(out, 'burst.json')), 'a JSON document is copied as '
                 'burst.json')
        page = Page()
        with open(os.path.join(out, 'report.html'), encoding='utf-8') as f:
            page.feed(f.read())
        for pid in ('plot-answered', 'plot-latency', 'plot-retries'):
            svg = page.svgs.get(pid)
            ck.check(svg is not None and not svg['polylines'] and
                     any('no interval lines' in t for _, t in svg['texts']),
                     f'{pid} says there are no interval lines')
        ck.check(page.svgs.get('plot-cdf') and series(page.svgs['plot-cdf'], 'cdf'),
                 'CDF drawn from a summary alone')
    # stdin, with DPDK log lines mixed into stdout
    with open(path) as f:
        text = 'EAL: Detected CPU lcores: 2\nEAL: Detected NUMA nodes: 1\n' + f.read()
    out = os.path.join(tmp, 'stdin')
    p = run(['-', '-o', out], stdin=text)
    ck.eq(p.returncode, 0, f'stdin with EAL lines renders ({p.stderr.strip()})')
    if p.returncode == 0:
        with open(os.path.join(out, 'burst.jsonl')) as f:
            ck.eq(f.read(), text, 'stdin copied as burst.jsonl')
        ck.check('skipped log lines 2' in p.stdout, 'skipped log lines counted')


def check_bad_inputs():
    ok_path, _, s = fixture('burst_ok.jsonl')
    with open(ok_path) as f:
        lines = f.read().splitlines()
    summ = json.loads(lines[-1])

    def without(path_keys):
        d = json.loads(lines[-1])
        cur = d
        for k in path_keys[:-1]:
            cur = cur[k]
        del cur[path_keys[-1]]
        return '\n'.join(lines[:-1] + [json.dumps(d)]) + '\n'

    def with_summary(**kw):
        d = dict(summ, **kw)
        return '\n'.join(lines[:-1] + [json.dumps(d)]) + '\n'

    first = json.loads(lines[0])
    bad_hist = json.loads(lines[-1])
    bad_hist['latency_us']['buckets'][0][2] += 1
    cases = {
        'empty': '',
        'blank lines': '\n \n\n',
        'not JSON': 'keyline-burst: 20000 UEs, mode burst\n',
        'binary': b'\xff\xfe\x00\x01garbage',
        'JSON array line': '[1, 2, 3]\n',
        'no summary': '\n'.join(lines[:-1]) + '\n',
        'truncated summary': '\n'.join(lines[:-1] + [lines[-1][:200]]) + '\n',
        'summary without latency_us': without(['latency_us']),
        'summary without counters.retransmissions': without(['counters', 'retransmissions']),
        'summary without buckets': without(['latency_us', 'buckets']),
        'summary without ok': without(['ok']),
        'summary with a string count': with_summary(ues='20000'),
        'summary with NaN': lines[-1].replace('"requests_per_s":', '"requests_per_s":NaN,"x":'),
        'bucket counts disagree with n': '\n'.join(lines[:-1] + [json.dumps(bad_hist)]) + '\n',
        'interval without t': '\n'.join([json.dumps({k: v for k, v in first.items()
                                                     if k != 't'})] + lines[1:]) + '\n',
        'interval t backwards': '\n'.join([lines[1], lines[0]] + lines[2:]) + '\n',
        'data after the summary': '\n'.join(lines + [lines[0]]) + '\n',
        'object without type': '{"t": 1}\n' + lines[-1] + '\n',
        'nested too deeply': '[' * 100000 + '\n',
    }
    for i, (what, content) in enumerate(cases.items()):
        path = os.path.join(tmp, 'bad.jsonl')
        with open(path, 'wb') as f:
            f.write(content if isinstance(content, bytes) else content.encode())
        out = os.path.join(tmp, f'bad-out-{i}')
        p = run([path, '-o', out])
        bad_result(p, what)
        ck.check(not os.path.exists(os.path.join(out, 'report.html')),
                 f'{what}: no report written')
    cmp_cases = {'comparison not JSON': 'rows?', 'comparison not a list': '{"rows": 3}',
                 'comparison row not an object': '[1]', 'comparison empty': ''}
    for what, content in cmp_cases.items():
        path = os.path.join(tmp, 'cmp.json')
        with open(path, 'w') as f:
            f.write(content)
        bad_result(run([ok_path, '-o', os.path.join(tmp, 'bad-out'), '--compare', path]), what)
    bad_result(run([os.path.join(tmp, 'does-not-exist.jsonl'), '-o', tmp]), 'missing file')
    bad_result(run([tmp, '-o', tmp]), 'a directory as input')
    bad_result(run([ok_path]), 'no -o')
    bad_result(run([]), 'no arguments')
    bad_result(run([ok_path, '-o', tmp, '--bogus']), 'unknown option')
    # an output directory that cannot be made: exit 1, still one line
    blocker = os.path.join(tmp, 'file')
    with open(blocker, 'w') as f:
        f.write('x')
    p = run([ok_path, '-o', os.path.join(blocker, 'sub')])
    ck.eq(p.returncode, 1, 'unwritable output: exit 1')
    ck.eq(len(p.stderr.splitlines()), 1, f'unwritable output: one line ({p.stderr!r})')


def bad_result(p, what):
    ck.eq(p.returncode, 2, f'{what}: exit 2')
    ck.eq(len(p.stderr.splitlines()), 1, f'{what}: one line on stderr ({p.stderr[:300]!r})')
    ck.check(p.stderr.startswith('keyline-report: '), f'{what}: names the tool')
    ck.check('Traceback' not in p.stderr, f'{what}: no traceback')
    # each bad input is recognised by its own check, not by the last-resort handler
    ck.check('cannot render this input' not in p.stderr, f'{what}: a specific message')
    ck.check(p.stdout == '', f'{what}: nothing on stdout ({p.stdout[:80]!r})')


res = check_report('burst_ok.jsonl', True)
if res:
    check_compare(*res)
check_report('burst_ratelimit.jsonl', False)
check_report('burst_errors.jsonl', True)
res = check_report('burst_hm.jsonl', False)
if res:
    # the HM rows: sessions, sessions/s, K*b fetches, beside the per-request latency rows
    page, md = res
    _, _, s_hm = fixture('burst_hm.jsonl')
    mdr = md_rows(md)
    for key, label in (('sessions', 'HM sessions (UE pairs)'), ('agreed', 'HM sessions agreed on Ks'),
                       ('sessions_per_s', 'HM sessions/s'), ('kstar_fetched', 'K*b fetches (kind 3)'),
                       ('kstar_cached', 'token_b opened with a kept K*b')):
        want = s_hm['hm'][key]
        cells = page.cells.get(f'hm.{key}')
        ck.check(cells is not None and json.loads(cells[0][0]['data-value']) == want,
                 f'burst_hm: hm.{key} = {want} in the HTML')
        row = mdr.get(label)
        ck.check(row is not None and close(row[0], want, 1), f'burst_hm: Markdown "{label}" {row}')
    ck.check('server identity vlr-a' in md, 'burst_hm: the run names the server identity')
for name in ('burst_ok.jsonl', 'burst_errors.jsonl'):
    ck.check('HM sessions' not in run([os.path.join(DATA, name), '-o',
                                       os.path.join(tmp, 'nohm')]).stdout,
             f'{name}: no HM rows for another kind')
# the DH and ProSe rows: pairs ok/failed, pairs/s, retries per pair, time from a pair's first
# request to both keys
for name, label in (('burst_prose.jsonl', 'ProSe'), ('burst_dh.jsonl', 'DH')):
    res = check_report(name, False)
    if not res:
        continue
    page, md = res
    _, _, s_p = fixture(name)
    pr = s_p['pairs']
    mdr = md_rows(md)
    key = 'KD' if label == 'ProSe' else 'Ks'
    for path, text, want in (
            ('pairs.pairs', f'{label} pairs', pr['pairs']),
            ('pairs.ok', f'{label} pairs ok (both sides hold the same {key})', pr['ok']),
            ('pairs.failed', f'{label} pairs failed', pr['failed']),
            ('pairs.pairs_per_s', f'{label} pairs/s', pr['pairs_per_s']),
            ('pairs.retries.mean', 'retries per pair after ERR 12/5 (mean)', pr['retries']['mean']),
            ('pairs.retries.max', 'retries per pair after ERR 12/5 (max)', pr['retries']['max']),
            ('pairs.time_to_key_us.p50', 'pair first request to both keys p50 (µs)',
             pr['time_to_key_us']['p50']),
            ('pairs.time_to_key_us.p99', 'pair first request to both keys p99 (µs)',
             pr['time_to_key_us']['p99'])):
        cells = page.cells.get(path)
        ck.check(cells is not None and json.loads(cells[0][0]['data-value']) == want,
                 f'{name}: {path} = {want} in the HTML')
        row = mdr.get(text)
        ck.check(row is not None and close(row[0], want, 1), f'{name}: Markdown "{text}" {row}')
    ck.check('server identity vlr-a' in md, f'{name}: the run names the server identity')
    ck.check('pair timeout (ms) 30000' in md, f'{name}: the run names the pair timeout')
    ck.check('HM sessions' not in md, f'{name}: no HM rows')
for name in ('burst_ok.jsonl', 'burst_hm.jsonl'):
    ck.check('pairs/s' not in run([os.path.join(DATA, name), '-o',
                                   os.path.join(tmp, 'nopairs')]).stdout,
             f'{name}: no DH/ProSe rows for another kind')
check_compare_tolerant()
check_compare_runs()
check_other_inputs()
check_bad_inputs()
sys.exit(ck.done())
