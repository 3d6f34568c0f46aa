//! Local capture devices (V4L2), without GStreamer types: device ids (stable `/dev/v4l/by-id`
//! names), GStreamer caps descriptions parsed into typed capture modes, and the choice of the mode
//! a capture event uses. `devices` (feature `gst`) feeds this from GStreamer's `DeviceMonitor`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where udev puts the stable names of V4L2 devices.
pub const BY_ID_DIR: &str = "/dev/v4l/by-id";

/// A capture device's id: its `/dev/v4l/by-id` name (stable across reboots and ports), or
/// `videoN` for a device udev gave no such name. Validated once: no path separators, so it only
/// ever names something inside the two device directories.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CaptureDeviceId(String);

impl CaptureDeviceId {
    /// Accepts a by-id name, `videoN`, or either as a full path (`/dev/v4l/by-id/NAME`,
    /// `/dev/videoN`); the id is the name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let name = s
            .strip_prefix(BY_ID_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .or_else(|| s.strip_prefix("/dev/").filter(|r| is_video_node(r)))
            .unwrap_or(s);
        let ok = !name.is_empty()
            && name.len() <= 200
            && !name.starts_with('.')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:+@".contains(&b));
        if !ok {
            return Err(format!(
                "'{s}' is not a capture device id: use a name from GET /edge/v1/captureDevices (a /dev/v4l/by-id name such as usb-046d_HD_Pro_Webcam_C920-video-index0, or video0)."
            ));
        }
        Ok(CaptureDeviceId(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The device node: `<dev>/videoN` for a `videoN` id, else `<by_id>/<id>` (a symlink).
    pub fn path_in(&self, dev: &Path, by_id: &Path) -> PathBuf {
        if is_video_node(&self.0) { dev.join(&self.0) } else { by_id.join(&self.0) }
    }

    /// [`CaptureDeviceId::path_in`] for the real `/dev`.
    pub fn path(&self) -> PathBuf {
        self.path_in(Path::new("/dev"), Path::new(BY_ID_DIR))
    }
}

impl TryFrom<String> for CaptureDeviceId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        CaptureDeviceId::parse(&s)
    }
}

impl From<CaptureDeviceId> for String {
    fn from(id: CaptureDeviceId) -> String {
        id.0
    }
}

impl std::fmt::Display for CaptureDeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_video_node(name: &str) -> bool {
    name.strip_prefix("video").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The stable names of the device nodes: canonical node path → by-id name (the first name in
/// sort order when several point at one node). A missing directory (no udev, no device) is empty.
pub fn by_id_names(by_id: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(by_id) else { return out };
    let mut entries: Vec<(String, PathBuf)> =
        rd.flatten().filter_map(|e| Some((e.file_name().into_string().ok()?, e.path()))).collect();
    entries.sort();
    for (name, link) in entries {
        if CaptureDeviceId::parse(&name).is_err() {
            continue;
        }
        if let Ok(node) = std::fs::canonicalize(&link) {
            out.entry(node).or_insert(name);
        }
    }
    out
}

/// The id of a device node: its by-id name if it has one, else `videoN`.
pub fn id_for_node(node: &Path, names: &BTreeMap<PathBuf, String>) -> Option<CaptureDeviceId> {
    let canonical = std::fs::canonicalize(node).unwrap_or_else(|_| node.to_path_buf());
    if let Some(n) = names.get(&canonical) {
        return CaptureDeviceId::parse(n).ok();
    }
    CaptureDeviceId::parse(node.file_name()?.to_str()?).ok()
}

/// A pixel format a device delivers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PixelFormat {
    /// Uncompressed (`video/x-raw`), GStreamer's format name (`YUY2`, `NV12`, ...).
    Raw(String),
    /// Motion JPEG (`image/jpeg`): decoded with `jpegdec`.
    Mjpeg,
}

impl PixelFormat {
    /// The caps media type and format field of this format.
    pub fn caps_prefix(&self) -> String {
        match self {
            PixelFormat::Raw(f) => format!("video/x-raw,format={f}"),
            PixelFormat::Mjpeg => "image/jpeg".to_owned(),
        }
    }
    pub fn label(&self) -> &str {
        match self {
            PixelFormat::Raw(f) => f,
            PixelFormat::Mjpeg => "MJPEG",
        }
    }
}

/// A frame rate as a fraction (frames per `den` seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub num: u32,
    pub den: u32,
}

impl Rate {
    pub fn fps(self) -> f64 {
        if self.den == 0 { 0.0 } else { f64::from(self.num) / f64::from(self.den) }
    }
}

/// Sizes a mode offers: one, or a continuous range (loopback devices, some capture cards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Sizes {
    Fixed { width: u32, height: u32 },
    Range { min_width: u32, max_width: u32, min_height: u32, max_height: u32 },
}

