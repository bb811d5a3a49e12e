//! Answering a search from a shard's index: the query built from the
//! user's words, the filters, and the shard's best hits in the order the
//! edge merges them (`contracts::search::compare_hits`).

use anyhow::Context as _;
use contracts::search::{Ranking, SearchHit, SearchQuery, MAX_TOP};
use tantivy::collector::sort_key::{SortBySimilarityScore, SortByStaticFastValue, SortByString};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, Occur, PhrasePrefixQuery, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocAddress, IndexReader, Order, TantivyDocument, Term};

use super::index::{self, category_key};
use super::record::Status;
use super::schema::{self, Fields, FixedStatistics};

/// Searches one shard's committed index; cheap to clone.
#[derive(Clone)]
pub struct ShardSearcher {
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    plain: TextAnalyzer,
}

/// A shard's answer before it is sent: every match counted, the best kept.
#[derive(Debug)]
pub struct Found {
    pub total: u64,
    pub hits: Vec<SearchHit>,
}

impl ShardSearcher {
    pub fn new(reader: IndexReader, fields: Fields) -> Self {
        ShardSearcher {
            reader,
            fields,
            analyzer: schema::text_analyzer(),
            plain: schema::plain_analyzer(),
        }
    }

    /// The `query.top` best hits of this shard and how many matched.
    pub fn search(&self, query: &SearchQuery) -> anyhow::Result<Found> {
        let top = usize::try_from(query.top.clamp(1, MAX_TOP)).unwrap_or(1);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            filter(self.fields.status, Status::Active.as_str()),
        )];
        if let Some(category) = query.category.as_deref().map(category_key) {
            if !category.is_empty() {
                clauses.push((Occur::Must, filter(self.fields.category, &category)));
            }
        }
        let searcher = self.reader.searcher();
        let ranking = Ranking::for_query(&query.q);
        let (addresses, total) = match ranking {
            Ranking::Relevance => {
                let Some(text) = self.text_query(&query.q) else {
                    return Ok(Found {
                        total: 0,
                        hits: Vec::new(),
                    });
                };
                clauses.push((Occur::Must, text));
                // Equal scores are ordered by id, so which of several equal
                // hits make a shard's cut never depends on the shard layout.
                let best = TopDocs::with_limit(top).order_by((
                    (SortBySimilarityScore, Order::Desc),
                    (SortByStaticFastValue::<u64>::for_field("id_hi"), Order::Asc),
                    (SortByStaticFastValue::<u64>::for_field("id_lo"), Order::Asc),
                ));
                let (best, total) = searcher
                    .search_with_statistics_provider(
                        &BooleanQuery::new(clauses),
                        &(best, Count),
                        &FixedStatistics::new(self.fields),
                    )
                    .context("searching the index")?;
                let best: Vec<(f32, DocAddress)> = best
                    .into_iter()
                    .map(|((score, _, _), address)| (score, address))
                    .collect();
                (best, total)
            }
            Ranking::Name => {
                let best = TopDocs::with_limit(top).order_by((
                    (SortByString::for_field("name_key"), Order::Asc),
                    (SortByStaticFastValue::<u64>::for_field("id_hi"), Order::Asc),
                    (SortByStaticFastValue::<u64>::for_field("id_lo"), Order::Asc),
                ));
                let (best, total) = searcher
                    .search(&BooleanQuery::new(clauses), &(best, Count))
                    .context("listing the index")?;
                let best: Vec<(f32, DocAddress)> = best
                    .into_iter()
                    .map(|(_, address)| (0.0, address))
                    .collect();
                (best, total)
            }
        };
        let mut hits = Vec::with_capacity(addresses.len());
        for (score, address) in addresses {
            let doc: TantivyDocument = searcher.doc(address).context("reading a hit")?;
            hits.push(index::record_of(&self.fields, &doc)?.hit(score));
        }
        Ok(Found {
            total: u64::try_from(total).unwrap_or(u64::MAX),
            hits,
        })
    }

    /// Every word must appear in the name, the description or the category
    /// (a name match weighs more); or the whole text is the SKU. None when the text has
    /// no searchable word and cannot be a SKU.
    ///
    /// The last word may also be the start of a word ("keyb" finds
    /// "Keyboard"), as a customer who is still typing means it: such a
    /// match adds a small constant, below any match of the whole word.
    ///
    /// Clauses are nested two at a time on purpose: tantivy adds the scores
    /// of a conjunction in the order of its clauses' posting list sizes,
    /// which differ between shards, and float addition of three or more
    /// terms depends on the order. Two terms commute, so a product's score
    /// is the same bits whatever the shard layout.
    fn text_query(&self, q: &str) -> Option<Box<dyn Query>> {
        let mut analyzer = self.analyzer.clone();
        // Analysed once: the words, and the key of a name made of them.
        let key = schema::words_key(&mut analyzer, q);
        let words = schema::distinct_words(&key);
        let last = key.rsplit(' ').next().unwrap_or_default();
        // The last word as typed (the plain analyzer keeps the same words).
        let typed = schema::words_key(&mut self.plain.clone(), q);
        let typed_last = typed.rsplit(' ').next().unwrap_or_default();
        let mut all_words: Option<Box<dyn Query>> = None;
        for word in words.iter().rev() {
            let either: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
                (
                    Occur::Should,
                    boosted(self.fields.name, word, schema::NAME_BOOST),
                ),
                (
                    Occur::Should,
                    boosted(self.fields.description, word, schema::DESCRIPTION_BOOST),
                ),
            ]));
            let either: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
                (Occur::Should, either),
                (
                    Occur::Should,
                    boosted(self.fields.category_words, word, schema::CATEGORY_BOOST),
                ),
            ]));
            let start = (word == last).then(|| self.word_start(word, typed_last));
            let either = match start.flatten() {
                Some(start) => Box::new(BooleanQuery::new(vec![
                    (Occur::Should, either),
                    (Occur::Should, start),
                ])),
                None => either,
            };
            all_words = Some(match all_words {
                None => either,
                Some(rest) => Box::new(BooleanQuery::new(vec![
                    (Occur::Must, either),
                    (Occur::Must, rest),
                ])),
            });
        }
        // The product named exactly so comes first.
        let all_words = all_words.map(|all| -> Box<dyn Query> {
            let exact = TermQuery::new(
                Term::from_field_text(self.fields.name_words, &key),
                IndexRecordOption::Basic,
            );
            let count = key.split(' ').count() as f32;
            let exact =
                ConstScoreQuery::new(Box::new(exact), count * schema::EXACT_NAME_SCORE_PER_WORD);
            Box::new(BooleanQuery::new(vec![
                (Occur::Must, all),
                (Occur::Should, Box::new(exact)),
            ]))
        });
        let sku = q.trim().to_lowercase();
        let sku = (!sku.is_empty() && !sku.contains(char::is_whitespace))
            .then(|| boosted(self.fields.sku, &sku, schema::SKU_BOOST));
        match (all_words, sku) {
            (Some(words), Some(sku)) => Some(Box::new(BooleanQuery::new(vec![
                (Occur::Should, words),
                (Occur::Should, sku),
            ]))),
            (Some(words), None) => Some(words),
            (None, sku) => sku,
        }
    }
}

