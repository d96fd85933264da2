#!/usr/bin/env bash
# The main job on the bundled example fleet: validate, compile and sign, verify, show.
# Evaluates at HEAD's commit time (as CI does), so the result is reproducible.
source "$(dirname "$0")/bootstrap.sh"
ensure_venv "test,dev,bets"
MP="$VENV/bin/modelpin"
NOW="$(git -C "$ROOT" log -1 --format=%cI 2>/dev/null || true)"
NOW="${NOW:-2026-11-22T12:00:00Z}"

echo "==> modelpin validate (at $NOW)"
"$MP" validate --repo "$ROOT" --now "$NOW"
echo
echo "==> modelpin compile: the signed routing table"
"$MP" compile --repo "$ROOT" --now "$NOW" --table
echo
echo "==> modelpin verify"
"$MP" verify "$ROOT/dist/routing-table.dsse.json" --repo "$ROOT" --now "$NOW"
echo
echo "==> modelpin explain beta-support primary: what may happen next"
"$MP" explain beta-support primary --repo "$ROOT" --now "$NOW"
echo
echo "==> modelpin resolve: where a new session of beta-support/primary goes"
"$MP" resolve "$ROOT/dist/routing-table.dsse.json" beta-support primary session-1001 \
  --repo "$ROOT" --now "$NOW"
echo
echo "dashboard: $ROOT/dist/index.html"
