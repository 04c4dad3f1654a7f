"""/openapi.json and /docs: a self-contained page (inline CSS and JS, no CDN) to try predictions.

``/docs?try=1`` submits the example input on load, which is how the headless-browser test (and a
curious user) sees a prediction without clicking.
"""

from __future__ import annotations

import html
import json
from typing import Any

from .jsonfast import dumps


def openapi(model: Any) -> dict[str, Any]:
    error = {"description": "error", "content": {"application/json": {"schema": {
        "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}}
    v2_base = f"/v2/models/{model.name}"
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{model.name} (dockyard)", "version": str(model.version),
                 "description": f"Serves {model.name} version {model.version} ({model.platform})."},
        "paths": {
            "/predict": {"post": {
                "summary": "Predict from named inputs",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": model.input_schema(), "example": model.example()}}},
                "responses": {"200": {"description": "prediction", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {"output": {}}}}}},
                              "400": error, "413": error, "422": error, "503": error, "504": error}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {"get": {"summary": "Readiness", "responses": {"200": {"description": "ready"},
                                                                      "503": error}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text"}}}},
            "/v2/health/live": {"get": {"summary": "V2 liveness", "responses": {"200": {"description": "live"}}}},
            "/v2/health/ready": {"get": {"summary": "V2 readiness", "responses": {"200": {"description": "ready"}}}},
            "/v2": {"get": {"summary": "V2 server metadata", "responses": {"200": {"description": "metadata"}}}},
            v2_base: {"get": {"summary": "V2 model metadata", "responses": {"200": {"description": "metadata"},
                                                                            "404": error}}},
            f"{v2_base}/ready": {"get": {"summary": "V2 model readiness", "responses": {"200": {"description": "ready"}}}},
            f"{v2_base}/infer": {"post": {
                "summary": "V2 inference (JSON tensors, or the binary tensor extension)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["inputs"],
                    "properties": {"id": {"type": "string"}, "inputs": {"type": "array"},
                                   "outputs": {"type": "array"}, "parameters": {"type": "object"}}}}}},
                "responses": {"200": {"description": "outputs"}, "400": error, "404": error}}},
        },
        "x-dockyard-signature": {"inputs": [s.metadata() for s in model.inputs],
                                 "outputs": [s.metadata() for s in model.outputs],
                                 "batching": bool(model.batchable)},
    }


_CSS = """body{font:15px/1.45 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.4rem}label{display:block;font-weight:600;margin-top:1rem}small{color:#57606a;font-weight:400}
textarea{width:100%;min-height:4.5rem;font:13px ui-monospace,monospace;box-sizing:border-box}
button{margin-top:1rem;padding:.45rem 1.2rem;font-size:1rem;cursor:pointer}
pre{background:#f6f8fa;padding:.8rem;overflow:auto;white-space:pre-wrap}.err{color:#b42318}
code{background:#f6f8fa;padding:0 .25rem}"""

_JS = """const sig = JSON.parse(document.getElementById('signature').textContent);
const form = document.getElementById('form');
const out = document.getElementById('result');
async function run(ev) {
  if (ev) ev.preventDefault();
  const body = {};
  for (const f of sig.fields) {
    const raw = document.getElementById('in-' + f.name).value.trim();
    if (raw === '' && !f.required) continue;
    try { body[f.name] = JSON.parse(raw); }
    catch (e) { out.className = 'err'; out.textContent = f.name + ': not valid JSON (' + e.message + ')'; return; }
  }
  out.className = ''; out.textContent = 'predicting...';
  const t0 = performance.now();
  try {
    const r = await fetch('predict', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                      body: JSON.stringify(body)});
    const text = await r.text();
    out.className = r.ok ? 'ok' : 'err';
    out.dataset.status = String(r.status);
    out.textContent = 'HTTP ' + r.status + ' in ' + (performance.now() - t0).toFixed(1) + ' ms\\n' + text;
  } catch (e) { out.className = 'err'; out.textContent = 'request failed: ' + e.message; }
}
form.addEventListener('submit', run);
if (new URLSearchParams(location.search).has('try')) run();"""


def page(model: Any) -> bytes:
    schema = model.input_schema()
    example = model.example()
    fields = [{"name": n, "required": n in schema.get("required", [])} for n in schema["properties"]]
    tensors = {t["name"]: t for t in (s.metadata() for s in model.inputs)}
    inputs = []
    for name, prop in schema["properties"].items():
        value = json.dumps(example[name]) if name in example else ""
        hint = prop.get("description", "")
        if name in tensors and "shape" not in hint:  # the V2 tensor each request is checked against
            shape = ", ".join("any" if d < 0 else str(d) for d in tensors[name]["shape"])
            hint = f"{hint} ({tensors[name]['datatype']}, shape [{shape}])".strip()
        hint = html.escape(hint)
        inputs.append(f'<label for="in-{html.escape(name)}">{html.escape(name)} <small>{hint}</small></label>'
                      f'<textarea id="in-{html.escape(name)}" name="{html.escape(name)}">{html.escape(value)}</textarea>')
    # </script> inside JSON would end the script element early; escape the slash.
    signature = dumps({"fields": fields}).decode().replace("</", "<\\/")
    title = html.escape(f"{model.name} v{model.version}")
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title} - dockyard</title><style>{_CSS}</style></head>
<body><h1>{title} <small>{html.escape(model.platform)}</small></h1>
<p>Fill in the inputs as JSON and press <b>Predict</b>. The same call from a shell:
<code>curl -X POST -H 'Content-Type: application/json' -d '{html.escape(json.dumps(example))}' {{this host}}/predict</code>.
Machine-readable schema: <a href="openapi.json">openapi.json</a>; KServe V2: <code>/v2/models/{html.escape(model.name)}</code>.</p>
<form id="form">{''.join(inputs)}<button type="submit" id="predict">Predict</button></form>
<h2>Result</h2><pre id="result">(no prediction yet)</pre>
<script type="application/json" id="signature">{signature}</script>
<script>{_JS}</script></body></html>"""
    return text.encode()
