//! The appliance configuration: one commented TOML file (the shipped sample is
//! `rootfs/etc/rms-edge/config.toml`), every key overridable by a command-line flag of the same
//! name. Precedence: built-in defaults < the file < flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/rms-edge/config.toml";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    pub https_addr: SocketAddr,
    pub rtmp_addr: SocketAddr,
    pub rtmps_addr: SocketAddr,
    pub srt_addr: SocketAddr,
    pub rtsp_addr: SocketAddr,
    /// host[:port] players and encoders use; empty = the machine's primary address.
    pub public_host: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub account_name: String,
    /// An extra accepted API key (e.g. provisioned at the factory); empty = none.
    pub api_key: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `location` reported for resources created without one the appliance can echo.
    pub location: String,
    /// Lifetime of the JWTs `POST /auth/token` issues, in seconds.
    pub token_lifetime_secs: u64,
    /// An encoder that sends no media for this long is disconnected.
    pub ingest_idle_timeout_secs: u64,
    /// A live event stops itself after running this long (RMS: 12 h).
    pub event_max_duration_secs: u64,
    /// tracing filter, e.g. `info` or `info,edge_api=debug`.
    pub log_level: String,
    /// Archive sync targets by storage account name (`[storage.<name>]` tables).
    pub storage: BTreeMap<String, StorageTarget>,
    /// The storage account of assets created without `storageAccountName`; empty = their
    /// archives stay on the appliance only.
    pub default_storage: String,
    /// Upload bandwidth cap in Mbit/s (0 = unlimited).
    pub upload_max_mbps: f64,
    /// Daily window (UTC, "HH:MM-HH:MM", may wrap midnight) in which the cap does not apply;
    /// empty = the cap always applies.
    pub upload_unlimited_window: String,
    /// Files larger than this are uploaded in parts of this size (block / multipart upload),
    /// resumable part by part. S3 needs at least 5 MiB.
    pub upload_part_size_kib: u64,
    /// When free space on the data partition falls below this, the oldest archives that are
    /// already synced are deleted; with nothing left to delete, new recordings are refused.
    /// 0 = never delete.
    pub disk_min_free_percent: f64,
    /// Low latency (`streamOptions` LowLatency / LowLatencyV2): the CMAF part target in
    /// milliseconds (LL-HLS `PART-TARGET`, DASH chunk duration). 100–2000.
    pub ll_part_target_ms: u64,
}

/// Where the archives of one storage account name go.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct StorageTarget {
    /// "azure", "s3" or "dir".
    pub kind: String,
    /// Azure: the storage account.
    pub account: String,
    /// Azure: the blob container.
    pub container: String,
    /// Azure: an account key (base64) ...
    pub key: String,
    /// ... or a SAS token (query string, with or without the leading '?').
    pub sas: String,
    /// Azure / S3: endpoint override (an emulator, a sovereign cloud, MinIO). For Azure it is
    /// the account URL, e.g. `http://127.0.0.1:10000/devstoreaccount1` for Azurite.
    pub endpoint: String,
    /// S3: bucket and region.
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// S3: allow a plain-http endpoint.
    pub allow_http: bool,
    /// dir: a local or mounted directory.
    pub path: String,
    /// Public base URL of the copy (e.g. a CDN in front of the container); empty = the
    /// endpoint's own URL.
    pub public_url: String,
}

impl Eq for Config {}

impl StorageTarget {
    fn validate(&self, name: &str) -> Result<(), String> {
        let need = |k: &str, v: &str| {
            if v.is_empty() { Err(format!("[storage.{name}]: kind = \"{}\" needs '{k}'", self.kind)) } else { Ok(()) }
        };
        match self.kind.as_str() {
            "azure" => {
                need("account", &self.account)?;
                need("container", &self.container)?;
                if self.key.is_empty() == self.sas.is_empty() {
                    return Err(format!("[storage.{name}]: kind = \"azure\" needs exactly one of 'key' or 'sas'"));
                }
            }
            "s3" => {
                need("bucket", &self.bucket)?;
                need("region", &self.region)?;
                if self.access_key_id.is_empty() != self.secret_access_key.is_empty() {
                    return Err(format!("[storage.{name}]: 'access-key-id' and 'secret-access-key' go together"));
                }
            }
            "dir" => need("path", &self.path)?,
            "" => return Err(format!("[storage.{name}]: 'kind' is required (\"azure\", \"s3\" or \"dir\")")),
            k => return Err(format!("[storage.{name}]: unknown kind \"{k}\" (use \"azure\", \"s3\" or \"dir\")")),
        }
        Ok(())
    }
}

