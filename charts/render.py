#!/usr/bin/env python3
"""Renders and lints the chart offline with helm-python-sdk, for tests/chart.rs.

usage: render.py CHART [VALUES.yaml] > rendered.yaml
Prints the manifests as one multi-document YAML stream on stdout; lint findings, schema errors
and the chart's own refusals (`fail`, `required`) on stderr, one `error: ` line each, and exits 1
when there are any (lint is strict: warnings count).
"""
import sys

import helm_python
import yaml

chart_dir = sys.argv[1]
values = {}
if len(sys.argv) > 2:
    with open(sys.argv[2]) as f:
        values = yaml.safe_load(f) or {}

report = helm_python.lint(chart_dir, values, strict=True, kube_version="v1.30.0")
problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
problems += report.get("errors", [])
for p in problems:
    print(f"lint: {p}", file=sys.stderr)

chart = helm_python.Chart.load(chart_dir)
try:
    merged = chart.merge_values(values) if hasattr(chart, "merge_values") else values
    chart.validate_schema(merged)
    manifests = chart.render(values, name="billing", namespace="finops", is_install=True)
except helm_python.errors.HelmError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
for path in sorted(manifests):
    text = manifests[path].strip()
    if not text or path.endswith("NOTES.txt"):
        continue
    print(f"---\n# Source: {path}\n{text}")
sys.exit(1 if problems else 0)
