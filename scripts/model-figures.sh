#!/usr/bin/env bash
# Regenerates the figures of a shipped model's card: denoising error per σ on held-out images
# (against the identity) and a grid of unconditional samples.
#   scripts/model-figures.sh fashion-mnist assets/heldout/fashion-t10k-last256.npy assets/recipes/fashion-prior.ron
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; heldout=$2; prior_recipe=$3
bin=target/release/posterior-lab
[ -x "$bin" ] || cargo build --release
"$bin" eval-model --backend cpu --model "models/$name" --data "$heldout" --count 256 > "models/$name/denoising.md"
cat "models/$name/denoising.md"
out=$(mktemp -d)
"$bin" sample --quiet --backend cpu --recipe "$prior_recipe" --out "$out/prior"
cp "$out/prior/samples.png" "models/$name/samples.png"
# Bigger grid for a person to look at (nearest-neighbour ×4).
if command -v convert >/dev/null; then
  convert "models/$name/samples.png" -filter point -resize 400% "models/$name/samples-x4.png"
fi
rm -rf "$out"
echo "wrote models/$name/denoising.md and samples.png"
