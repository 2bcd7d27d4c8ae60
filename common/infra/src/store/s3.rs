//! S3 backend (rust-s3 with rustls): path-style requests to any endpoint (MinIO, Garage, s3s-fs,
//! AWS). Large files are uploaded with multipart (`put_object_stream`), which S3 only makes
//! visible once complete.

use std::path::Path;

use bytes::Bytes;
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::serde_types::ObjectIdentifier;
use s3::{Bucket, BucketConfiguration, Region};

use super::{ObjectMeta, StoreError};
use crate::config::StoreConfig;

/// A bucket on an S3-compatible server.
pub struct S3Store {
    bucket: Box<Bucket>,
}

fn s3_err(key: &str, e: S3Error) -> StoreError {
    StoreError::S3 {
        key: key.to_string(),
        message: e.to_string(),
    }
}

fn is_not_found(e: &S3Error) -> bool {
    matches!(e, S3Error::HttpFailWithBody(404, _))
}

/// Tries of the bucket creation at start-up (about 1.5 s in all).
const BUCKET_CREATE_ATTEMPTS: u64 = 5;

impl S3Store {
    /// Connect and make sure the bucket exists. Some servers (s3s-fs) do not implement
    /// bucket-exists/list-buckets, so we PUT the bucket and accept "already exists".
    pub async fn open(cfg: &StoreConfig) -> Result<Self, StoreError> {
        if cfg.access_key.is_empty() || cfg.secret_key.is_empty() {
            return Err(StoreError::Config(
                "s3 backend needs store.access_key and store.secret_key".into(),
            ));
        }
        let region = Region::Custom {
            region: cfg.region.clone(),
            endpoint: cfg.endpoint.trim_end_matches('/').to_string(),
        };
        let creds = Credentials::new(
            Some(&cfg.access_key),
            Some(&cfg.secret_key),
            None,
            None,
            None,
        )
        .map_err(|e| StoreError::Config(e.to_string()))?;
        // Several services start at once against the same server and all create the bucket;
        // s3s-fs answers a create that races another with 500 (not 409). Server errors and
        // transport errors are retried briefly; 409 means it exists; other 4xx are final.
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let res = Bucket::create_with_path_style(
                &cfg.bucket,
                region.clone(),
                creds.clone(),
                BucketConfiguration::default(),
            )
            .await;
            let retryable = match &res {
                Ok(_) | Err(S3Error::HttpFailWithBody(409, _)) => break,
                Err(S3Error::HttpFailWithBody(code, _)) => *code >= 500,
                Err(_) => true,
            };
            if !retryable || attempt >= BUCKET_CREATE_ATTEMPTS {
                let e = res.err().map(|e| e.to_string()).unwrap_or_default();
                return Err(StoreError::Config(format!(
                    "cannot create bucket {} at {}: {e}",
                    cfg.bucket, cfg.endpoint
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
        }
        let bucket = Bucket::new(&cfg.bucket, region, creds)
            .map_err(|e| StoreError::Config(e.to_string()))?
            .with_path_style();
        Ok(Self { bucket })
    }

    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        self.bucket
            .put_object_with_content_type(key, &body, content_type)
            .await
            .map_err(|e| s3_err(key, e))?;
        Ok(())
    }

    /// The object store streams every file; a sealed one is no different.
    pub async fn put_sealed_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), StoreError> {
        self.put_file(key, path, content_type).await
    }

    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        content_type: &str,
    ) -> Result<(), StoreError> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|source| StoreError::Io {
                key: key.to_string(),
                source,
            })?;
        self.bucket
            .put_object_stream_with_content_type(&mut file, key, content_type)
            .await
            .map_err(|e| s3_err(key, e))?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self.bucket.get_object(key).await {
            Ok(resp) => Ok(Some(resp.into_bytes())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(s3_err(key, e)),
        }
    }

    pub async fn get_to_file(&self, key: &str, dst: &Path) -> Result<bool, StoreError> {
        let io = |source| StoreError::Io {
            key: key.to_string(),
            source,
        };
        // Download beside the destination and rename, so a failed transfer leaves no partial file.
        let tmp = dst.with_extension("part");
        let mut file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let res = self.bucket.get_object_to_writer(key, &mut file).await;
        drop(file);
        match res {
            Ok(_) => {
                tokio::fs::rename(&tmp, dst).await.map_err(io)?;
                Ok(true)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                if is_not_found(&e) {
                    Ok(false)
                } else {
                    Err(s3_err(key, e))
                }
            }
        }
    }

    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match self.bucket.head_object(key).await {
            Ok((h, _)) => Ok(Some(ObjectMeta {
                size: h.content_length.unwrap_or(0).max(0) as u64,
                content_type: h.content_type,
                etag: h.e_tag,
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(s3_err(key, e)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.bucket.delete_object(key).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(s3_err(key, e)),
        }
    }

    /// Delete `keys` with multi-object DELETE requests (1000 keys each); a key that does not
    /// exist counts as deleted.
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let first = keys[0].clone();
        let objects: Vec<ObjectIdentifier> = keys.into_iter().map(ObjectIdentifier::new).collect();
        let result = self
            .bucket
            .delete_objects(objects)
            .await
            .map_err(|e| s3_err(&first, e))?;
        match result.errors.into_iter().find(|e| e.code != "NoSuchKey") {
            Some(e) => Err(StoreError::S3 {
                key: e.key,
                message: format!("{}: {}", e.code, e.message),
            }),
            None => Ok(()),
        }
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let pages = self
            .bucket
            .list(prefix.to_string(), None)
            .await
            .map_err(|e| s3_err(prefix, e))?;
        let mut keys: Vec<String> = pages
            .into_iter()
            .flat_map(|p| p.contents.into_iter().map(|o| o.key))
            .collect();
        keys.sort();
        Ok(keys)
    }
}
