#!/usr/bin/env bash
# Builds the packages for this platform into cargo's target folder's packages/ (or --out DIR):
#   Linux: a .deb (dpkg-deb) and a portable .tar.gz with the same layout (bin/ + share/).
# Usage: packaging/build.sh [--bin PATH] [--out DIR] [--no-validate]
#   --bin   use this release binary instead of building one (the test suite passes its own)
# The macOS and Windows packages are made by cargo-packager from packaging/Packager.toml in the
# release workflow (.github/workflows/release.yml); see packaging/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=""
OUT=""
VALIDATE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) BIN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --no-validate) VALIDATE=0; shift ;;
    *) echo "error: unknown argument $1 (use --bin PATH, --out DIR, --no-validate)" >&2; exit 1 ;;
  esac
done

case "$(uname -s)" in
  Linux) ;;
  *) echo "error: packaging/build.sh builds the Linux packages; macOS and Windows use cargo-packager (packaging/README.md)" >&2; exit 1 ;;
esac
command -v dpkg-deb >/dev/null || { echo "error: dpkg-deb is needed (apt install dpkg)" >&2; exit 1; }

# Where cargo puts its builds (CARGO_TARGET_DIR, a config's target-dir, or ./target).
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
[ -n "$TARGET_DIR" ] || TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[ -n "$OUT" ] || OUT="$TARGET_DIR/packages"
if [ -z "$BIN" ]; then
  cargo build --release
  BIN="$TARGET_DIR/release/posterior-lab"
fi
[ -x "$BIN" ] || { echo "error: $BIN is not an executable" >&2; exit 1; }

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
ARCH="$(dpkg --print-architecture 2>/dev/null || uname -m)"
ID="io.github.posterior_lab.PosteriorLab"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# One install tree, used by both packages: PREFIX/bin, PREFIX/share/...
stage_tree() {
  local prefix="$1"
  install -d "$prefix/bin" "$prefix/share/posterior-lab/models" \
    "$prefix/share/applications" "$prefix/share/metainfo" "$prefix/share/doc/posterior-lab" \
    "$prefix/share/icons/hicolor/scalable/apps"
  # Stripped: symbols are half the size and a user has no use for them.
  strip -o "$prefix/bin/posterior-lab" "$BIN" 2>/dev/null || cp "$BIN" "$prefix/bin/posterior-lab"
  chmod 755 "$prefix/bin/posterior-lab"
  # The shipped models: card, weights, and their documentation (no checkpoints, no configs).
  for m in models/*/; do
    m="${m%/}"
    [ -f "$m/card.ron" ] || continue
    local dst="$prefix/share/posterior-lab/models/$(basename "$m")"
    install -d "$dst"
    for f in "$m"/card.ron "$m"/*.bpk "$m"/README.md "$m"/denoising.md "$m"/samples.png; do
      [ -f "$f" ] && install -m 644 "$f" "$dst/"
    done
  done
  install -m 644 models/README.md "$prefix/share/doc/posterior-lab/MODELS.md"
  install -m 644 packaging/linux/$ID.desktop "$prefix/share/applications/$ID.desktop"
  install -m 644 packaging/linux/$ID.metainfo.xml "$prefix/share/metainfo/$ID.metainfo.xml"
  install -m 644 packaging/icons/posterior-lab.svg "$prefix/share/icons/hicolor/scalable/apps/$ID.svg"
  for s in 32 48 64 128 256; do
    install -d "$prefix/share/icons/hicolor/${s}x${s}/apps"
    install -m 644 "packaging/icons/posterior-lab-$s.png" "$prefix/share/icons/hicolor/${s}x${s}/apps/$ID.png"
  done
  install -m 644 README.md "$prefix/share/doc/posterior-lab/README.md"
  # Licences of everything bundled: the program, the photos and data inside it, the models.
  {
    echo "Posterior Lab $VERSION — licensed MIT OR Apache-2.0."
    echo
    echo "Bundled inside the program and its models (the training data of each model is listed"
    echo "in its card, share/posterior-lab/models/NAME/card.ron):"
    echo
    cat assets/LICENSES.md
  } > "$prefix/share/doc/posterior-lab/copyright"
}

# --- .deb ------------------------------------------------------------------------------------
ROOT="$WORK/deb"
stage_tree "$ROOT/usr"
install -d "$ROOT/DEBIAN"
SIZE_KB="$(du -sk "$ROOT/usr" | cut -f1)"
cat > "$ROOT/DEBIAN/control" <<EOF
Package: posterior-lab
Version: $VERSION
Architecture: $ARCH
Maintainer: The Posterior Lab developers <posterior-lab@users.noreply.github.com>
Installed-Size: $SIZE_KB
Depends: libc6, libgcc-s1, libvulkan1, libx11-6, libx11-xcb1, libxcursor1, libxrandr2, libxi6, libxkbcommon0, libxkbcommon-x11-0, libwayland-client0, libfontconfig1, libdbus-1-3
Recommends: mesa-vulkan-drivers
Section: graphics
Priority: optional
Homepage: https://github.com/posterior-lab/posterior-lab
Description: posterior sampling for image restoration with diffusion priors
 Restores degraded pictures (noise, missing pixels, low resolution, blur, lost
 colour) by sampling the posterior of a score-based prior, with live chains,
 their mean and a per-pixel uncertainty map; a command line on the same engine.
EOF
DEB="$OUT/posterior-lab_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz -z6 --build "$ROOT" "$DEB" >/dev/null

# --- portable archive ------------------------------------------------------------------------
NAME="posterior-lab-$VERSION-linux-$(uname -m)"
stage_tree "$WORK/$NAME"
cat > "$WORK/$NAME/README.txt" <<EOF
Posterior Lab $VERSION, portable build for Linux ($(uname -m)).
Run bin/posterior-lab (the window) or bin/posterior-lab --help (the command line).
Needs Vulkan for the GPU path (e.g. apt install libvulkan1 mesa-vulkan-drivers); without a GPU
it runs on the CPU backend. The shipped models are in share/posterior-lab/models; your own go
to ~/.local/share/posterior-lab/models (posterior-lab models --import DIR).
EOF
TGZ="$OUT/$NAME.tar.gz"
tar -C "$WORK" -czf "$TGZ" "$NAME"

if [ "$VALIDATE" = 1 ]; then
  if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$ROOT/usr/share/applications/$ID.desktop"
  else
    echo "note: desktop-file-validate not found (apt install desktop-file-utils): desktop entry not validated" >&2
  fi
  if command -v appstreamcli >/dev/null; then
    appstreamcli validate --no-net "$ROOT/usr/share/metainfo/$ID.metainfo.xml" >/dev/null
  else
    echo "note: appstreamcli not found (apt install appstream): metainfo not validated" >&2
  fi
fi

for f in "$DEB" "$TGZ"; do
  echo "$(du -h "$f" | cut -f1)  $f"
done