impl ShardSearcher {
    /// For the query's last word: words of the name that start with it as
    /// typed (`typed`, unstemmed: "cas" → "Casserole", "runn" →
    /// "Running"), or of the description that start with its stem
    /// (`stem`), each when long enough to say something
    /// ([`schema::SHORTEST_WORD_START`]). A constant score, nested two
    /// clauses at a time as in [`ShardSearcher::text_query`]; every
    /// matching word is expanded, so what matches does not depend on a
    /// shard's other words.
    fn word_start(&self, stem: &str, typed: &str) -> Option<Box<dyn Query>> {
        let long = |w: &str| w.chars().count() >= schema::SHORTEST_WORD_START;
        let start = |field: Field, word: &str, score: f32| -> Box<dyn Query> {
            let mut query = PhrasePrefixQuery::new(vec![Term::from_field_text(field, word)]);
            query.set_max_expansions(u32::MAX);
            Box::new(ConstScoreQuery::new(Box::new(query), score))
        };
        let name = long(typed)
            .then(|| start(self.fields.name_plain, typed, schema::NAME_WORD_START_SCORE));
        let description = long(stem).then(|| {
            start(
                self.fields.description,
                stem,
                schema::DESCRIPTION_WORD_START_SCORE,
            )
        });
        match (name, description) {
            (Some(name), Some(description)) => Some(Box::new(BooleanQuery::new(vec![
                (Occur::Should, name),
                (Occur::Should, description),
            ]))),
            (name, description) => name.or(description),
        }
    }
}

fn boosted(field: Field, word: &str, boost: f32) -> Box<dyn Query> {
    let term = TermQuery::new(
        Term::from_field_text(field, word),
        IndexRecordOption::WithFreqs,
    );
    Box::new(BoostQuery::new(Box::new(term), boost))
}

/// A condition that selects without adding to the score.
fn filter(field: Field, value: &str) -> Box<dyn Query> {
    let term = TermQuery::new(
        Term::from_field_text(field, value),
        IndexRecordOption::Basic,
    );
    Box::new(ConstScoreQuery::new(Box::new(term), 0.0))
}
