//! Embeds `web/` in the binary: every file is gzipped here (once, at build time) so the console
//! is served precompressed, and gets a strong ETag. All of web/ is versioned by one content hash,
//! which `index.html` references as `__VERSION__`: every other file is served under
//! `/console/<hash>/...` and can be cached for a year.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).expect("read web/").map(|e| e.expect("dir entry").path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            if rel.ends_with(".md") {
                continue; // notes for maintainers, not served
            }
            out.push((rel, std::fs::read(&p).expect("read a web/ file")));
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn mime(rel: &str) -> &'static str {
    match rel.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let web = manifest.join("web");
    println!("cargo::rerun-if-changed=web");
    let mut files = Vec::new();
    walk(&web, &web, &mut files);

    let mut h = Sha256::new();
    for (rel, bytes) in &files {
        h.update(rel.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let version = hex(&h.finalize()[..6]);

    let gz_dir = out.join("console-gz");
    std::fs::create_dir_all(&gz_dir).unwrap();
    let mut table = String::new();
    table.push_str(&format!("pub const VERSION_HASH: &str = {version:?};\n"));
    table.push_str("pub static ASSETS: &[Asset] = &[\n");
    for (i, (rel, bytes)) in files.iter().enumerate() {
        let bytes = if rel == "index.html" {
            String::from_utf8(bytes.clone()).expect("index.html is UTF-8").replace("__VERSION__", &version).into_bytes()
        } else {
            bytes.clone()
        };
        // mtime 0 (GzEncoder's default header): the same sources give the same bytes.
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&bytes).unwrap();
        let gz = enc.finish().unwrap();
        let gz_path = gz_dir.join(format!("{i}.gz"));
        std::fs::write(&gz_path, &gz).unwrap();
        let etag = format!("\"{}\"", hex(&Sha256::digest(&bytes)[..10]));
        table.push_str(&format!(
            "    Asset {{ path: {rel:?}, mime: {:?}, gz: include_bytes!({:?}), etag: {etag:?}, len: {} }},\n",
            mime(rel),
            gz_path.to_string_lossy(),
            bytes.len()
        ));
    }
    table.push_str("];\n");
    std::fs::write(out.join("console_assets.rs"), table).unwrap();
}
