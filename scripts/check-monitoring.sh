#!/usr/bin/env bash
# Checks the monitoring files with Prometheus's own promtool (Debian's `prometheus` package): the alerting rules
# (syntax and their unit tests), the scrape configuration, and every PromQL expression of the Grafana dashboard
# (each is turned into a recording rule, so promtool parses it). Run by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "promtool is missing: apt-get install prometheus" >&2; exit 1; }
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts.test.yml)
promtool check config --syntax-only deploy/prometheus/prometheus.yml
tmp=$(mktemp /tmp/dashboard-rules.XXXXXX.yml)
trap 'rm -f "$tmp"' EXIT
python3 - deploy/grafana/dashboards/bridge.json "$tmp" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
rules = []
for panel in dash["panels"]:
    for target in panel.get("targets", []):
        rules.append({"record": "dashboard:panel_%d_%s" % (panel["id"], target["refId"].lower()), "expr": target["expr"]})
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
print("dashboard: %d PromQL expressions in %d panels" % (len(rules), len(dash["panels"])))
PY
promtool check rules "$tmp"