/// Frame rates a mode offers: a list, or a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Rates {
    List { rates: Vec<Rate> },
    Range { min: Rate, max: Rate },
}

/// One capture mode: a format, its sizes and frame rates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureMode {
    pub format: PixelFormat,
    pub sizes: Sizes,
    pub rates: Rates,
}

/// Parses a GStreamer caps description (`Caps::to_string()`: structures separated by `;`, or one
/// structure per line as `gst-device-monitor-1.0` prints them) into the raw and MJPEG modes.
/// Other media types (H.264 from UVC 1.5 cameras, Bayer) and unparseable structures are skipped;
/// a structure with a list of formats becomes one mode per format.
pub fn parse_caps(desc: &str) -> Vec<CaptureMode> {
    let mut out = Vec::new();
    for structure in split_top(desc, &[';', '\n']) {
        let fields = split_top(structure, &[',']);
        let Some((media, rest)) = fields.split_first() else { continue };
        // `video/x-raw(memory:DMABuf)`: the caps features do not change what we ask for.
        let media = media.split('(').next().unwrap_or("").trim();
        let mut map = BTreeMap::new();
        for f in rest {
            if let Some((k, v)) = f.split_once('=') {
                map.insert(k.trim(), strip_type(v.trim()));
            }
        }
        let formats: Vec<PixelFormat> = match media {
            "video/x-raw" => match map.get("format") {
                Some(v) => values(v).into_iter().map(PixelFormat::Raw).collect(),
                None => continue,
            },
            "image/jpeg" => vec![PixelFormat::Mjpeg],
            _ => continue,
        };
        let (Some(w), Some(h)) = (map.get("width").and_then(|v| ints(v)), map.get("height").and_then(|v| ints(v)))
        else {
            continue;
        };
        let sizes = match (w, h) {
            (IntSpec::One(width), IntSpec::One(height)) => Sizes::Fixed { width, height },
            (w, h) => {
                let (a, b) = w.bounds();
                let (c, d) = h.bounds();
                Sizes::Range { min_width: a, max_width: b, min_height: c, max_height: d }
            }
        };
        let Some(rates) = map.get("framerate").and_then(|v| rates(v)) else { continue };
        for format in formats {
            out.push(CaptureMode { format, sizes, rates: rates.clone() });
        }
    }
    out
}

/// Splits at the separators outside `{}`, `[]`, `()` and quotes; trims; drops empty pieces.
fn split_top<'a>(s: &'a str, seps: &[char]) -> Vec<&'a str> {
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    let mut out = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '{' | '[' | '(' if !quoted => depth += 1,
            '}' | ']' | ')' if !quoted => depth -= 1,
            c if depth == 0 && !quoted && seps.contains(&c) => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// `(string)YUY2` → `YUY2`.
fn strip_type(v: &str) -> &str {
    match v.strip_prefix('(').and_then(|r| r.split_once(')')) {
        Some((_, rest)) => rest.trim(),
        None => v,
    }
}

/// The items of `{ a, b }` or `< a, b >`, or the one value.
fn values(v: &str) -> Vec<String> {
    let inner = v
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| v.strip_prefix('<').and_then(|r| r.strip_suffix('>')));
    match inner {
        Some(i) => split_top(i, &[',']).into_iter().map(|x| strip_type(x).trim_matches('"').to_owned()).collect(),
        None => vec![v.trim_matches('"').to_owned()],
    }
}

