//! `include/frankly.h` is what cbindgen generates from the source now.

#![allow(clippy::unwrap_used)]

#[test]
fn the_checked_in_header_is_what_cbindgen_generates() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new().with_crate(dir).with_config(config).generate().unwrap().write(&mut generated);
    let path = format!("{dir}/include/frankly.h");
    if std::env::var_os("FRANKLY_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        String::from_utf8(generated).unwrap() == checked_in,
        "include/frankly.h is stale: regenerate it with FRANKLY_BLESS=1 cargo test -p frankly-ffi --test header"
    );
}
