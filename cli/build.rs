//! Link settings of the `flotilla` executable on Linux (x86-64, linked by rust-lld):
//!
//! - At a fixed address (not position-independent), as Go links Docker's own binaries: the
//!   dynamic loader then has no relocations to apply at start (about 27,000 otherwise, and
//!   a private copy of every page they touch).
//! - The functions of a short command first, in the order `link-order.txt` lists them
//!   (made by `bench/stack-config/link-order`): grouped, they fill a few pages instead of
//!   touching pages all over a 14 MB text section. Names the linker no longer finds are
//!   skipped, so a stale list only loses the gain.
//!
//! Together they make a small `stack config` start sooner and map about 2.5 MiB less. A
//! static build (`crt-static`, the multi-host test image) keeps the toolchain's defaults.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link-order.txt");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let static_crt = var("CARGO_CFG_TARGET_FEATURE").split(',').any(|f| f == "crt-static");
    if var("TARGET") != "x86_64-unknown-linux-gnu" || static_crt {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-no-pie");
    let order = std::path::Path::new(&var("CARGO_MANIFEST_DIR")).join("link-order.txt");
    if order.is_file() {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