enum IntSpec {
    One(u32),
    List(Vec<u32>),
    Range(u32, u32),
}

impl IntSpec {
    fn bounds(&self) -> (u32, u32) {
        match self {
            IntSpec::One(v) => (*v, *v),
            IntSpec::List(l) => (l.iter().copied().min().unwrap_or(0), l.iter().copied().max().unwrap_or(0)),
            IntSpec::Range(a, b) => (*a, *b),
        }
    }
}

fn ints(v: &str) -> Option<IntSpec> {
    if let Some(r) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let parts: Vec<u32> = r.split(',').map(|p| p.trim().parse().ok()).collect::<Option<_>>()?;
        return (parts.len() >= 2).then(|| IntSpec::Range(parts[0], parts[1]));
    }
    if v.starts_with('{') {
        let l: Vec<u32> = values(v).iter().map(|x| x.parse().ok()).collect::<Option<_>>()?;
        return Some(IntSpec::List(l));
    }
    v.parse().ok().map(IntSpec::One)
}

fn rate(v: &str) -> Option<Rate> {
    let v = strip_type(v.trim());
    let (n, d) = v.split_once('/').unwrap_or((v, "1"));
    Some(Rate { num: n.trim().parse().ok()?, den: d.trim().parse().ok()? })
}

fn rates(v: &str) -> Option<Rates> {
    if let Some(r) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let (a, b) = r.split_once(',')?;
        return Some(Rates::Range { min: rate(a)?, max: rate(b)? });
    }
    let list: Vec<Rate> = values(v).iter().map(|x| rate(x)).collect::<Option<_>>()?;
    Some(Rates::List { rates: list })
}

/// A capture device as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureDevice {
    pub id: CaptureDeviceId,
    /// The device node (`/dev/videoN`).
    pub path: String,
    /// The card name the driver reports (e.g. "HD Pro Webcam C920").
    pub name: String,
    pub driver: Option<String>,
    pub bus: Option<String>,
    pub capabilities: Vec<CaptureMode>,
}

/// What the device layer reports about one node before ids are assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDevice {
    pub path: String,
    pub name: String,
    pub driver: Option<String>,
    pub bus: Option<String>,
    pub caps: String,
}

