#!/usr/bin/env bash
# Fuzzes the edge's REST API from its own OpenAPI document with schemathesis:
# starts a whole shop (`bazaar up` on a free port, fresh data directory),
# seeds it, and runs bounded property-based tests as an admin, checking that
# nothing answers 5xx and that every 4xx is application/problem+json. The
# shop is always stopped. Needs the debug binaries (`cargo build --bins`).
#
#   tests/schemathesis/run.sh               # defaults below
#   MAX_EXAMPLES=50 tests/schemathesis/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
BAZAAR="${CARGO_TARGET_DIR:-$ROOT/target}/debug/bazaar"
TOOLS="$ROOT/.tools/schemathesis"
MAX_EXAMPLES="${MAX_EXAMPLES:-100}"

if [ ! -x "$BAZAAR" ]; then
    echo "missing $BAZAAR: run cargo build --workspace --bins first" >&2
    exit 2
fi
if ! PYTHONPATH="$TOOLS" python3 -c "import schemathesis" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS" schemathesis
fi

DATA="$(mktemp -d -t bazaar-schemathesis-XXXXXX)"
UP_PID=""
stop_shop() {
    if [ -n "$UP_PID" ] && kill -0 "$UP_PID" 2>/dev/null; then
        kill -INT "$UP_PID" 2>/dev/null || true
        for _ in $(seq 1 30); do
            kill -0 "$UP_PID" 2>/dev/null || break
            sleep 1
        done
        kill -KILL "$UP_PID" 2>/dev/null || true
        wait "$UP_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA"
}
trap stop_shop EXIT INT TERM

"$BAZAAR" up --data-dir "$DATA" --http-addr 127.0.0.1:0 >"$DATA.up.log" 2>&1 &
UP_PID=$!
URL=""
for _ in $(seq 1 120); do
    if [ -f "$DATA/up.json" ]; then
        URL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http_url"])' "$DATA/up.json" 2>/dev/null || true)"
        if [ -n "$URL" ] && curl -fsS -o /dev/null "$URL/readyz" 2>/dev/null; then
            break
        fi
    fi
    kill -0 "$UP_PID" 2>/dev/null || { echo "bazaar up exited:" >&2; cat "$DATA.up.log" >&2; exit 1; }
    URL=""
    sleep 1
done
if [ -z "$URL" ]; then
    echo "the shop did not become ready; bazaar up said:" >&2
    cat "$DATA.up.log" >&2
    exit 1
fi
rm -f "$DATA.up.log"
echo "shop at $URL"

"$BAZAAR" seed --data-dir "$DATA" >/dev/null
TOKEN="$("$BAZAAR" token --customer fuzz --admin --data-dir "$DATA")"

# The streaming endpoint never ends by design, so it is left out. It runs
# in the data directory, where its cache (.schemathesis/) is removed with it.
set +e
cd "$DATA"
SCHEMATHESIS_HOOKS="$ROOT/tests/schemathesis/hooks.py" PYTHONPATH="$TOOLS" timeout 300 \
    python3 -m schemathesis.cli --no-color run "$URL/api/openapi.json" \
    --url "$URL" \
    --header "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,problem_json_on_4xx \
    --exclude-path-regex '/updates$' \
    --max-examples "$MAX_EXAMPLES" \
    --max-response-time 10 \
    --request-timeout 15 \
    --generation-deterministic
status=$?
set -e
cd "$ROOT"
exit "$status"