/// A daily UTC window "HH:MM-HH:MM" as minutes since midnight; `start > end` wraps midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyWindow {
    pub start_min: u32,
    pub end_min: u32,
}

impl std::fmt::Display for DailyWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b) = (self.start_min, self.end_min);
        write!(f, "{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60)
    }
}

impl DailyWindow {
    pub fn parse(s: &str) -> Result<DailyWindow, String> {
        let hm = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
        };
        let bad = || format!("'{s}' is not a window like \"18:00-09:00\"");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (start_min, end_min) = (hm(a).ok_or_else(bad)?, hm(b).ok_or_else(bad)?);
        if start_min == end_min {
            return Err(format!("'{s}' is an empty window"));
        }
        Ok(DailyWindow { start_min, end_min })
    }

    /// Whether minute-of-day `m` (UTC) is inside the window.
    pub fn contains(&self, m: u32) -> bool {
        if self.start_min < self.end_min {
            (self.start_min..self.end_min).contains(&m)
        } else {
            m >= self.start_min || m < self.end_min
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/data/rms-edge"),
            http_addr: "0.0.0.0:80".parse().unwrap(),
            https_addr: "0.0.0.0:443".parse().unwrap(),
            rtmp_addr: "0.0.0.0:1935".parse().unwrap(),
            rtmps_addr: "0.0.0.0:2935".parse().unwrap(),
            srt_addr: "0.0.0.0:8890".parse().unwrap(),
            rtsp_addr: "0.0.0.0:554".parse().unwrap(),
            public_host: String::new(),
            subscription_id: "00000000-0000-0000-0000-000000000000".into(),
            resource_group: "rms-edge".into(),
            account_name: "edge".into(),
            api_key: String::new(),
            tls_cert: None,
            tls_key: None,
            location: "Local".into(),
            token_lifetime_secs: 3600,
            ingest_idle_timeout_secs: 30,
            event_max_duration_secs: 12 * 3600,
            log_level: "info".into(),
            storage: BTreeMap::new(),
            default_storage: String::new(),
            upload_max_mbps: 0.0,
            upload_unlimited_window: String::new(),
            upload_part_size_kib: 8192,
            disk_min_free_percent: 10.0,
            ll_part_target_ms: 334,
        }
    }
}

/// The site file in the data directory, overlaid on the main file.
pub const SITE_CONFIG_NAME: &str = "config.toml";

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse { path: path.to_owned(), source: Box::new(e) })
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid value for --{key}: {why}")]
    Flag { key: &'static str, why: String },
    #[error("{0}")]
    Invalid(String),
}

/// Flags that override the file, one per key (`--data-dir`, `--http-addr`, ...).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// Configuration file [default: /etc/rms-edge/config.toml if it exists]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_name = "ADDR", global = true)]
    pub http_addr: Option<String>,
    #[arg(long, value_name = "ADDR", global = true)]
    pub https_addr: Option<String>,
    #[arg(long, value_name = "ADDR", global = true)]
    pub rtmp_addr: Option<String>,
    #[arg(long, value_name = "ADDR", global = true)]
    pub rtmps_addr: Option<String>,
    #[arg(long, value_name = "ADDR", global = true)]
    pub srt_addr: Option<String>,
    #[arg(long, value_name = "ADDR", global = true)]
    pub rtsp_addr: Option<String>,
    #[arg(long, value_name = "HOST[:PORT]", global = true)]
    pub public_host: Option<String>,
    #[arg(long, value_name = "ID", global = true)]
    pub subscription_id: Option<String>,
    #[arg(long, value_name = "NAME", global = true)]
    pub resource_group: Option<String>,
    #[arg(long, value_name = "NAME", global = true)]
    pub account_name: Option<String>,
    #[arg(long, value_name = "KEY", global = true)]
    pub api_key: Option<String>,
    #[arg(long, value_name = "FILE", global = true)]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE", global = true)]
    pub tls_key: Option<PathBuf>,
    #[arg(long, global = true)]
    pub location: Option<String>,
    #[arg(long, value_name = "SECONDS", global = true)]
    pub token_lifetime_secs: Option<u64>,
    #[arg(long, value_name = "SECONDS", global = true)]
    pub ingest_idle_timeout_secs: Option<u64>,
    #[arg(long, value_name = "SECONDS", global = true)]
    pub event_max_duration_secs: Option<u64>,
    #[arg(long, value_name = "FILTER", global = true)]
    pub log_level: Option<String>,
}

fn addr(key: &'static str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse()
        .map_err(|_| ConfigError::Flag { key, why: format!("'{v}' is not an address like 0.0.0.0:8080 or [::]:8080") })
}

