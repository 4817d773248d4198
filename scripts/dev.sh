#!/usr/bin/env bash
# The two set-up commands of the README:
#   scripts/dev.sh serve [args...]  build everything and serve every component (the main job)
#   scripts/dev.sh test  [args...]  build everything and run every test
# Each installs what is missing on a fresh Debian machine that has only Rust: the
# wasm32-wasip2 rustup target, and redis-server (apt) when it is not on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; exit 1; fi
}

ensure_tools() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "==> installing the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "==> installing redis-server (apt)"
    need_root apt-get update -qq
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
    # Debian starts a system-wide instance; redwasm runs its own, so stop that one.
    need_root systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  serve)
    ensure_tools
    exec cargo run --release -p redwasm-host --bin redwasm -- serve "$@"
    ;;
  test)
    ensure_tools
    exec cargo test --workspace "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh serve|test [args...]" >&2
    exit 2
    ;;
esac
