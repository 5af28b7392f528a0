"""The status page's HTML: rendered on the server from a status snapshot
(:mod:`connector_runtime.serve.status`), refreshed by a meta refresh without JavaScript, and
in place by a few lines of JavaScript with it. Nothing is loaded from anywhere else."""

from __future__ import annotations

import html
from typing import Any

REFRESH = 5
"""Seconds between reloads without JavaScript (with it, the numbers refresh every second)."""

FIELDS = (
    ("accepted", "records accepted"),
    ("accepted_per_second", "accepted/s (1 min)"),
    ("delivered", "events delivered"),
    ("delivered_per_second", "delivered/s (1 min)"),
    ("depth", "spool depth"),
    ("oldest_age_seconds", "oldest (s)"),
    ("dead_letters", "dead letters"),
    ("retries", "retries"),
    ("tap_dropped", "tap drops"),
)

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#fafbfc}
h1{font-size:1.3em;margin:0 0 .2em}
.meta{color:#57606a;margin-bottom:1em}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0002}
th,td{padding:.35em .7em;border-bottom:1px solid #e1e4e8;text-align:right;white-space:nowrap}
th:first-child,th:nth-child(2),th:last-child,td:first-child,td.types{text-align:left}
th{background:#f0f3f6;font-weight:600}
.ok{color:#1a7f37}.bad{color:#cf222e}
.errors{margin:.2em 0 0;padding:0;list-style:none;color:#57606a;font-size:.9em;text-align:left}
.errors time{color:#1b1f24;margin-right:.5em}
td.notes{text-align:left;white-space:normal;min-width:18em;max-width:26em}
"""

SCRIPT = """
(function(){
  var meta=document.getElementById('refresh'); if(meta){meta.remove();}
  function set(el,text){if(el.textContent!==String(text)){el.textContent=text;}}
  function notes(c){
    var out=[];
    c.reasons.forEach(function(r){out.push(['','not ready: '+r]);});
    c.warnings.forEach(function(w){out.push(['','warning: '+w]);});
    c.watch.forEach(function(w){out.push(['','watching '+w.state]);});
    c.errors.forEach(function(e){out.push([e.time,e.level+': '+e.message]);});
    return out;
  }
  function tick(){
    fetch('status.json',{cache:'no-store',credentials:'same-origin'}).then(function(r){
      if(!r.ok){throw new Error('HTTP '+r.status);} return r.json();
    }).then(function(s){
      set(document.getElementById('uptime'),s.uptime_seconds);
      var ready=document.getElementById('ready');
      set(ready,s.ready?'ready':'not ready'); ready.className=s.ready?'ok':'bad';
      s.connectors.forEach(function(c){
        var row=document.querySelector('tr[data-connector="'+c.name+'"]'); if(!row){return;}
        row.querySelectorAll('[data-field]').forEach(function(td){
          set(td,c[td.getAttribute('data-field')]);
        });
        var ul=row.querySelector('ul.errors'); ul.textContent='';
        notes(c).forEach(function(n){
          var li=document.createElement('li');
          if(n[0]){var t=document.createElement('time'); t.textContent=n[0]; li.appendChild(t);}
          li.appendChild(document.createTextNode(n[1])); ul.appendChild(li);
        });
      });
      set(document.getElementById('updated'),'live');
    }).catch(function(e){set(document.getElementById('updated'),'refresh failed: '+e.message);});
  }
  setInterval(tick,1000);
})();
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _notes(c: dict[str, Any]) -> str:
    items = [f"<li>not ready: {_e(r)}</li>" for r in c["reasons"]]
    items += [f"<li>warning: {_e(w)}</li>" for w in c["warnings"]]
    items += [f"<li>watching {_e(w['state'])}</li>" for w in c["watch"]]
    items += [
        f"<li><time>{_e(e['time'])}</time>{_e(e['level'])}: {_e(e['message'])}</li>"
        for e in c["errors"]
    ]
    return f'<ul class="errors">{"".join(items)}</ul>'


def _row(c: dict[str, Any]) -> str:
    name = _e(c["name"])
    cells = "".join(f'<td data-field="{f}">{_e(c[f])}</td>' for f, _ in FIELDS)
    types = f"{_e(c['source'])} &rarr; {_e(c['target'])} <small>(ack {_e(c['ack'])})</small>"
    return (
        f'<tr data-connector="{name}"><td><b>{name}</b></td><td class="types">{types}</td>'
        f'{cells}<td class="notes">{_notes(c)}</td></tr>'
    )


def render(status: dict[str, Any]) -> bytes:
    """The whole page for one snapshot."""
    ready = status["ready"]
    heads = "".join(f"<th>{_e(label)}</th>" for _, label in FIELDS)
    rows = "".join(_row(c) for c in status["connectors"])
    workers = status["workers"]
    group = f" &middot; {workers} workers" if workers > 1 else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH}" id="refresh">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>connector-runtime status</title><style>{STYLE}</style></head>
<body><h1>connector-runtime <span id="ready" class="{"ok" if ready else "bad"}">{
        "ready" if ready else "not ready"
    }</span></h1>
<div class="meta">version <span id="version">{_e(status["version"])}</span> &middot;
up <span id="uptime">{_e(status["uptime_seconds"])}</span> s{group} &middot;
taps {_e(status["taps"]["attached"])}/{_e(status["taps"]["max"])} &middot;
<span id="updated">refreshes every {REFRESH} s</span></div>
<table><thead><tr><th>connector</th><th>source &rarr; target</th>{heads}
<th>readiness, watched, last warnings and errors</th></tr></thead>
<tbody>{rows}</tbody></table>
<script>{SCRIPT}</script>
</body></html>
""".encode()
