// The report page: a header (machine, commits, method), one section per chart with the table of
// its numbers, and the minified vega, vega-lite and vega-embed builds inlined (no network at view
// time). vega-embed renders every spec to SVG once the page has loaded; <body data-rendered> turns
// 'ok' (or 'error: ...') when all of them are done, which is what the browser test waits for.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { ROOT } from '../lib.mjs';
import { fmtNum } from './load.mjs';

const LIBS = ['vega/build/vega.min.js', 'vega-lite/build/vega-lite.min.js', 'vega-embed/build/vega-embed.min.js'];

export function libraries() {
  return LIBS.map((p) => {
    const name = p.split('/')[0];
    const code = readFileSync(join(ROOT, 'node_modules', p), 'utf8');
    const version = JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
    return { name, version, code, bytes: Buffer.byteLength(code) };
  });
}

export const esc = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** JSON that is safe inside <script>: no "</script", no "<!--". */
const scriptJson = (x) => JSON.stringify(x).replace(/</g, '\\u003c');

function cell(v) {
  if (v == null) return '<td class="na">–</td>';
  if (typeof v === 'boolean') return `<td>${v ? 'yes' : 'no'}</td>`;
  if (typeof v === 'number') return `<td class="num" data-value="${v}">${esc(fmtNum(v))}</td>`;
  if (/^\d{4}-\d\d-\d\dT/.test(v)) return `<td>${esc(v.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC'))}</td>`;
  return `<td>${esc(v)}</td>`;
}

export function htmlTable({ columns, rows }, cls = 'numbers') {
  return (
    `<table class="${cls}"><thead><tr>${columns.map(([, t]) => `<th>${esc(t)}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('\n')}</tbody></table>`
  );
}

function chartSection(c) {
  return `<section class="chart-block" id="${esc(c.id)}">
<h3>${esc(c.title)}</h3>
<p class="note">${esc(c.note)}${c.source ? ` <span class="src">Source: ${esc(c.source)}</span>` : ''}</p>
<div class="chart" id="chart-${esc(c.id)}" data-chart="${esc(c.id)}" data-mark="${c.mark}" data-points="${c.points}" data-rules="${c.rules}"></div>
${htmlTable(c.table)}
${c.rulesTable ? `<p class="note">The rules (ceilings) drawn:</p>${htmlTable(c.rulesTable, 'rules')}` : ''}
</section>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:16px 24px;max-width:1280px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:4px 0 8px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:15px;margin:18px 0 4px}
header dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}header dt{color:#57606a}header dd{margin:0}
.note{color:#444;margin:2px 0 6px;max-width:1100px}.src{color:#57606a;font-size:12px}
.missing{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;border-radius:4px}
table{border-collapse:collapse;font-size:12px;margin:6px 0 14px}th,td{border:1px solid #d0d7de;padding:2px 6px;text-align:left}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}td.na{color:#8c959f}
.chart{margin:6px 0}code{background:#f6f8fa;padding:0 3px;border-radius:3px}`;

/** The whole page. `sections` is [{ title, intro, charts: [...] }]. */
export function page({ title, header, missing, sections, libs, specs, generated }) {
  const libBytes = libs.reduce((s, l) => s + l.bytes, 0);
  const libNote = `${libs.map((l) => `${l.name} ${l.version}`).join(', ')} (minified, inlined: ${(libBytes / 1024).toFixed(0)} KiB)`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body data-rendered="pending">
<header>
<h1>${esc(title)}</h1>
<dl>${header.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}
<dt>charts</dt><dd>Vega-Lite, rendered to SVG by vega-embed: ${esc(libNote)}</dd>
<dt>generated</dt><dd>${esc(generated)}</dd></dl>
${missing.length ? `<p class="missing" id="missing">Not in these results: ${missing.map((m) => `<span class="missing-suite">${esc(m)}</span>`).join(', ')}.</p>` : ''}
</header>
${sections
  .map(
    (s) => `<h2>${esc(s.title)}</h2>
${s.intro ? `<p class="note">${esc(s.intro)}</p>` : ''}
${s.charts.map(chartSection).join('\n')}`,
  )
  .join('\n')}
${libs.map((l) => `<script>/* ${l.name} ${l.version} */\n${l.code.replace(/<\/script/gi, '<\\/script')}</script>`).join('\n')}
<script type="application/json" id="specs">${scriptJson(specs)}</script>
<script>
(function () {
  var specs = JSON.parse(document.getElementById('specs').textContent);
  var ids = Object.keys(specs);
  Promise.all(ids.map(function (id) {
    return vegaEmbed('#chart-' + id, specs[id], { renderer: 'svg', actions: false });
  })).then(function () { document.body.setAttribute('data-rendered', 'ok'); },
    function (err) { document.body.setAttribute('data-rendered', 'error: ' + err); console.error(err); });
})();
</script>
</body></html>
`;
}
