#!/usr/bin/env bash
# Runs the README's quick start and its dead-letter exercise against the real processes, as a new user would, and
# checks the result from the simulators' own figures (not the bridge's counters):
#   ./dev up; a sale in shopify-sim; the gift-wrap lines without SKU land in q.orders.dlq with missing_sku;
#   missing_sku: catch_all in run/bridge.yaml; ./dev restart order-forwarder; ./dev ctl dlq replay --queue orders --all;
#   then every Shopify order is in the ERP exactly once, the DLQ is empty, and ./dev ctl trace shows a replayed order;
#   ./dev down and ./dev up keep both simulators' orders; ./dev demo passes.
# CI runs it after the tests (.ci/run). Uses a run directory of its own and stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export BRIDGE_RUN_DIR=${BRIDGE_RUN_DIR:-$(mktemp -d /tmp/bridge-walkthrough.XXXXXX)}
trap './dev down >/dev/null 2>&1 || true' EXIT
fail() { echo "README walkthrough FAILED: $*" >&2; exit 1; }
step() { printf '\n\033[1m--- %s\033[0m\n' "$*"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# The README's ports, except where something else already listens on the broker's (the README's own hint:
# BROKER_PORT=5673 CONSOLE_PORT=15673 ./dev up).
taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
if taken 5672; then export BROKER_PORT; BROKER_PORT=$(free_port); echo "5672 is taken: the broker uses $BROKER_PORT"; fi
if taken 15672; then export CONSOLE_PORT; CONSOLE_PORT=$(free_port); echo "15672 is taken: the console uses $CONSOLE_PORT"; fi
for p in 8080 8090 8091 9100 9101 9102 9103 9104; do taken "$p" && fail "port $p is taken; the README's quick start needs it"; done

step "./dev up"
./dev up

step "a sale: curl -X POST http://127.0.0.1:8091/_sim/traffic -d '{\"orders\":200,\"orders_per_second\":40}'"
curl -fsS -X POST http://127.0.0.1:8091/_sim/traffic -d '{"orders":200,"orders_per_second":40}'
echo
shopify_orders() { curl -fsS http://127.0.0.1:8091/_sim/orders | json 'len(d) if isinstance(d, list) else len(d.get("orders", d))'; }
erp() { curl -fsS http://127.0.0.1:8090/_inspect/stats | json "d['$1']"; }
dead() { ./dev ctl dlq list --queue orders | head -n 1 | sed -E 's/.*: ([0-9]+) dead.*/\1/'; }
# Settled: the ERP's order count and the DLQ stop moving for 5 s (bounded: 120 s).
settle() {
    local last="" now i
    for i in $(seq 1 60); do
        now="$(erp orders)/$(dead)"
        [ "$now" = "$last" ] && [ "$i" -gt 3 ] && return 0
        last=$now
        sleep 2
    done
    fail "the bridge did not settle within 120 s ($now)"
}
settle
placed=$(shopify_orders)
in_erp=$(erp orders)
letters=$(dead)
echo "shopify-sim: $placed orders; erp-sim: $in_erp orders; q.orders.dlq: $letters dead letters"
[ "$letters" -gt 0 ] || fail "no dead letter: the sale had no gift-wrap line without SKU to exercise"
./dev ctl dlq list --queue orders | grep -q "missing_sku" || fail "the dead letters do not say missing_sku"
./dev ctl alerts >/dev/null || true

step "the fix: order_forwarder.missing_sku: catch_all in run/bridge.yaml, ./dev restart order-forwarder"
printf '\norder_forwarder:\n  missing_sku: catch_all\n' >>"$BRIDGE_RUN_DIR/bridge.yaml"
./dev restart order-forwarder

step "./dev ctl dlq replay --queue orders --all"
./dev ctl dlq replay --queue orders --all
settle
in_erp=$(erp orders)
letters=$(dead)
dups=$(erp duplicated_refs)
echo "shopify-sim: $placed orders; erp-sim: $in_erp orders, $dups duplicated references; q.orders.dlq: $letters"
[ "$letters" -eq 0 ] || fail "$letters dead letters left after the replay"
[ "$in_erp" -eq "$placed" ] || fail "the ERP holds $in_erp orders for $placed placed in Shopify"
[ "$dups" -eq 0 ] || fail "$dups orders are duplicated in the ERP"

step "./dev ctl trace --order <a replayed order>"
order=$(grep -ho '"order_id":"[0-9]*"' "$BRIDGE_RUN_DIR"/logs/order-forwarder.1.log | head -n 1 | grep -o '[0-9]*' || true)
[ -n "$order" ] || fail "no order id in the restarted forwarder's log (its first orders are the replayed ones)"
for _ in $(seq 1 10); do
    ./dev ctl trace --order "$order" >"$BRIDGE_RUN_DIR/trace.txt" 2>&1 && grep -q "replayed" "$BRIDGE_RUN_DIR/trace.txt" && break
    sleep 1
done
cat "$BRIDGE_RUN_DIR/trace.txt"
grep -q "dead_lettered" "$BRIDGE_RUN_DIR/trace.txt" && grep -q "replayed" "$BRIDGE_RUN_DIR/trace.txt" &&
    grep -q "handled" "$BRIDGE_RUN_DIR/trace.txt" || fail "the trace of order $order lacks its dead-letter, replay or handling"

step "./dev down, ./dev up: the simulators keep their state (run/simulators/), in step with the ledger"
./dev down
./dev up >/dev/null
[ "$(shopify_orders)" -eq "$placed" ] || fail "shopify-sim holds $(shopify_orders) orders after a restart, $placed before"
[ "$(erp orders)" -eq "$in_erp" ] || fail "erp-sim holds $(erp orders) orders after a restart, $in_erp before"
echo "after the restart: shopify-sim $(shopify_orders) orders, erp-sim $(erp orders): unchanged"

step "./dev demo (a shorter sale: 300 orders, the ERP down for 10 s)"
./dev demo --orders 300 --outage 10 || fail "./dev demo found orders missing, wrong or duplicated (or could not run)"

step "./dev status, ./dev ctl status"
./dev status
./dev ctl status
echo
echo "README walkthrough passed: $placed orders placed, $in_erp in the ERP once each, the dead letters replayed after the fix"
