#!/usr/bin/env bash
# Starts the real window under a virtual X server with --autorun, waits, and saves a screenshot:
#   scripts/screenshot.sh [OUT.png] [SECONDS] [extra gui args...]
# Needs: xvfb xauth imagemagick (and the GUI runtime libraries of the README's install line).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/screenshot.png}
secs=${2:-25}
shift $(( $# > 2 ? 2 : $# )) || true
mkdir -p "$(dirname "$out")"
bin=target/release/posterior-lab
[ -x "$bin" ] || cargo build --release
log=$(mktemp)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
# The window process logs frame-time figures at exit (UI time per frame p50/p95).
xvfb-run -a -s "-screen 0 1400x900x24" bash -c "
  $bin gui --autorun $* >$log 2>&1 &
  pid=\$!
  sleep $secs
  import -window root '$out'
  kill -TERM \$pid 2>/dev/null || true
  wait \$pid 2>/dev/null || true
" || true
cat "$log"
rm -f "$log"
[ -s "$out" ] && echo "screenshot: $out" || { echo "no screenshot written" >&2; exit 1; }
