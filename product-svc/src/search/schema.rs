//! The search index's shape: which product fields are searched, filtered,
//! sorted and stored, the text analyzer, and the fixed BM25 statistics that
//! make a product's score independent of how the catalog is split.

use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, RemoveLongFilter, Stemmer,
    StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, Term};

/// Bumped whenever the schema or the analyzers change: an index written
/// with another version is rebuilt from the streams.
pub const SCHEMA_VERSION: u32 = 5;

/// English text: words (a CJK character or a pictograph is a word alone,
/// `words.rs`), lower-cased, accents folded, stop words dropped, stemmed
/// ("computers" finds "computer").
pub const TEXT_ANALYZER: &str = "bazaar_en";
/// [`TEXT_ANALYZER`] without the stemming: the words as written, for
/// matching the start of one ("cas" is the start of "casserole", whose
/// stem is "casserol", while its own stem is "ca").
pub const PLAIN_ANALYZER: &str = "bazaar_plain";
/// A SKU is one case-insensitive token.
pub const SKU_ANALYZER: &str = "bazaar_sku";

/// A name match counts four times a description match. With the fixed
/// statistics below, a one-word name match outscores any description-only
/// match of that word (BM25 caps a field's term score at `k1 + 1` = 2.2
/// times the idf, and a name of up to ~40 words scores over 0.7 of it).
pub const NAME_BOOST: f32 = 4.0;
pub const SKU_BOOST: f32 = 4.0;
pub const DESCRIPTION_BOOST: f32 = 1.0;
pub const CATEGORY_BOOST: f32 = 1.0;

/// What a query whose words are the product's whole name adds, per word:
/// more than any word can score in name and description together (at most
/// `(NAME_BOOST + DESCRIPTION_BOOST) × 2.2 × idf`, about 76 with the fixed
/// statistics), so a product named exactly what was asked for comes first
/// ("kettle" finds "Kettle" before "Kettle descaler" and "Electric kettle"
/// whose descriptions say kettle again).
pub const EXACT_NAME_SCORE_PER_WORD: f32 = 100.0;

/// What the start of a word adds when the query's last word is only that
/// ("keyb" and "Keyboard"), in the name or the description: a constant,
/// far below what a whole word scores (a name match of one word scores
/// about 40 with the fixed statistics, a description match about 10), so
/// whole-word matches come first.
pub const NAME_WORD_START_SCORE: f32 = 2.0;
pub const DESCRIPTION_WORD_START_SCORE: f32 = 0.5;
/// A last word shorter than this many characters is matched whole only:
/// "ca" would expand to most of the catalog.
pub const SHORTEST_WORD_START: usize = 3;

/// Words longer than this many bytes are not indexed (a German compound
/// noun of 50 letters is kept).
const LONGEST_WORD_BYTES: usize = 100;

/// The index's fields.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// The product id, hyphenated: the term updates delete by.
    pub id: Field,
    /// The id's two halves as numbers: the tie-break of equal scores.
    pub id_hi: Field,
    pub id_lo: Field,
    pub sku: Field,
    pub name: Field,
    pub description: Field,
    /// Lower-cased category: the exact, case-insensitive filter.
    pub category: Field,
    /// The category's words, searched like a description's ("books" finds
    /// what the category "Books" holds).
    pub category_words: Field,
    /// The name's words unstemmed ([`PLAIN_ANALYZER`]): what the start of
    /// the query's last word is matched against.
    pub name_plain: Field,
    /// `active`, `discontinued` or `unlisted` (stock seen before the product).
    pub status: Field,
    /// Lower-cased name: the listing order when there is no text.
    pub name_key: Field,
    /// The name's analyzed words, in order, as one term: the exact match.
    pub name_words: Field,
    /// The whole record as JSON: what hits show and updates start from.
    pub record: Field,
}

/// The schema and its fields.
pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = |analyzer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let fields = Fields {
        id: b.add_text_field("id", STRING),
        id_hi: b.add_u64_field("id_hi", FAST),
        id_lo: b.add_u64_field("id_lo", FAST),
        sku: b.add_text_field("sku", text(SKU_ANALYZER)),
        name: b.add_text_field("name", text(TEXT_ANALYZER)),
        description: b.add_text_field("description", text(TEXT_ANALYZER)),
        category: b.add_text_field("category", STRING),
        category_words: b.add_text_field("category_words", text(TEXT_ANALYZER)),
        name_plain: b.add_text_field("name_plain", text(PLAIN_ANALYZER)),
        status: b.add_text_field("status", STRING),
        name_key: b.add_text_field("name_key", TextOptions::default().set_fast("raw")),
        name_words: b.add_text_field("name_words", STRING),
        record: b.add_bytes_field("record", STORED),
    };
    (b.build(), fields)
}

