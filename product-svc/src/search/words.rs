//! How a name or a description splits into words. Like tantivy's
//! `SimpleTokenizer` (runs of letters and digits), but:
//! - Chinese and Japanese characters (CJK ideographs, kana) are each a word
//!   of their own: those languages write no spaces between words, so a run
//!   of them would be one "word" that only the whole run matches (咖啡
//!   found, 咖 not). A search for several of them must find all (every
//!   word must match), which is near enough to "contains".
//! - Pictographs (emoji and other symbols: ☕, ⌚, 🎧) are each a word too;
//!   the simple tokenizer drops them as punctuation. A flag (two regional
//!   indicators) is one word.
//! - Combining marks stay with the character before them, and every word
//!   is in Unicode normal form NFKC: a decomposed ガ (カ and a combining
//!   mark) is the composed one, halfwidth ｶ is カ, ｆｕｌｌ is full.
//!   Emoji modifiers (skin tones) and variation selectors are not part of
//!   what a word is.

use std::iter::Peekable;
use std::str::CharIndices;

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use unicode_normalization::UnicodeNormalization;

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

impl WordStream<'_> {
    /// Takes the next characters while `more` says they belong; the end
    /// offset after them.
    fn take_while(&mut self, mut to: usize, more: impl Fn(char) -> bool) -> usize {
        while let Some(&(at, next)) = self.chars.peek() {
            if !more(next) {
                break;
            }
            to = at + next.len_utf8();
            self.chars.next();
        }
        to
    }
}

impl TokenStream for WordStream<'_> {
    fn advance(&mut self) -> bool {
        self.token.text.clear();
        self.token.position = self.token.position.wrapping_add(1);
        while let Some((from, c)) = self.chars.next() {
            let to = from + c.len_utf8();
            let to = match Kind::of(c) {
                Kind::Other => continue,
                Kind::Letter => self.take_while(to, |n| Kind::of(n) == Kind::Letter || mark(n)),
                Kind::Alone => self.take_while(to, mark),
                Kind::Flag => {
                    let to = match self.chars.peek() {
                        Some(&(at, next)) if Kind::of(next) == Kind::Flag => {
                            self.chars.next();
                            at + next.len_utf8()
                        }
                        _ => to,
                    };
                    self.take_while(to, mark)
                }
            };
            self.token.offset_from = from;
            self.token.offset_to = to;
            self.token
                .text
                .extend(self.text[from..to].nfkc().filter(|c| !ignorable(*c)));
            if self.token.text.is_empty() {
                continue;
            }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Part of a run of letters and digits.
    Letter,
    /// A word by itself.
    Alone,
    /// A regional indicator: two make a flag.
    Flag,
    /// Not part of a word.
    Other,
}

impl Kind {
    fn of(c: char) -> Kind {
        match u32::from(c) {
            // Regional indicators A–Z.
            0x1F1E6..=0x1F1FF => Kind::Flag,
            // Hiragana, Katakana (not their punctuation: ゠ ・), Katakana
            // phonetic extensions, halfwidth Katakana
            0x3041..=0x3096
            | 0x309D..=0x309F
            | 0x30A1..=0x30FA
            | 0x30FC..=0x30FF
            | 0x31F0..=0x31FF
            | 0xFF66..=0xFF9D
            // CJK ideographs: extension A, unified, compatibility,
            // extensions B on
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xF900..=0xFAFF
            | 0x20000..=0x3FFFF
            // Pictographs: miscellaneous technical, symbols and dingbats,
            // arrows and symbols, the emoji planes (not the skin tones)
            | 0x2300..=0x23FF
            | 0x2600..=0x27BF
            | 0x2B00..=0x2BFF
            | 0x1F000..=0x1F3FA
            | 0x1F400..=0x1FAFF => Kind::Alone,
            _ if c.is_alphanumeric() => Kind::Letter,
            _ => Kind::Other,
        }
    }
}

/// A character that belongs to the one before it: a combining mark
/// (accents, kana voicing marks), a variation selector, an emoji modifier.
fn mark(c: char) -> bool {
    matches!(u32::from(c),
        0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF
        | 0xFE20..=0xFE2F | 0x3099..=0x309A | 0xFF9E..=0xFF9F | 0xFE00..=0xFE0F
        | 0x1F3FB..=0x1F3FF)
}

/// Marks that say how to draw a character, not which: not kept in a word.
fn ignorable(c: char) -> bool {
    matches!(u32::from(c), 0xFE00..=0xFE0F | 0x1F3FB..=0x1F3FF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut tokenizer = WordTokenizer::default();
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while let Some(token) = stream.next() {
            assert!(token.offset_from < token.offset_to && token.offset_to <= text.len());
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
        assert_eq!(
            words("コーヒー・カップ"),
            ["コ", "ー", "ヒ", "ー", "カ", "ッ", "プ"]
        );
        assert!(words("  — … ").is_empty());
    }

    #[test]
    fn marks_stay_with_their_character_and_words_are_nfkc() {
        // Decomposed and composed are one word; halfwidth and fullwidth
        // forms are the usual ones.
        assert_eq!(words("ガ"), words("カ\u{3099}"));
        assert_eq!(words("ｶﾞ"), ["ガ"]);
        assert_eq!(words("cafe\u{301}"), ["café"]);
        assert_eq!(words("ｆｕｌｌ"), ["full"]);
        // Selectors and skin tones go; joined emoji are each a word.
        assert_eq!(
            words("☕\u{FE0F} 👍\u{1F3FD} 👩\u{200D}💻"),
            ["☕", "👍", "👩", "💻"]
        );
        // A flag is one word: 🇺🇸 does not find 🇺🇦🇸🇪.
        assert_eq!(words("🇺🇦🇸🇪"), ["🇺🇦", "🇸🇪"]);
        assert!(!words("🇺🇦🇸🇪").contains(&"🇺🇸".to_owned()));
    }
}
