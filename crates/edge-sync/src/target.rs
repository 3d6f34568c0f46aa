//! Storage targets: what a `[storage.<name>]` table of the configuration becomes. Azure Blob
//! and S3 go through `object_store` (one well-kept client for both, with block / multipart
//! uploads we can resume part by part); a directory target writes files durably itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjPath;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload, RetryConfig};

use crate::http::{CheckingConnector, Md5Mode, Shared};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The target did not answer or failed for now: retried with backoff.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (credentials, missing container): the job fails until retried.
    #[error("{0}")]
    Permanent(String),
    /// The service no longer knows a multipart upload: start it again.
    #[error("the upload is no longer known to the service: {0}")]
    UploadLost(String),
}

impl TargetError {
    fn from_store(e: object_store::Error, what: &str) -> TargetError {
        use object_store::Error as E;
        match e {
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
                TargetError::Permanent(format!("{what}: access denied (check the key, SAS or credentials): {e}"))
            }
            E::NotFound { .. } => {
                TargetError::Permanent(format!("{what}: not found (does the container or bucket exist?): {e}"))
            }
            E::NotSupported { .. } | E::InvalidPath { .. } => TargetError::Permanent(format!("{what}: {e}")),
            other => TargetError::Transient(format!("{what}: {other}")),
        }
    }
}

enum Backend {
    Store { store: Arc<dyn ObjectStore>, multipart: Arc<dyn MultipartStore> },
    Dir(PathBuf),
}

pub struct Target {
    pub name: String,
    pub kind: String,
    /// Base URL of the copy (container / bucket root), without a trailing '/'.
    pub base_url: String,
    backend: Backend,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.base_url)
            .finish()
    }
}

fn retry() -> RetryConfig {
    // Few quick retries inside the client: longer outages are the outbox's business (its
    // backoff survives restarts and shows in the API).
    let backoff = object_store::BackoffConfig {
        init_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        ..Default::default()
    };
    RetryConfig { max_retries: 2, retry_timeout: Duration::from_secs(30), backoff }
}

