//! The appliance configuration: one commented TOML file (the shipped sample is
//! `rootfs/etc/rms-edge/config.toml`), every key overridable by a command-line flag of the same
//! name. Precedence: built-in defaults < the file < flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/rms-edge/config.toml";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
        ] {
            assert!(table.contains_key(key), "{key} missing from the shipped config.toml");
        }
        // Optional keys are documented as comments.
        assert!(text.contains("# tls-cert ="), "tls-cert undocumented");
        assert!(text.contains("# tls-key ="), "tls-key undocumented");
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
