//! The customer's contact e-mail address an order may carry.

use contracts::commands::FieldError;

/// The longest address SMTP can deliver to (RFC 5321's path limit less
/// the angle brackets).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Checks an order's optional contact address: at most 254 characters,
/// exactly one '@' with something on both sides, no whitespace or control
/// characters. Deliberately no stricter: the mail provider is the judge of
/// deliverability, checkout only keeps out what can never be an address.
pub fn check_contact_email(email: Option<&str>) -> Result<(), Vec<FieldError>> {
    let Some(email) = email else {
        return Ok(());
    };
    let one_at = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    });
    let clean = !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if one_at && clean && email.chars().count() <= MAX_EMAIL_CHARS {
        Ok(())
    } else {
        Err(vec![FieldError {
            field: "contact_email".to_owned(),
            message: format!(
                "must be an e-mail address of at most {MAX_EMAIL_CHARS} characters with one '@' \
                 and no whitespace, e.g. jana@example.org"
            ),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_without_contact_email_is_accepted() {
        assert_eq!(check_contact_email(None), Ok(()));
    }

    #[test]
    fn a_plain_address_is_accepted() {
        assert_eq!(
            check_contact_email(Some("jana.nowak+shop@example.org")),
            Ok(())
        );
    }

    #[test]
    fn an_address_of_254_characters_is_accepted_and_of_255_refused() {
        let local = "a".repeat(64);
        let longest = format!("{local}@{}", "d".repeat(MAX_EMAIL_CHARS - 65));
        assert_eq!(longest.chars().count(), MAX_EMAIL_CHARS);
        assert_eq!(check_contact_email(Some(&longest)), Ok(()));
        assert!(check_contact_email(Some(&format!("{longest}x"))).is_err());
    }

    #[test]
    fn addresses_without_exactly_one_at_or_with_whitespace_are_refused() {
        for bad in [
            "",
            "jana.example.org",
            "jana@@example.org",
            "jana@shop@example.org",
            "@example.org",
            "jana@",
            "jana @example.org",
            "jana@example.org\n",
            "jana\t@example.org",
        ] {
            let errors = check_contact_email(Some(bad)).expect_err(bad);
            assert_eq!(errors[0].field, "contact_email", "{bad:?}");
        }
    }
}
