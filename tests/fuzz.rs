//! Every parser of user input against mutated inputs: none may panic, whatever the bytes.
//! A stable-Rust mutation fuzzer (cargo-fuzz needs nightly): seeds are the project's own files,
//! mutated by byte flips, insertions, deletions, duplications, splices between seeds, truncation
//! and "interesting" numbers (0, −1, 2^31, 2^32, 2^62, 2^64 − 1, 1e308, NaN) written over digit
//! runs, so headers, shapes and counts take hostile values.
//!
//! CI runs a short budget (`FUZZ_ITERS`, default 100,000 inputs per parser, a few seconds). The long run:
//! `FUZZ_ITERS=1000000 cargo test --release --test fuzz -- --nocapture --test-threads 5`.
#![allow(clippy::unwrap_used)]

use posterior_lab::priors::Gmm;
use posterior_lab::priors::network::ModelCard;
use posterior_lab::recipe::Recipe;
use posterior_lab::{npy, train};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

fn iterations() -> usize {
    std::env::var("FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

const INTERESTING: [&str; 12] = [
    "0",
    "-1",
    "1",
    "2147483648",
    "4294967296",
    "4611686018427387904",
    "18446744073709551615",
    "99999999999999999999999",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
];

fn mutate(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..5) {
        let len = v.len();
        match rng.random_range(0..8) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let i = rng.random_range(0..=len);
                let n = rng.random_range(1..9);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                v.splice(i..i, bytes);
            }
            2 if len > 0 => {
                let a = rng.random_range(0..len);
                let b = (a + rng.random_range(1..32)).min(len);
                v.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.random_range(0..len);
                let b = (a + rng.random_range(1..64)).min(len);
                let chunk = v[a..b].to_vec();
                let at = rng.random_range(0..=v.len());
                v.splice(at..at, chunk);
            }
            4 => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                if !other.is_empty() && len > 0 {
                    let a = rng.random_range(0..len);
                    let b = rng.random_range(0..other.len());
                    v.truncate(a);
                    v.extend_from_slice(&other[b..]);
                }
            }
            5 if len > 0 => v.truncate(rng.random_range(0..len)),
            _ => {
                // An interesting number over a run of digits.
                let digits: Vec<usize> = (0..len).filter(|&i| v[i].is_ascii_digit()).collect();
                if let Some(&start) = digits.get(rng.random_range(0..digits.len().max(1))) {
                    let mut end = start;
                    while end < v.len() && (v[end].is_ascii_digit() || v[end] == b'.') {
                        end += 1;
                    }
                    let n = INTERESTING[rng.random_range(0..INTERESTING.len())];
                    v.splice(start..end, n.bytes());
                }
            }
        }
    }
    v
}

/// Feeds `iterations()` mutated inputs to `parse`; fails on the first panic with the input.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, seed: u64, parse: impl Fn(&[u8]) -> bool) {
    assert!(!seeds.is_empty());
    // Panics are expected to be caught here; keep the log readable.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = StdRng::seed_from_u64(seed);
    let n = iterations();
    let mut accepted = 0usize;
    let mut failure = None;
    let t0 = std::time::Instant::now();
    for i in 0..n {
        let input = mutate(&mut rng, &seeds);
        match catch_unwind(AssertUnwindSafe(|| parse(&input))) {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => {
                failure = Some((i, input));
                break;
            }
        }
    }
    std::panic::set_hook(hook);
    if let Some((i, input)) = failure {
        panic!(
            "{name}: input {i} panicked the parser: {:?}",
            String::from_utf8_lossy(&input)
        );
    }
    eprintln!(
        "{name}: {n} mutated inputs, {accepted} accepted, 0 panics ({:.1} s)",
        t0.elapsed().as_secs_f64()
    );
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &str, ext: &str) -> Vec<Vec<u8>> {
    let mut out = vec![];
    for e in std::fs::read_dir(root().join(dir)).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == ext) {
            out.push(std::fs::read(&p).unwrap());
        }
    }
    out
}

#[test]
fn npy_parser_never_panics() {
    let mut seeds = files("assets/recipes", "npy");
    let dir = std::env::temp_dir().join(format!("pl-fuzz-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, shape) in [vec![3], vec![2, 3], vec![1, 2, 2, 2]].iter().enumerate() {
        let n: usize = shape.iter().product();
        let p = dir.join(format!("{i}.npy"));
        npy::write(&p, shape, &vec![0.5; n]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        seeds.push(bytes.clone());
        // The same array as float64, int32 and Fortran order (header rewritten).
        let text = String::from_utf8_lossy(&bytes).to_string();
        for (from, to) in [("<f4", "<f8"), ("<f4", "<i4"), ("False", "True ")] {
            seeds.push(text.replacen(from, to, 1).into_bytes());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    fuzz("npy", seeds, 1, |b| npy::parse(b).is_ok());
}

#[test]
fn recipe_parser_never_panics() {
    let seeds = files("assets/recipes", "ron")
        .into_iter()
        .filter(|t| String::from_utf8_lossy(t).contains("sampler"))
        .collect();
    fuzz("recipe", seeds, 2, |b| {
        Recipe::parse(&String::from_utf8_lossy(b)).is_ok()
    });
}

#[test]
fn mixture_parser_never_panics() {
    // Small mixtures: the parser and the checks are the same at any d, and the shipped 8×8
    // file's eigendecompositions would make a million inputs take half an hour.
    let seeds: Vec<Vec<u8>> = vec![
        b"(weights: [0.2, 0.3, 0.5], means: [[0.0, 1.0, 2.0, 3.0], [1.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0]], covariances: [[[1.0, 0.1, 0.0, 0.0], [0.1, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.3], [0.0, 0.0, 0.3, 1.0]], [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]], [[0.5, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.5]]])".to_vec(),
        b"(weights: [0.5, 0.5], means: [[0.0, 1.0], [1.0, 0.0]], variances: [[0.1, 0.2], [0.3, 0.4]])".to_vec(),
        b"(weights: [1.0], means: [[0.0, 1.0]], covariances: [[[1.0, 0.5], [0.5, 1.0]]])".to_vec(),
    ];
    fuzz("mixture", seeds, 3, |b| {
        Gmm::parse(&String::from_utf8_lossy(b)).is_ok()
    });
}

#[test]
fn model_card_parser_never_panics() {
    let mut seeds = vec![];
    for e in std::fs::read_dir(root().join("models")).unwrap() {
        let p = e.unwrap().path().join("card.ron");
        if p.is_file() {
            seeds.push(std::fs::read(&p).unwrap());
        }
    }
    fuzz("model card", seeds, 4, |b| {
        ModelCard::parse(&String::from_utf8_lossy(b), Path::new("card.ron")).is_ok()
    });
}

#[test]
fn idx_parser_never_panics() {
    let mut seed = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3];
    seed.extend((0..18).map(|i| i as u8 * 10));
    fuzz("idx", vec![seed], 5, |b| {
        train::data::parse_idx_images(b).is_ok()
    });
}
