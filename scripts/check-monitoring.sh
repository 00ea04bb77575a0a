#!/usr/bin/env bash
# Checks the monitoring files with Prometheus's own promtool (Debian's `prometheus` package): the alerting rules
# (syntax and their unit tests), the scrape configuration, and every PromQL expression of the Grafana dashboard
# (each is turned into a recording rule, so promtool parses it), and the hosts compose URLs name. Run by CI (.ci/run).
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

# Every host a compose-run process is told to reach (URLs in the compose configuration and in docker-compose.yml's
# commands and environment) is a compose service: a misspelt one only fails at run time, and there is no Docker
# engine here to run it.
python3 - docker-compose.yml config/bridge.compose.yaml <<'PY'
import re, sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
services = set(compose["services"])
local = {"localhost", "127.0.0.1", "0.0.0.0"}
texts = [open(sys.argv[2]).read()]
for name, svc in compose["services"].items():
    texts.append(" ".join(map(str, svc.get("command") or [])))
    env = svc.get("environment") or {}
    texts.append(" ".join(map(str, env.values() if isinstance(env, dict) else env)))
hosts = set()
for t in texts:
    for m in re.finditer(r"\b(?:https?|amqps?|postgres)://(?:[^@/\s\"']*@)?([A-Za-z0-9_.-]+)", t):
        hosts.add(m.group(1))
unknown = sorted(h for h in hosts if h not in services and h not in local and not h.endswith(".myshopify.com"))
if unknown:
    sys.exit("compose: URLs name hosts that are not compose services: %s (services: %s)" % (", ".join(unknown), ", ".join(sorted(services))))
print("compose: %d hosts named in URLs, each a service" % len(hosts))
PY
