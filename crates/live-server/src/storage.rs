//! Where finished replays live: a local directory (the default), or S3-compatible
//! object storage through `object_store` (`FEZA_STORAGE=s3://bucket/prefix`). Either way
//! a replay is addressed as `<public base>/media/replays/<name>`: served from disk with
//! range requests, or redirected to a short-lived signed URL of the object store, which
//! then serves the ranges itself.

use anyhow::{Context, bail};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{ObjectStore, WriteMultipart};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How long a signed replay URL stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
pub enum Storage {
    Local(PathBuf),
    S3 {
        store: Arc<AmazonS3>,
        prefix: ObjectPath,
        /// `s3://bucket/prefix`, for logs (no credentials).
        shown: String,
    },
}

impl Storage {
    /// `local` (replays under `<data dir>/replays`) or `s3://bucket/prefix`, configured
    /// by the usual `AWS_*` variables and/or query pairs
    /// (`?endpoint=http://127.0.0.1:9000&region=us-east-1&allow_http=true`).
    pub fn from_setting(setting: &str, data_dir: &Path) -> anyhow::Result<Self> {
        if setting.is_empty() || setting == "local" {
            return Ok(Self::Local(data_dir.join("replays")));
        }
        let url = url::Url::parse(setting)
            .with_context(|| format!("FEZA_STORAGE {setting:?} is neither `local` nor a URL"))?;
        if url.scheme() != "s3" {
            bail!(
                "FEZA_STORAGE must be `local` or s3://BUCKET/PREFIX (got {}://)",
                url.scheme()
            );
        }
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .with_context(|| format!("FEZA_STORAGE {setting:?} names no bucket"))?
            .to_owned();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        for (k, v) in url.query_pairs() {
            let key = AmazonS3ConfigKey::from_str(&k)
                .map_err(|_| anyhow::anyhow!("FEZA_STORAGE: unknown S3 setting {k:?}"))?;
            builder = builder.with_config(key, v.into_owned());
        }
        let store = builder
            .build()
            .with_context(|| format!("FEZA_STORAGE s3://{bucket}: cannot configure S3"))?;
        let prefix = ObjectPath::from(url.path().trim_matches('/'));
        Ok(Self::S3 {
            store: Arc::new(store),
            shown: format!("s3://{bucket}/{prefix}"),
            prefix,
        })
    }

    fn key(prefix: &ObjectPath, name: &str) -> ObjectPath {
        if prefix.as_ref().is_empty() {
            ObjectPath::from(name)
        } else {
            prefix.child(name)
        }
    }

    /// Where replays are made before they are stored (a local directory either way).
    pub fn work_dir(&self, data_dir: &Path) -> PathBuf {
        match self {
            Self::Local(dir) => dir.clone(),
            Self::S3 { .. } => data_dir.join("replays-work"),
        }
    }

    /// Stores the finished file `local` as `name` (moved, or streamed to the object
    /// store in parts and then deleted locally).
    pub async fn put(&self, name: &str, local: &Path) -> anyhow::Result<()> {
        match self {
            Self::Local(dir) => {
                let target = dir.join(name);
                if local != target {
                    tokio::fs::rename(local, &target).await?;
                }
                Ok(())
            }
            Self::S3 {
                store,
                prefix,
                shown,
            } => {
                let key = Self::key(prefix, name);
                let upload = store
                    .put_multipart(&key)
                    .await
                    .with_context(|| format!("cannot store {name} in {shown}"))?;
                let mut writer = WriteMultipart::new(upload);
                let mut file = tokio::fs::File::open(local).await?;
                let mut buf = vec![0u8; 8 * 1024 * 1024];
                loop {
                    let n = file.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    writer.wait_for_capacity(4).await?;
                    writer.write(&buf[..n]);
                }
                writer
                    .finish()
                    .await
                    .with_context(|| format!("cannot store {name} in {shown}"))?;
                tokio::fs::remove_file(local).await?;
                Ok(())
            }
        }
    }

    pub async fn delete(&self, name: &str) {
        match self {
            Self::Local(dir) => {
                let _ = tokio::fs::remove_file(dir.join(name)).await;
            }
            Self::S3 { store, prefix, .. } => {
                let _ = store.delete(&Self::key(prefix, name)).await;
            }
        }
    }

    /// A response for `GET /media/replays/<name>` from object storage: a redirect to a
    /// signed URL. `None` for local storage (served from disk).
    pub async fn redirect(&self, name: &str) -> Option<Response> {
        let Self::S3 { store, prefix, .. } = self else {
            return None;
        };
        let key = Self::key(prefix, name);
        Some(
            match store
                .signed_url(reqwest::Method::GET, &key, SIGNED_FOR)
                .await
            {
                Ok(url) => {
                    let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
                    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
                        r.headers_mut().insert(header::LOCATION, v);
                    }
                    r.headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    r
                }
                Err(e) => {
                    tracing::error!(name, "cannot sign a replay URL: {e}");
                    StatusCode::SERVICE_UNAVAILABLE.into_response()
                }
            },
        )
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Local(dir) => dir.display().to_string(),
            Self::S3 { shown, .. } => shown.clone(),
        }
    }
}