impl Target {
    pub fn build(
        name: &str,
        t: &edge_config::StorageTarget,
        shared: Arc<Shared>,
        options: object_store::ClientOptions,
    ) -> Result<Target, String> {
        let trim = |s: &str| s.trim_end_matches('/').to_owned();
        let public = |default: String| if t.public_url.is_empty() { default } else { trim(&t.public_url) };
        match t.kind.as_str() {
            "azure" => {
                let mut b = MicrosoftAzureBuilder::new()
                    .with_account(&t.account)
                    .with_container_name(&t.container)
                    .with_retry(retry())
                    .with_client_options(options.with_allow_http(t.endpoint.starts_with("http://")));
                let mode = if !t.key.is_empty() {
                    b = b.with_access_key(&t.key);
                    Md5Mode::VerifyOnly
                } else {
                    b = b.with_config(AzureConfigKey::SasKey, t.sas.trim_start_matches('?'));
                    Md5Mode::SendAndVerify
                };
                let account_url = if t.endpoint.is_empty() {
                    format!("https://{}.blob.core.windows.net", t.account)
                } else {
                    b = b.with_endpoint(trim(&t.endpoint));
                    trim(&t.endpoint)
                };
                let az = b
                    .with_http_connector(CheckingConnector { shared, mode })
                    .build()
                    .map_err(|e| format!("[storage.{name}]: {e}"))?;
                let az = Arc::new(az);
                Ok(Target {
                    name: name.into(),
                    kind: t.kind.clone(),
                    base_url: public(format!("{account_url}/{}", t.container)),
                    backend: Backend::Store { store: az.clone(), multipart: az },
                })
            }
            "s3" => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(&t.bucket)
                    .with_region(&t.region)
                    .with_retry(retry())
                    .with_client_options(options.with_allow_http(t.allow_http));
                if !t.access_key_id.is_empty() {
                    b = b.with_access_key_id(&t.access_key_id).with_secret_access_key(&t.secret_access_key);
                }
                let root = if t.endpoint.is_empty() {
                    format!("https://{}.s3.{}.amazonaws.com", t.bucket, t.region)
                } else {
                    b = b.with_endpoint(trim(&t.endpoint));
                    format!("{}/{}", trim(&t.endpoint), t.bucket)
                };
                let s3 = b
                    .with_http_connector(CheckingConnector { shared, mode: Md5Mode::SendAndVerify })
                    .build()
                    .map_err(|e| format!("[storage.{name}]: {e}"))?;
                let s3 = Arc::new(s3);
                Ok(Target {
                    name: name.into(),
                    kind: t.kind.clone(),
                    base_url: public(root),
                    backend: Backend::Store { store: s3.clone(), multipart: s3 },
                })
            }
            "dir" => Ok(Target {
                name: name.into(),
                kind: t.kind.clone(),
                base_url: public(format!("file://{}", trim(&t.path))),
                backend: Backend::Dir(PathBuf::from(&t.path)),
            }),
            k => Err(format!("[storage.{name}]: unknown kind '{k}'")),
        }
    }

    /// Whether large files go up in parts (object stores) or whole (a directory).
    pub fn multipart(&self) -> bool {
        matches!(self.backend, Backend::Store { .. })
    }

    /// Puts a whole object; `md5`: its MD5 if already known (checked against the service's).
    pub async fn put(
        &self,
        key: &str,
        data: Bytes,
        content_type: &str,
        md5: Option<[u8; 16]>,
    ) -> Result<Option<String>, TargetError> {
        match &self.backend {
            Backend::Store { store, .. } => {
                let mut attrs = Attributes::new();
                attrs.insert(Attribute::ContentType, content_type.to_owned().into());
                let mut opts = PutOptions { attributes: attrs, ..Default::default() };
                if let Some(m) = md5 {
                    opts.extensions.insert(crate::http::KnownMd5(m));
                }
                let r = store
                    .put_opts(&ObjPath::from(key), PutPayload::from(data), opts)
                    .await
                    .map_err(|e| TargetError::from_store(e, key))?;
                Ok(r.e_tag)
            }
            Backend::Dir(root) => {
                let (root, k2) = (root.clone(), key.to_owned());
                tokio::task::spawn_blocking(move || write_file(&root, &k2, &data))
                    .await
                    .map_err(|e| TargetError::Transient(e.to_string()))?
                    .map_err(|e| TargetError::Transient(format!("{key}: {e}")))?;
                Ok(None)
            }
        }
    }

    pub async fn create_multipart(&self, key: &str) -> Result<String, TargetError> {
        let Backend::Store { multipart, .. } = &self.backend else { unreachable!("dir targets put whole files") };
        multipart.create_multipart(&ObjPath::from(key)).await.map_err(|e| TargetError::from_store(e, key))
    }

    pub async fn put_part(&self, key: &str, upload: &str, idx: usize, data: Bytes) -> Result<String, TargetError> {
        let Backend::Store { multipart, .. } = &self.backend else { unreachable!("dir targets put whole files") };
        let id = upload.to_owned();
        multipart.put_part(&ObjPath::from(key), &id, idx, PutPayload::from(data)).await.map(|p| p.content_id).map_err(
            |e| match e {
                object_store::Error::NotFound { .. } => TargetError::UploadLost(format!("{key}: {e}")),
                e => TargetError::from_store(e, key),
            },
        )
    }

    pub async fn complete(&self, key: &str, upload: &str, parts: &[String]) -> Result<(), TargetError> {
        let Backend::Store { multipart, .. } = &self.backend else { unreachable!("dir targets put whole files") };
        let parts = parts.iter().map(|p| PartId { content_id: p.clone() }).collect();
        let id = upload.to_owned();
        match multipart.complete_multipart(&ObjPath::from(key), &id, parts).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Err(TargetError::UploadLost(key.into())),
            // S3 answers an unknown upload id with 404 NoSuchUpload, Azure an unknown block
            // list with 400 InvalidBlockList: both mean the parts are gone.
            Err(e) if e.to_string().contains("NoSuchUpload") || e.to_string().contains("InvalidBlockList") => {
                Err(TargetError::UploadLost(format!("{key}: {e}")))
            }
            Err(e) => Err(TargetError::from_store(e, key)),
        }
    }

    /// Fetches an object back (tests and the checksum audit).
    pub async fn get(&self, key: &str) -> Result<Bytes, TargetError> {
        match &self.backend {
            Backend::Store { store, .. } => {
                let r = store.get(&ObjPath::from(key)).await.map_err(|e| TargetError::from_store(e, key))?;
                r.bytes().await.map_err(|e| TargetError::from_store(e, key))
            }
            Backend::Dir(root) => {
                std::fs::read(root.join(key)).map(Bytes::from).map_err(|e| TargetError::Permanent(e.to_string()))
            }
        }
    }
}

/// Writes `root/key` durably (temporary file, fsync, rename, fsync of the directory), so a
/// reader of the directory never sees half a file.
fn write_file(root: &Path, key: &str, data: &[u8]) -> std::io::Result<()> {
    let path = root.join(key);
    let dir = path.parent().expect("keys have a directory");
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().expect("keys name a file").to_string_lossy().into_owned();
    edge_record::write_durable(dir, &name, data)
}
