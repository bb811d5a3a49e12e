//! How a name or a description splits into words. Like tantivy's
//! `SimpleTokenizer` (runs of letters and digits), but:
//! - Chinese and Japanese characters (CJK ideographs, kana) are each a word
//!   of their own: those languages write no spaces between words, so a run
//!   of them would be one "word" that only the whole run matches (咖啡
//!   found, 咖 not). A search for several of them must find all (every
//!   word must match), which is near enough to "contains".
//! - Pictographs (emoji and other symbols: ☕, ⌚, 🎧) are each a word too;
//!   the simple tokenizer drops them as punctuation.

use std::iter::Peekable;
use std::str::CharIndices;

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

#[derive(Clone, Default)]
pub struct WordTokenizer {
    token: Token,
}

pub struct WordStream<'a> {
    text: &'a str,
    chars: Peekable<CharIndices<'a>>,
    token: &'a mut Token,
}

impl Tokenizer for WordTokenizer {
    type TokenStream<'a> = WordStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordStream<'a> {
        self.token.reset();
        WordStream {
            text,
            chars: text.char_indices().peekable(),
            token: &mut self.token,
        }
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        self.token.text.clear();
        self.token.position = self.token.position.wrapping_add(1);
        while let Some((from, c)) = self.chars.next() {
            let mut to = from + c.len_utf8();
            if !alone(c) {
                if !c.is_alphanumeric() {
                    continue;
                }
                while let Some(&(at, next)) = self.chars.peek() {
                    if !next.is_alphanumeric() || alone(next) {
                        break;
                    }
                    to = at + next.len_utf8();
                    self.chars.next();
                }
            }
            self.token.offset_from = from;
            self.token.offset_to = to;
            self.token.text.push_str(&self.text[from..to]);
            return true;
        }
        false
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// A character that is a word by itself.
fn alone(c: char) -> bool {
    matches!(u32::from(c),
        // Hiragana, Katakana, Katakana phonetic extensions
        0x3040..=0x30FF | 0x31F0..=0x31FF
        // CJK ideographs: extension A, unified, compatibility, extensions B on
        | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F
        // Pictographs: miscellaneous technical, symbols and dingbats,
        // arrows and symbols, and the emoji planes
        | 0x2300..=0x23FF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x1F000..=0x1FAFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut tokenizer = WordTokenizer::default();
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            assert_eq!(&text[token.offset_from..token.offset_to], token.text);
            out.push(token.text.clone());
        }
        out
    }

    #[test]
    fn latin_words_split_as_before_and_cjk_and_emoji_are_words_alone() {
        assert_eq!(
            words("Hello, happy tax-payer 42!"),
            ["Hello", "happy", "tax", "payer", "42"]
        );
        assert_eq!(
            words("Café crème ☕ 咖啡"),
            ["Café", "crème", "☕", "咖", "啡"]
        );
        assert_eq!(
            words("USB充電器x2🎧"),
            ["USB", "充", "電", "器", "x2", "🎧"]
        );
        assert_eq!(words("コーヒー"), ["コ", "ー", "ヒ", "ー"]);
        // The emoji's variation selector and joiners are not words.
        assert_eq!(words("☕\u{FE0F} 👩\u{200D}💻"), ["☕", "👩", "💻"]);
        assert!(words("  — … ").is_empty());
    }
}