/// Registers the analyzers the schema names; an index needs them every
/// time it is opened, since only their names are stored.
pub fn register_analyzers(index: &Index) {
    index.tokenizers().register(TEXT_ANALYZER, text_analyzer());
    index
        .tokenizers()
        .register(PLAIN_ANALYZER, plain_analyzer());
    index.tokenizers().register(
        SKU_ANALYZER,
        TextAnalyzer::builder(RawTokenizer::default())
            .filter(LowerCaser)
            .build(),
    );
}

/// The analyzer of names and descriptions, for documents and queries alike.
pub fn text_analyzer() -> TextAnalyzer {
    words_analyzer()
        .filter_dynamic(Stemmer::new(Language::English))
        .build()
}

/// [`text_analyzer`] without the stemming; the same words, one for one.
pub fn plain_analyzer() -> TextAnalyzer {
    words_analyzer().build()
}

fn words_analyzer() -> tantivy::tokenizer::TextAnalyzerBuilder {
    let builder = TextAnalyzer::builder(super::words::WordTokenizer::default())
        .filter_dynamic(RemoveLongFilter::limit(LONGEST_WORD_BYTES))
        .filter_dynamic(LowerCaser)
        .filter_dynamic(AsciiFoldingFilter);
    match StopWordFilter::new(Language::English) {
        Some(stop_words) => builder.filter_dynamic(stop_words),
        None => builder,
    }
}

/// The words of a [`words_key`], each once, in their first order.
pub fn distinct_words(key: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in key.split(' ').filter(|w| !w.is_empty()) {
        if !words.iter().any(|w| w == word) {
            words.push(word.to_owned());
        }
    }
    words
}

/// A text's analyzed words in order, repeats kept, as one string: a
/// product's name and a query with the same words give the same string.
pub fn words_key(analyzer: &mut TextAnalyzer, text: &str) -> String {
    let mut stream = analyzer.token_stream(text);
    let mut key = String::with_capacity(text.len());
    while let Some(token) = stream.next() {
        if !key.is_empty() {
            key.push(' ');
        }
        key.push_str(&token.text);
    }
    key
}

/// BM25 statistics that do not depend on the shard's contents.
///
/// BM25 normally weighs a word by how rare it is in the index at hand.
/// A shard only sees its share of the catalog, so the same product would
/// score differently with 1 or 3 shards, and the merged order would depend
/// on the split. Fixed statistics make every score a function of the
/// product and the query alone: results are identical for any K, at the
/// price of not favouring rare words (stop words are dropped instead).
pub struct FixedStatistics {
    fields: Fields,
}

/// The catalog size the statistics pretend to; only ratios matter.
const CORPUS_DOCS: u64 = 1_000_000;

impl FixedStatistics {
    pub fn new(fields: Fields) -> Self {
        FixedStatistics { fields }
    }

    /// The average length assumed per field, in words. Names are assumed
    /// long so that length barely penalises a long name (see NAME_BOOST).
    fn average_words(&self, field: Field) -> u64 {
        if field == self.fields.name {
            20
        } else if field == self.fields.description {
            40
        } else {
            1
        }
    }
}

impl Bm25StatisticsProvider for FixedStatistics {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        Ok(self.average_words(field) * CORPUS_DOCS)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(CORPUS_DOCS)
    }

    fn doc_freq(&self, _term: &Term) -> tantivy::Result<u64> {
        Ok(CORPUS_DOCS / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words of `text` as the index holds them, each once.
    fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
        distinct_words(&words_key(analyzer, text))
    }

    #[test]
    fn text_is_lowercased_stemmed_and_stripped_of_stop_words() {
        let mut analyzer = text_analyzer();
        assert_eq!(
            tokens(&mut analyzer, "The Computers for Gaming, gaming!"),
            ["comput", "game"]
        );
        assert_eq!(tokens(&mut analyzer, "Café"), ["cafe"]);
        assert!(tokens(&mut analyzer, "the of and").is_empty());
    }

    #[test]
    fn a_query_and_a_name_of_the_same_words_have_the_same_key() {
        let mut analyzer = text_analyzer();
        assert_eq!(words_key(&mut analyzer, "The Kettles"), "kettl");
        assert_eq!(
            words_key(&mut analyzer, "electric KETTLE"),
            words_key(&mut analyzer, "Electric kettle")
        );
        assert_ne!(
            words_key(&mut analyzer, "kettle electric"),
            words_key(&mut analyzer, "electric kettle")
        );
        let compound = "Donaudampfschifffahrtsgesellschaftskapitänsmütze";
        assert_eq!(
            tokens(&mut analyzer, compound).len(),
            1,
            "a long word is kept"
        );
    }
}