impl Config {
    /// The storage target of a storage account name (ARM compares names case-insensitively).
    pub fn storage_target(&self, name: &str) -> Option<(&str, &StorageTarget)> {
        self.storage.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(k, v)| (k.as_str(), v))
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), source: Box::new(e) })
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml(&text, path)
    }

    /// Defaults, then the file (explicit, or the default path if present), then the flags.
    /// Defaults, then the file (explicit, or the default path if present), then the site
    /// file `<data-dir>/config.toml` if present (the root filesystem of the appliance is
    /// read-only, so a venue's own settings live on the data partition), then the flags.
    pub fn load(args: &ConfigArgs) -> Result<Config, ConfigError> {
        let base = match &args.config {
            Some(p) => Some(p.clone()),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => Some(PathBuf::from(DEFAULT_CONFIG_PATH)),
            None => None,
        };
        let mut table = match &base {
            Some(p) => read_table(p)?,
            None => toml::Table::new(),
        };
        let mut cfg = Config::from_table(table.clone(), base.as_deref().unwrap_or(Path::new("(defaults)")))?;
        let data_dir = args.data_dir.clone().unwrap_or_else(|| cfg.data_dir.clone());
        let site = data_dir.join(SITE_CONFIG_NAME);
        if site.exists() {
            for (k, v) in read_table(&site)? {
                table.insert(k, v);
            }
            cfg = Config::from_table(table, &site)?;
        }
        cfg.apply(args)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn from_table(t: toml::Table, path: &Path) -> Result<Config, ConfigError> {
        Config::deserialize(t).map_err(|e| ConfigError::Parse { path: path.to_owned(), source: Box::new(e) })
    }

    pub fn apply(&mut self, a: &ConfigArgs) -> Result<(), ConfigError> {
        if let Some(v) = &a.data_dir {
            self.data_dir = v.clone();
        }
        macro_rules! addrs {
            ($($field:ident => $key:literal),*) => {$(
                if let Some(v) = &a.$field { self.$field = addr($key, v)?; }
            )*};
        }
        addrs!(http_addr => "http-addr", https_addr => "https-addr", rtmp_addr => "rtmp-addr",
               rtmps_addr => "rtmps-addr", srt_addr => "srt-addr", rtsp_addr => "rtsp-addr");
        macro_rules! strings {
            ($($field:ident),*) => {$(
                if let Some(v) = &a.$field { self.$field = v.clone(); }
            )*};
        }
        strings!(public_host, subscription_id, resource_group, account_name, api_key, location, log_level);
        if let Some(v) = &a.tls_cert {
            self.tls_cert = Some(v.clone());
        }
        if let Some(v) = &a.tls_key {
            self.tls_key = Some(v.clone());
        }
        if let Some(v) = a.token_lifetime_secs {
            self.token_lifetime_secs = v;
        }
        if let Some(v) = a.ingest_idle_timeout_secs {
            self.ingest_idle_timeout_secs = v;
        }
        if let Some(v) = a.event_max_duration_secs {
            self.event_max_duration_secs = v;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid("tls-cert and tls-key must be set together".into()));
        }
        for (k, v) in [
            ("subscription-id", &self.subscription_id),
            ("resource-group", &self.resource_group),
            ("account-name", &self.account_name),
        ] {
            if v.is_empty() || v.contains('/') {
                return Err(ConfigError::Invalid(format!("{k} must be non-empty and contain no '/'")));
            }
        }
        if !(2..=3600).contains(&self.ingest_idle_timeout_secs) {
            return Err(ConfigError::Invalid("ingest-idle-timeout-secs must be between 2 and 3600".into()));
        }
        if self.event_max_duration_secs < 5 {
            return Err(ConfigError::Invalid("event-max-duration-secs must be at least 5".into()));
        }
        if self.token_lifetime_secs < 60 {
            return Err(ConfigError::Invalid("token-lifetime-secs must be at least 60".into()));
        }
        for (name, t) in &self.storage {
            if name.is_empty()
                || name.len() > 64
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::Invalid(format!(
                    "[storage.{name}]: a storage account name is letters, digits, '-' or '_'"
                )));
            }
            t.validate(name).map_err(ConfigError::Invalid)?;
            if t.kind == "s3" && self.upload_part_size_kib < 5 * 1024 {
                return Err(ConfigError::Invalid(format!(
                    "[storage.{name}] is S3, whose parts must be at least 5 MiB: set upload-part-size-kib to 5120 or more"
                )));
            }
        }
        if !self.default_storage.is_empty() && self.storage_target(&self.default_storage).is_none() {
            return Err(ConfigError::Invalid(format!(
                "default-storage = \"{}\" names no [storage.<name>] table",
                self.default_storage
            )));
        }
        if !(self.upload_max_mbps >= 0.0 && self.upload_max_mbps.is_finite()) {
            return Err(ConfigError::Invalid("upload-max-mbps must be 0 (unlimited) or more".into()));
        }
        if !self.upload_unlimited_window.is_empty() {
            DailyWindow::parse(&self.upload_unlimited_window)
                .map_err(|e| ConfigError::Invalid(format!("upload-unlimited-window: {e}")))?;
        }
        if !(64..=4 * 1024 * 1024).contains(&self.upload_part_size_kib) {
            return Err(ConfigError::Invalid("upload-part-size-kib must be between 64 and 4194304".into()));
        }
        if !(0.0..=90.0).contains(&self.disk_min_free_percent) {
            return Err(ConfigError::Invalid("disk-min-free-percent must be between 0 and 90".into()));
        }
        if !(100..=2000).contains(&self.ll_part_target_ms) {
            return Err(ConfigError::Invalid("ll-part-target-ms must be between 100 and 2000".into()));
        }
        if self.public_host.contains('/') || self.public_host.contains("://") {
            return Err(ConfigError::Invalid(format!(
                "public-host '{}' must be a host or host:port, without scheme or path",
                self.public_host
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rootfs/etc/rms-edge/config.toml")
    }

    /// The shipped sample parses, and states every default exactly: a key whose commented
    /// default drifts from the code fails here.
    #[test]
    fn shipped_sample_loads_and_equals_the_defaults() {
        let cfg = Config::from_file(&shipped()).expect("shipped config.toml must parse");
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn shipped_sample_documents_every_key() {
        let text = std::fs::read_to_string(shipped()).unwrap();
        let table: toml::Table = text.parse().unwrap();
        for key in [
            "data-dir",
            "http-addr",
            "https-addr",
            "rtmp-addr",
            "rtmps-addr",
            "srt-addr",
            "rtsp-addr",
            "public-host",
            "subscription-id",
            "resource-group",
            "account-name",
            "api-key",
            "location",
            "token-lifetime-secs",
            "log-level",
            "ingest-idle-timeout-secs",
            "event-max-duration-secs",
            "default-storage",
            "upload-max-mbps",
            "upload-unlimited-window",
            "upload-part-size-kib",
            "disk-min-free-percent",
            "ll-part-target-ms",
        ] {
            assert!(table.contains_key(key), "{key} missing from the shipped config.toml");
        }
        // Optional keys are documented as comments.
        assert!(text.contains("# tls-cert ="), "tls-cert undocumented");
        assert!(text.contains("# tls-key ="), "tls-key undocumented");
        // Every storage target key is shown in a commented example table.
        for key in [
            "kind",
            "account",
            "container",
            "key",
            "sas",
            "endpoint",
            "public-url",
            "bucket",
            "region",
            "access-key-id",
            "secret-access-key",
            "allow-http",
            "path",
        ] {
            assert!(text.contains(&format!("\n# {key} =")), "storage key {key} undocumented");
        }
        // The commented examples, uncommented, are a valid configuration.
        let example: String = text
            .lines()
            .skip_while(|l| !l.starts_with("# [storage."))
            .map(|l| l.strip_prefix("# ").unwrap_or(l).split(" # ").next().unwrap_or("").to_owned() + "\n")
            .collect();
        let example = example.replace("<account key>", "a2V5");
        let cfg = Config::from_toml(&example, Path::new("example")).expect("storage examples parse");
        let cfg = Config { upload_part_size_kib: 8192, ..cfg };
        cfg.validate().expect("storage examples are valid");
        assert_eq!(cfg.storage.len(), 3);
    }

    #[test]
    fn site_file_in_the_data_dir_overrides_the_main_file_and_flags_override_both() {
        let dir = std::env::temp_dir().join(format!("edge-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let main = dir.join("main.toml");
        std::fs::write(&main, format!("data-dir = {:?}\naccount-name = \"main\"\nresource-group = \"rg-main\"\n", dir))
            .unwrap();
        std::fs::write(dir.join(SITE_CONFIG_NAME), "account-name = \"venue\"\npublic-host = \"box.venue.lan\"\n")
            .unwrap();
        let args = ConfigArgs { config: Some(main.clone()), ..Default::default() };
        let cfg = Config::load(&args).unwrap();
        assert_eq!((cfg.account_name.as_str(), cfg.resource_group.as_str()), ("venue", "rg-main"));
        assert_eq!(cfg.public_host, "box.venue.lan");
        let args = ConfigArgs { config: Some(main), account_name: Some("flag".into()), ..Default::default() };
        assert_eq!(Config::load(&args).unwrap().account_name, "flag");
        std::fs::write(dir.join(SITE_CONFIG_NAME), "acount-name = \"typo\"\n").unwrap();
        let e = Config::load(&ConfigArgs { config: Some(dir.join("main.toml")), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("acount-name"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn storage_targets_are_validated_with_clear_messages() {
        let ok = r#"
            default-storage = "Cloud"
            upload-max-mbps = 20
            upload-unlimited-window = "18:00-09:00"
            [storage.cloud]
            kind = "azure"
            account = "acct"
            container = "rec"
            sas = "sv=1&sig=x"
            [storage.s3]
            kind = "s3"
            bucket = "b"
            region = "us-east-1"
            endpoint = "http://127.0.0.1:9000"
            allow-http = true
        "#;
        let cfg = Config::from_toml(ok, Path::new("c.toml")).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.storage_target("CLOUD").map(|(n, t)| (n, t.kind.as_str())), Some(("cloud", "azure")));
        assert!(cfg.storage["s3"].allow_http);
        let bad = |extra: &str, want: &str| {
            let text = if extra.starts_with('[') { format!("{ok}\n{extra}") } else { format!("{extra}\n{ok}") };
            let e = match Config::from_toml(&text, Path::new("c.toml")) {
                Ok(c) => c.validate().unwrap_err().to_string(),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(want), "{extra}: {e}");
        };
        bad("[storage.x]\nkind = \"ftp\"", "unknown kind \"ftp\"");
        bad("[storage.x]\nkind = \"azure\"\naccount = \"a\"\ncontainer = \"c\"", "exactly one of 'key' or 'sas'");
        bad("[storage.x]\nkind = \"s3\"\nregion = \"r\"", "needs 'bucket'");
        bad("[storage.x]\nkind = \"dir\"", "needs 'path'");
        bad("[storage.x]\nkind = \"dir\"\npath = \"/p\"\nbuckett = \"typo\"", "buckett");
        bad("[storage.\"a b\"]\nkind = \"dir\"\npath = \"/p\"", "letters, digits");
        bad("upload-part-size-kib = 1024", "at least 5 MiB");
        let c = Config { default_storage: "nope".into(), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("default-storage = \"nope\""));
        let c = Config { upload_unlimited_window: "9-18".into(), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("upload-unlimited-window"));
        let c = Config { upload_max_mbps: -1.0, ..Config::default() };
        assert!(c.validate().is_err());
    }

    #[test]
    fn daily_windows_wrap_midnight() {
        let w = DailyWindow::parse("18:00-09:00").unwrap();
        assert!(w.contains(18 * 60) && w.contains(23 * 60 + 59) && w.contains(0) && w.contains(8 * 60 + 59));
        assert!(!w.contains(9 * 60) && !w.contains(12 * 60) && !w.contains(17 * 60 + 59));
        let d = DailyWindow::parse("01:30-02:00").unwrap();
        assert!(d.contains(90) && !d.contains(120) && !d.contains(89));
        assert_eq!(
            (w.to_string(), DailyWindow::parse("1:30-2:00").unwrap().to_string()),
            ("18:00-09:00".into(), "01:30-02:00".into())
        );
        for bad in ["", "18:00", "25:00-01:00", "10:00-10:00", "1:60-2:00", "a-b"] {
            assert!(DailyWindow::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_override_file() {
        let mut cfg = Config::from_toml("http-addr = \"127.0.0.1:1\"\naccount-name = \"a\"", Path::new("x")).unwrap();
        let args = ConfigArgs { http_addr: Some("127.0.0.1:2".into()), ..Default::default() };
        cfg.apply(&args).unwrap();
        assert_eq!(cfg.http_addr, "127.0.0.1:2".parse().unwrap());
        assert_eq!(cfg.account_name, "a");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_explained() {
        let e = Config::from_toml("http-adr = \"x\"", Path::new("c.toml")).unwrap_err().to_string();
        assert!(e.contains("http-adr"), "{e}");
        let mut cfg = Config::default();
        let e =
            cfg.apply(&ConfigArgs { rtmp_addr: Some("1935".into()), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("--rtmp-addr"), "{e}");
        let cfg = Config { tls_cert: Some("a".into()), ..Config::default() };
        assert!(cfg.validate().is_err());
        let cfg = Config { public_host: "https://x".into(), ..Config::default() };
        assert!(cfg.validate().is_err());
    }
}
