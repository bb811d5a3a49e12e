//! A shard's index on disk: where it lives, the lock that makes it this
//! process's alone, the checkpoint committed inside it, and how a product
//! record becomes a document and back.
//!
//! The checkpoint (the last applied sequence of each stream) is the commit
//! payload, so index and checkpoint always commit together. An index that
//! is missing, unreadable or of another schema version is deleted and
//! rebuilt from sequence 1: it is a projection, the streams are the truth.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use contracts::search::{name_key, Shard};
use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy, Searcher, TantivyDocument, Term};
use uuid::Uuid;

use super::record::{ProductRecord, Status};
use super::schema::{self, Fields};

/// Instances of one shard sharing a data directory (`bazaar up --scale`)
/// each need their own index; they take the first free of this many slots.
const MAX_SLOTS: u32 = 16;

/// How far the index got in each stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub product: u64,
    pub warehouse: u64,
}

/// Which life of each stream the checkpoint counts in
/// (`platform::started_over::Incarnation::key`); `None` in an index
/// committed before it was stored, or before its stream existed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lives {
    pub product: Option<String>,
    pub warehouse: Option<String>,
}

/// The commit payload.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    schema_version: u32,
    shard: String,
    #[serde(flatten)]
    checkpoint: Checkpoint,
    #[serde(default)]
    lives: Lives,
}

/// An index opened for writing by this process.
pub struct ShardIndex {
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    pub checkpoint: Checkpoint,
    pub lives: Lives,
    pub dir: PathBuf,
    /// Held (never read) for as long as the index is in use.
    _lock: File,
}

/// The directory of a shard's index (first slot).
pub fn dir_of(data_dir: &Path, shard: Shard) -> PathBuf {
    data_dir.join("search").join(slot_name(shard, 0))
}

fn slot_name(shard: Shard, slot: u32) -> String {
    let base = format!("shard-{}-of-{}", shard.index(), shard.count());
    if slot == 0 {
        base
    } else {
        format!("{base}.{slot}")
    }
}

/// Opens (or creates, or rebuilds) the shard's index under `data_dir`.
pub fn open(data_dir: &Path, shard: Shard) -> anyhow::Result<ShardIndex> {
    let root = data_dir.join("search");
    std::fs::create_dir_all(&root)
        .with_context(|| format!("creating the search directory {}", root.display()))?;
    let (dir, lock) = claim_slot(&root, shard)?;
    let (index, reader, (checkpoint, lives)) = match open_existing(&dir, shard) {
        Ok(Some(opened)) => opened,
        Ok(None) => create(&dir)?,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), error = %format!("{error:#}"),
                "search index unusable; rebuilding it from the streams");
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("removing the unusable index {}", dir.display()))?;
            create(&dir)?
        }
    };
    let (_, fields) = schema::build();
    Ok(ShardIndex {
        index,
        reader,
        fields,
        checkpoint,
        lives,
        dir,
        _lock: lock,
    })
}

/// Takes the first slot no other process (or instance) holds.
fn claim_slot(root: &Path, shard: Shard) -> anyhow::Result<(PathBuf, File)> {
    for slot in 0..MAX_SLOTS {
        let name = slot_name(shard, slot);
        let lock_path = root.join(format!("{name}.lock"));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => return Ok((root.join(name), lock)),
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", lock_path.display()))
            }
        }
    }
    anyhow::bail!(
        "all {MAX_SLOTS} index slots of shard {shard} in {} are in use",
        root.display()
    )
}

/// An index, its reader, and what its last commit says it holds.
type Opened = (Index, IndexReader, (Checkpoint, Lives));

