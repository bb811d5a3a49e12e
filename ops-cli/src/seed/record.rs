//! `<data-dir>/seed.json`: what `bazaar seed` put in the shop (SKU → product
//! id, and the stock it set). `bazaar load` orders from it, and the next
//! `bazaar seed` tells "created" from "already present" by it: the REST API
//! has no lookup by SKU, and a repeated create answers like the first one.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SeedFile {
    /// The edge the products were created through.
    pub http_url: String,
    /// The product that is kept at zero stock, if it was seeded.
    #[serde(default)]
    pub sold_out: Option<Uuid>,
    pub products: Vec<SeededProduct>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeededProduct {
    pub sku: String,
    pub id: Uuid,
    /// Units on hand that seed set.
    pub stock: i64,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("seed.json")
}

impl SeedFile {
    /// The record in `data_dir`, or `None` when there is none.
    pub fn load(data_dir: &Path) -> anyhow::Result<Option<SeedFile>> {
        let path = path(data_dir);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        serde_json::from_reader(BufReader::new(file))
            .map(Some)
            .with_context(|| format!("{} is not a seed record", path.display()))
    }

    /// Written to a temporary file and renamed, so a reader never sees
    /// half of it. Compact: with a synthetic catalog it holds a million rows.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<PathBuf> {
        let path = path(data_dir);
        let tmp = data_dir.join("seed.json.tmp");
        let write = || -> std::io::Result<()> {
            let mut out = BufWriter::new(File::create(&tmp)?);
            serde_json::to_writer(&mut out, self)?;
            out.write_all(b"\n")?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        };
        write().with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_record_loads_back_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        let record = SeedFile {
            http_url: "http://127.0.0.1:8080".into(),
            sold_out: Some(Uuid::now_v7()),
            products: vec![SeededProduct {
                sku: "CMP-001".into(),
                id: Uuid::now_v7(),
                stock: 100,
            }],
        };

        assert!(SeedFile::load(dir.path()).expect("readable").is_none());
        record.save(dir.path()).expect("saved");
        let loaded = SeedFile::load(dir.path())
            .expect("readable")
            .expect("present");

        assert_eq!(loaded.products, record.products);
        assert_eq!(loaded.sold_out, record.sold_out);
    }
}
