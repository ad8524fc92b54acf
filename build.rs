//! Records the source revision for `posterior-lab --version`: `POSTERIOR_LAB_REVISION` from the
//! environment (packagers building from a tarball set it), else `git rev-parse` of the checkout,
//! else "unknown revision".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=POSTERIOR_LAB_REVISION");
    for f in [".git/HEAD", ".git/packed-refs"] {
        println!("cargo:rerun-if-changed={f}");
    }
    // The branch file HEAD points at moves on every commit.
    if let Ok(head) = std::fs::read_to_string(".git/HEAD")
        && let Some(r) = head.strip_prefix("ref: ")
    {
        println!("cargo:rerun-if-changed=.git/{}", r.trim());
    }
    let rev = std::env::var("POSTERIOR_LAB_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|r| !r.is_empty())
                .map(|r| format!("git {r}"))
        })
        .unwrap_or_else(|| "unknown revision".into());
    println!("cargo:rustc-env=POSTERIOR_LAB_REVISION={rev}");
}