/// Devices with their stable ids and parsed modes, ordered by id. Nodes without a raw or MJPEG
/// mode (metadata nodes, encoders) are left out.
pub fn assemble(raw: Vec<RawDevice>, names: &BTreeMap<PathBuf, String>) -> Vec<CaptureDevice> {
    let mut out: Vec<CaptureDevice> = raw
        .into_iter()
        .filter_map(|d| {
            let capabilities = parse_caps(&d.caps);
            if capabilities.is_empty() {
                return None;
            }
            Some(CaptureDevice {
                id: id_for_node(Path::new(&d.path), names)?,
                path: d.path,
                name: d.name,
                driver: d.driver,
                bus: d.bus,
                capabilities,
            })
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    out
}

/// The mode a capture event asks the device for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selected {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub rate: Rate,
}

impl Selected {
    /// The caps to put after `v4l2src`.
    pub fn caps(&self) -> String {
        format!(
            "{},width={},height={},framerate={}/{}",
            self.format.caps_prefix(),
            self.width,
            self.height,
            self.rate.num,
            self.rate.den
        )
    }
}

/// A mode at this rate or above counts as smooth (PAL sources run at 25).
const MIN_SMOOTH_FPS: f64 = 24.9;

/// Raw formats `videoconvert` handles cheaply, best first; others rank after them.
const GOOD_RAW: &[&str] = &["NV12", "I420", "YV12", "YUY2", "UYVY"];

/// Picks the mode for a ladder whose top rung is `target` at `fps`: a smooth mode (25 fps or more)
/// beats a slower one; then the largest size that fits within the
/// target (the target itself best), else the smallest above it (scaled down by the ladder); then
/// raw before MJPEG (no decode), a cheap raw format before others; then the rate closest to `fps`.
pub fn select(modes: &[CaptureMode], target: (u32, u32), fps: u32) -> Option<Selected> {
    let (tw, th) = target;
    let mut best: Option<(Key, Selected)> = None;
    for m in modes {
        let (width, height) = match m.sizes {
            Sizes::Fixed { width, height } => (width, height),
            Sizes::Range { min_width, max_width, min_height, max_height } => {
                (tw.clamp(min_width, max_width.max(min_width)), th.clamp(min_height, max_height.max(min_height)))
            }
        };
        if width == 0 || height == 0 {
            continue;
        }
        let Some(rate) = pick_rate(&m.rates, fps) else { continue };
        let fast = rate.fps() >= MIN_SMOOTH_FPS;
        let fits = width <= tw && height <= th;
        let area = u64::from(width) * u64::from(height);
        let size_rank = if fits { area as i64 } else { -(area as i64) };
        let fmt_rank = match &m.format {
            PixelFormat::Raw(f) => GOOD_RAW.iter().position(|g| g == f).map_or(1, |p| 10 - p as i32) + 100,
            PixelFormat::Mjpeg => 50,
        };
        let closeness = -((rate.fps() - f64::from(fps)).abs() * 1000.0) as i64;
        let key = Key { fast, fits, size_rank, fmt_rank, closeness };
        let sel = Selected { format: m.format.clone(), width, height, rate };
        if best.as_ref().is_none_or(|(k, _)| key > *k) {
            best = Some((key, sel));
        }
    }
    best.map(|(_, s)| s)
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    fast: bool,
    fits: bool,
    size_rank: i64,
    fmt_rank: i32,
    closeness: i64,
}

/// The rate to ask for: `fps` itself when offered (or in range), else the lowest rate above it
/// (30000/1001 counts as 30), else the highest below it.
fn pick_rate(rates: &Rates, fps: u32) -> Option<Rate> {
    let want = f64::from(fps);
    match rates {
        Rates::Range { min, max } => {
            if min.fps() <= want && want <= max.fps() {
                Some(Rate { num: fps, den: 1 })
            } else if max.fps() < want {
                Some(*max)
            } else {
                Some(*min)
            }
        }
        Rates::List { rates } => {
            let valid = rates.iter().copied().filter(|r| r.den > 0 && r.num > 0);
            if let Some(exact) = valid.clone().find(|r| r.num == fps * r.den) {
                return Some(exact);
            }
            let above =
                valid.clone().filter(|r| r.fps() >= want * 0.999 - 0.05).min_by(|a, b| a.fps().total_cmp(&b.fps()));
            above.or_else(|| valid.max_by(|a, b| a.fps().total_cmp(&b.fps())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/capture").join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn ids_are_validated_and_normalised() {
        let id = CaptureDeviceId::parse("usb-046d_HD_Pro_Webcam_C920_A1B2C3D4-video-index0").unwrap();
        assert_eq!(id.path(), Path::new("/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_A1B2C3D4-video-index0"));
        assert_eq!(CaptureDeviceId::parse("/dev/v4l/by-id/usb-x-video-index0").unwrap().as_str(), "usb-x-video-index0");
        let v = CaptureDeviceId::parse("/dev/video2").unwrap();
        assert_eq!(v.as_str(), "video2");
        assert_eq!(v.path(), Path::new("/dev/video2"));
        for bad in ["", "../video0", "/etc/passwd", "/dev/sda", "a/b", ".hidden", "video0 ; rm", "usb\u{e9}"] {
            let e = CaptureDeviceId::parse(bad).unwrap_err();
            assert!(e.contains("GET /edge/v1/captureDevices"), "{bad}: {e}");
        }
        // Serde goes through the same check.
        assert!(serde_json::from_str::<CaptureDeviceId>("\"../x\"").is_err());
    }

    #[test]
    fn by_id_names_map_nodes_in_a_fake_dev() {
        let root = std::env::temp_dir().join(format!("edge-gst-byid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let by_id = root.join("v4l/by-id");
        std::fs::create_dir_all(&by_id).unwrap();
        for n in ["video0", "video1", "video2"] {
            std::fs::write(root.join(n), "").unwrap();
        }
        let link = |name: &str, target: &str| std::os::unix::fs::symlink(target, by_id.join(name)).unwrap();
        link("usb-046d_C920_A1B2-video-index0", "../../video0");
        link("usb-046d_C920_A1B2-video-index1", "../../video1");
        link("usb-zz_second_name-video-index0", "../../video0");
        link("usb-dangling-video-index0", "../../video9");
        let names = by_id_names(&by_id);
        assert_eq!(names.len(), 2, "{names:?}");
        let id = |n: &str| id_for_node(&root.join(n), &names).unwrap().as_str().to_owned();
        assert_eq!(id("video0"), "usb-046d_C920_A1B2-video-index0");
        assert_eq!(id("video1"), "usb-046d_C920_A1B2-video-index1");
        assert_eq!(id("video2"), "video2"); // no stable name: falls back to the node
        let id0 = CaptureDeviceId::parse(&id("video0")).unwrap();
        assert_eq!(
            std::fs::canonicalize(id0.path_in(&root, &by_id)).unwrap(),
            std::fs::canonicalize(root.join("video0")).unwrap()
        );
        assert!(by_id_names(&root.join("missing")).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn parses_a_uvc_webcam() {
        let modes = parse_caps(&data("uvc-c920.caps"));
        // The H.264 structures are skipped; YUY2 and MJPEG remain.
        assert!(
            modes
                .iter()
                .all(|m| matches!(&m.format, PixelFormat::Mjpeg) || m.format == PixelFormat::Raw("YUY2".into()))
        );
        let mjpeg_1080 = modes
            .iter()
            .find(|m| m.format == PixelFormat::Mjpeg && m.sizes == Sizes::Fixed { width: 1920, height: 1080 })
            .unwrap();
        match &mjpeg_1080.rates {
            Rates::List { rates } => {
                assert_eq!(rates[0], Rate { num: 30, den: 1 });
                assert!(rates.contains(&Rate { num: 15, den: 2 }));
            }
            r => panic!("{r:?}"),
        }
        // USB 2 bandwidth: raw 1080p is 5 fps, MJPEG 1080p is 30 fps; the MJPEG mode wins.
        let s = select(&modes, (1920, 1080), 30).unwrap();
        assert_eq!(
            s,
            Selected { format: PixelFormat::Mjpeg, width: 1920, height: 1080, rate: Rate { num: 30, den: 1 } }
        );
        assert_eq!(s.caps(), "image/jpeg,width=1920,height=1080,framerate=30/1");
        // For a 720p ladder: MJPEG 720p30 beats raw 720p at 10 fps.
        let s = select(&modes, (1280, 720), 30).unwrap();
        assert_eq!((s.format, s.width, s.height, s.rate.num), (PixelFormat::Mjpeg, 1280, 720, 30));
        // Raw at 640x480 30 fps is chosen for a small target: raw beats MJPEG at the same size and rate.
        let s = select(&modes, (640, 480), 30).unwrap();
        assert_eq!((s.format, s.width, s.height), (PixelFormat::Raw("YUY2".into()), 640, 480));
    }

    #[test]
    fn parses_an_hdmi_capture_card() {
        let modes = parse_caps(&data("hdmi-capture.caps"));
        let formats: std::collections::BTreeSet<&str> = modes.iter().map(|m| m.format.label()).collect();
        assert_eq!(formats.into_iter().collect::<Vec<_>>(), vec!["I420", "NV12", "YUY2"]);
        // 1080p60 is offered; a 30 fps ladder asks for 30/1, in NV12 (cheapest to convert).
        let s = select(&modes, (1920, 1080), 30).unwrap();
        assert_eq!(s.caps(), "video/x-raw,format=NV12,width=1920,height=1080,framerate=30/1");
        // A 720p ladder from a card that has 1280x720: that size, not 1080p.
        let s = select(&modes, (1280, 720), 30).unwrap();
        assert_eq!((s.width, s.height), (1280, 720));
    }

    #[test]
    fn parses_vivid() {
        let modes = parse_caps(&data("vivid.caps"));
        assert!(modes.len() >= 6, "{modes:?}");
        // vivid's webcam input: 1080p only up to 5 fps, 720p up to 12.5: smoothness before size, so
        // 640x480 at 25 fps (the largest smooth mode) rather than 1280x720 at 12.5.
        let s = select(&modes, (1920, 1080), 30).unwrap();
        assert_eq!((s.width, s.height, s.rate), (640, 480, Rate { num: 25, den: 1 }));
        // A small target gets its exact size at exactly 30.
        let s = select(&modes, (640, 360), 30).unwrap();
        assert_eq!((s.width, s.height, s.rate), (640, 360, Rate { num: 30, den: 1 }));
        assert_eq!(s.format, PixelFormat::Raw("NV12".into()));
    }

    #[test]
    fn ranges_and_features() {
        let modes = parse_caps(
            "video/x-raw(memory:DMABuf), format=(string){ YUY2, BGRx }, width=(int)[ 48, 4096 ], height=(int)[ 32, 2160 ], framerate=(fraction)[ 0/1, 60/1 ]; video/x-bayer, format=(string)rggb, width=(int)640, height=(int)480, framerate=(fraction)30/1",
        );
        assert_eq!(modes.len(), 2);
        assert_eq!(modes[0].sizes, Sizes::Range { min_width: 48, max_width: 4096, min_height: 32, max_height: 2160 });
        let s = select(&modes, (1280, 720), 30).unwrap();
        assert_eq!(s.caps(), "video/x-raw,format=YUY2,width=1280,height=720,framerate=30/1");
        // A range below the target: its largest size, at its highest rate under 30.
        let small = parse_caps(
            "image/jpeg, width=(int)[ 160, 800 ], height=(int)[ 120, 600 ], framerate=(fraction)[ 1/1, 25/1 ]",
        );
        let s = select(&small, (1920, 1080), 30).unwrap();
        assert_eq!((s.width, s.height, s.rate), (800, 600, Rate { num: 25, den: 1 }));
    }

    #[test]
    fn selection_edge_cases() {
        assert_eq!(select(&[], (1280, 720), 30), None);
        // Only larger than the target: the smallest above it.
        let big = parse_caps(
            "video/x-raw, format=(string)YUY2, width=(int)3840, height=(int)2160, framerate=(fraction)30/1; video/x-raw, format=(string)YUY2, width=(int)1920, height=(int)1080, framerate=(fraction)30/1",
        );
        assert_eq!(select(&big, (1280, 720), 30).map(|s| s.width), Some(1920));
        // 30000/1001 counts as 30 fps and is preferred over 60 when it is the closest.
        let ntsc = parse_caps(
            "video/x-raw, format=(string)UYVY, width=(int)1920, height=(int)1080, framerate=(fraction){ 60000/1001, 30000/1001 }",
        );
        assert_eq!(select(&ntsc, (1920, 1080), 30).unwrap().rate, Rate { num: 30000, den: 1001 });
        // Garbage is skipped, not a panic.
        assert!(parse_caps("video/x-raw, width=(int)abc; ;;; image/jpeg, width=(int)[ 1 ]; x").is_empty());
    }

    #[test]
    fn assemble_drops_nodes_without_modes_and_uses_stable_ids() {
        let mut names = BTreeMap::new();
        names.insert(PathBuf::from("/dev/video0"), "usb-cam-video-index0".to_owned());
        let raw = vec![
            RawDevice {
                path: "/dev/video1".into(),
                name: "metadata".into(),
                driver: None,
                bus: None,
                caps: String::new(),
            },
            RawDevice {
                path: "/dev/video0".into(),
                name: "Cam".into(),
                driver: Some("uvcvideo".into()),
                bus: Some("usb-0000:00:14.0-1".into()),
                caps: data("uvc-c920.caps"),
            },
        ];
        let d = assemble(raw, &names);
        assert_eq!(d.len(), 1);
        // /dev/video0 does not exist on a build machine, so the name map is matched on the literal path.
        assert_eq!(d[0].id.as_str(), "usb-cam-video-index0");
        let v = serde_json::to_value(&d[0]).unwrap();
        assert_eq!(v["capabilities"][0]["sizes"]["kind"], "fixed");
        assert_eq!(v["driver"], "uvcvideo");
    }
}
