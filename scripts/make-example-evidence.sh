#!/usr/bin/env bash
# Regenerate the example fleet's BETS evidence with `modelpin bets run`, against the local
# fake provider of tests/fakes/openai_server.py (every provider of the fleet is pointed at it
# through --providers). The pin answers correctly; candidates are "mostly clean" (about 2%
# of prompts misbehave as provider updates do), so the evidence carries a few failures.
# Evidence is signed with the example evaluator key (EVALUATOR_KEY, default
# examples/keys/evaluator.pem); without it the results are written unsigned, loudly.
source "$(dirname "$0")/bootstrap.sh"
ensure_venv "test,dev,bets"
KEY="${EVALUATOR_KEY:-examples/keys/evaluator.pem}"
NOW="${EVIDENCE_TIME:-2026-11-21T03:00:00Z}"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

cat > "$WORK/config.json" <<JSON
{"personas": {"gpt-5-2026-01-10": "clean", "claude-4-20260201": "clean",
              "gpt-5-2026-09-14": "mostly-clean", "claude-4-5-20260915": "mostly-clean"},
 "repo": "$ROOT", "api_key": "sk-example-fake"}
JSON
"$VENV/bin/python" -m tests.fakes.openai_server "$WORK/config.json" > "$WORK/server.out" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q '^PORT ' "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
PORT="$(sed -n 's/^PORT //p' "$WORK/server.out")"
[ -n "$PORT" ] || { echo "error: the fake provider did not start" >&2; exit 1; }
{
  echo "providers:"
  for p in openai anthropic google; do
    echo "  $p: {base_url: \"http://127.0.0.1:$PORT/v1\", api_key_env: EXAMPLE_FAKE_KEY, requests_per_minute: 60000, tokens_per_minute: 100000000, concurrency: 16}"
  done
} > "$WORK/providers.yaml"
export EXAMPLE_FAKE_KEY=sk-example-fake

if [ -f "$KEY" ]; then
  SIGN=(--key "$KEY")
else
  echo "warning: no evaluator key at $KEY: writing UNSIGNED evidence" >&2
  SIGN=(--unsigned)
fi
run() {  # run OUT ARGS...: one bets run against the fake provider
  local out="$1"; shift
  "$VENV/bin/modelpin" bets run --repo "$ROOT" --providers "$WORK/providers.yaml" \
    --now "$NOW" "${SIGN[@]}" --out "$WORK/$out" "$@"
}
run inflight --all                                            # every rollout in flight
run harbor --tenant harbor-bank --candidate gpt-5-2026-09-14  # rolled back: its evidence stays

for out in inflight harbor; do
  (cd "$WORK/$out/evidence" && find . -type f) | while read -r rel; do
    rel="${rel#./}"
    stem="${rel%.dsse.json}"; stem="${stem%.json}"
    rm -f "evidence/$stem.json" "evidence/$stem.dsse.json"
    mkdir -p "evidence/$(dirname "$rel")"
    cp "$WORK/$out/evidence/$rel" "evidence/$rel"
    echo "wrote evidence/$rel"
  done
done
cat "$WORK/inflight/report.md" "$WORK/harbor/report.md" > "$WORK/report.md"
echo "report: $(wc -l < "$WORK/report.md") lines (every failing case, expected vs got)"
"$VENV/bin/modelpin" validate --repo "$ROOT" | tail -1
