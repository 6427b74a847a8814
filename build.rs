//! Stamps the build with what `infobip_billing_exporter_build_info` reports: the git revision
//! and the compiler. A few lines here instead of a build-dependency: the Docker build context has
//! no `.git`, so the revision comes from `INFOBIP_EXPORTER_REVISION` there (a build argument).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=INFOBIP_EXPORTER_REVISION");
    let revision = std::env::var("INFOBIP_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BUILD_REVISION={}", revision.trim());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output(Command::new(rustc).arg("--version"))
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BUILD_RUSTC_VERSION={version}");
}

/// `HEAD`'s commit, and a rerun when it moves. `--git-path` finds the files of a worktree too;
/// only files that exist are named, since cargo reruns every time for one that does not.
fn git_revision() -> Option<String> {
    let head = git(&["rev-parse", "--git-path", "HEAD"])?;
    let branch = std::fs::read_to_string(&head)
        .ok()
        .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_owned()));
    let watched = [
        Some(head),
        branch.and_then(|r| git(&["rev-parse", "--git-path", &r])),
    ];
    let packed = git(&["rev-parse", "--git-path", "packed-refs"]);
    for path in watched.into_iter().chain([packed]).flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}

fn git(args: &[&str]) -> Option<String> {
    output(Command::new("git").args(args))
}

fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}
