//! The simulated card provider. It answers like a real provider's test
//! tokens do: `tok_visa` and `tok_mastercard` are authorised,
//! `tok_declined` is declined, `tok_slow` is authorised after a delay, and
//! anything else is not a token it knows.
//!
//! Like a real provider it honours an idempotency key: asking again with a
//! key it has answered returns the first answer at once, so a handler that
//! crashed between the call and its commit does not hold money twice.

use std::sync::Mutex;
use std::time::Duration;

use platform::bounded::Bounded;
use uuid::Uuid;

use crate::domain::Answer;

/// Answers remembered per idempotency key, at most; the oldest go first.
/// A real provider keeps keys for about a day; a redelivery comes far sooner.
const REMEMBERED: usize = 100_000;

pub struct CardProvider {
    slow: Duration,
    answered: Mutex<Bounded<Uuid, Answer>>,
}

impl CardProvider {
    /// A provider whose `tok_slow` answers after `slow`.
    pub fn new(slow: Duration) -> Self {
        CardProvider {
            slow,
            answered: Mutex::new(Bounded::new(REMEMBERED)),
        }
    }

    /// Authorises a payment with `token`; `key` makes repeated calls one.
    pub async fn authorise(&self, key: Uuid, token: &str) -> Answer {
        if let Some(answer) = self.remembered(key) {
            return answer;
        }
        let answer = match token {
            "tok_visa" | "tok_mastercard" => Answer::Authorised,
            "tok_declined" => Answer::Declined,
            "tok_slow" => {
                tokio::time::sleep(self.slow).await;
                Answer::Authorised
            }
            _ => Answer::InvalidToken,
        };
        self.remember(key, answer)
    }

    fn remembered(&self, key: Uuid) -> Option<Answer> {
        self.lock().get(&key).copied()
    }

    /// Stores `answer` unless a concurrent call with the same key got there
    /// first; returns the answer that stands.
    fn remember(&self, key: Uuid, answer: Answer) -> Answer {
        *self.lock().insert(key, answer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bounded<Uuid, Answer>> {
        // The map stays consistent even if a holder panicked mid-way
        // (each update is a single insert or remove), so poisoning is moot.
        self.answered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_tokens_answer_like_the_providers_sandbox() {
        let provider = CardProvider::new(Duration::ZERO);
        for (token, expected) in [
            ("tok_visa", Answer::Authorised),
            ("tok_mastercard", Answer::Authorised),
            ("tok_declined", Answer::Declined),
            ("tok_slow", Answer::Authorised),
            ("tok_unknown", Answer::InvalidToken),
            ("", Answer::InvalidToken),
        ] {
            assert_eq!(
                provider.authorise(Uuid::now_v7(), token).await,
                expected,
                "{token}"
            );
        }
    }

    #[tokio::test]
    async fn a_slow_token_answers_after_the_delay() {
        let provider = CardProvider::new(Duration::from_millis(50));
        let started = std::time::Instant::now();
        assert_eq!(
            provider.authorise(Uuid::now_v7(), "tok_slow").await,
            Answer::Authorised
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_repeated_key_gets_the_first_answer_at_once() {
        let provider = CardProvider::new(Duration::from_secs(60));
        let key = Uuid::now_v7();
        assert_eq!(
            provider.authorise(key, "tok_declined").await,
            Answer::Declined
        );
        // Neither the new token nor its delay matter: the key was answered.
        let again =
            tokio::time::timeout(Duration::from_secs(1), provider.authorise(key, "tok_slow"))
                .await
                .expect("answered at once");
        assert_eq!(again, Answer::Declined);
    }
}
