//! Loads manifests and nothing else, for `bench/scan.sh`.
//!
//! usage: parse-only PATH... (`-` for standard input)

use std::time::Instant;

use rampart_manifest::Loader;

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: parse-only PATH... (`-` for standard input)");
        std::process::exit(2);
    }
    let started = Instant::now();
    let loaded = Loader::default().load_paths(&paths);
    let elapsed = started.elapsed().as_secs_f64();
    for issue in &loaded.issues {
        eprintln!("{issue}");
    }
    println!(
        "{} objects, {} issues, {} files in {elapsed:.3} s",
        loaded.manifests.len(),
        loaded.issues.len(),
        loaded.files
    );
}