fn open_existing(dir: &Path, shard: Shard) -> anyhow::Result<Option<Opened>> {
    if !dir.join("meta.json").exists() {
        return Ok(None);
    }
    let index = Index::open_in_dir(dir).context("opening the index")?;
    let (expected, _) = schema::build();
    if index.schema() != expected {
        anyhow::bail!("the index has another schema");
    }
    schema::register_analyzers(&index);
    let payload = index
        .load_metas()
        .context("reading the index metadata")?
        .payload
        .context("the index has no checkpoint")?;
    let payload: Payload = serde_json::from_str(&payload).context("reading the checkpoint")?;
    if payload.schema_version != schema::SCHEMA_VERSION || payload.shard != shard.to_string() {
        anyhow::bail!(
            "the index is of schema version {} for shard {}",
            payload.schema_version,
            payload.shard
        );
    }
    let reader = reader_of(&index)?;
    // Reading every segment once finds missing or truncated files now
    // rather than at the first search.
    for segment in reader.searcher().segment_readers() {
        segment.get_store_reader(0).context("reading a segment")?;
    }
    Ok(Some((index, reader, (payload.checkpoint, payload.lives))))
}

fn create(dir: &Path) -> anyhow::Result<Opened> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (schema, _) = schema::build();
    let index = Index::create_in_dir(dir, schema)
        .with_context(|| format!("creating an index in {}", dir.display()))?;
    schema::register_analyzers(&index);
    let reader = reader_of(&index)?;
    Ok((index, reader, Default::default()))
}

/// Reloaded by the indexer after each commit, never behind its back.
fn reader_of(index: &Index) -> anyhow::Result<IndexReader> {
    index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .context("opening an index reader")
}

/// The commit payload for `checkpoint`, counted in the streams' `lives`.
pub fn payload(shard: Shard, checkpoint: Checkpoint, lives: &Lives) -> String {
    let payload = Payload {
        schema_version: schema::SCHEMA_VERSION,
        shard: shard.to_string(),
        checkpoint,
        lives: lives.clone(),
    };
    serde_json::to_string(&payload).unwrap_or_default()
}

/// The term that names a product's document.
pub fn id_term(fields: &Fields, product_id: Uuid) -> Term {
    Term::from_field_text(fields.id, &product_id.to_string())
}

/// The document of a record. Only active products get their text
/// indexed: the others are kept for their state, never found.
pub fn document(
    fields: &Fields,
    analyzer: &mut TextAnalyzer,
    record: &ProductRecord,
) -> anyhow::Result<TantivyDocument> {
    let mut doc = TantivyDocument::new();
    doc.add_text(fields.id, record.product_id.to_string());
    let (hi, lo) = record.product_id.as_u64_pair();
    doc.add_u64(fields.id_hi, hi);
    doc.add_u64(fields.id_lo, lo);
    doc.add_text(fields.status, record.status.as_str());
    if record.status == Status::Active {
        doc.add_text(fields.sku, &record.sku);
        doc.add_text(fields.name, &record.name);
        doc.add_text(fields.description, &record.description);
        doc.add_text(fields.category, category_key(&record.category));
        doc.add_text(fields.category_words, &record.category);
        doc.add_text(fields.name_plain, &record.name);
        doc.add_text(fields.name_key, name_key(&record.name));
        doc.add_text(fields.name_words, schema::words_key(analyzer, &record.name));
    }
    let json = serde_json::to_vec(record).context("encoding a product record")?;
    doc.add_bytes(fields.record, &json);
    Ok(doc)
}

/// A category as the filter compares it.
pub fn category_key(category: &str) -> String {
    category.trim().to_lowercase()
}

/// The record stored in a document.
pub fn record_of(fields: &Fields, doc: &TantivyDocument) -> anyhow::Result<ProductRecord> {
    let bytes = doc
        .get_first(fields.record)
        .and_then(|v| v.as_bytes())
        .context("a document without its record")?;
    serde_json::from_slice(bytes).context("decoding a product record")
}

/// The committed record of a product, if the index has one.
pub fn find(
    searcher: &Searcher,
    fields: &Fields,
    product_id: Uuid,
) -> anyhow::Result<Option<ProductRecord>> {
    let term = id_term(fields, product_id);
    // Most lookups are for new products: the term dictionary answers
    // those without running a query.
    if searcher.doc_freq(&term)? == 0 {
        return Ok(None);
    }
    let query = TermQuery::new(term, IndexRecordOption::Basic);
    let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
    match top.first() {
        Some((_, address)) => {
            let doc: TantivyDocument = searcher.doc(*address)?;
            Ok(Some(record_of(fields, &doc)?))
        }
        None => Ok(None),
    }
}
