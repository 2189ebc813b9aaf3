//! Links the `flotilla` executable at a fixed address (not position-independent) on Linux,
//! as Go links Docker's own binaries: the dynamic loader then has no relocations to apply
//! at start (about 27,000 otherwise, and a private copy of every page they touch). That
//! makes a short command such as `stack config` start about a tenth of a millisecond
//! sooner and use 0.6 MiB less. A static build (`crt-static`, the multi-host test image)
//! keeps the toolchain's default.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let static_crt = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|features| features.split(',').any(|f| f == "crt-static"));
    if linux && !static_crt {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
