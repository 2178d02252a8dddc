//! Input rules, parsed at the edge so inner code holds only valid values.

use chrono::{DateTime, TimeDelta, Utc};

pub const TITLE_MAX: usize = 120;
pub const DESCRIPTION_MAX: usize = 2000;
pub const DISPLAY_NAME_MAX: usize = 40;
pub const SELLER_NAME_MAX: usize = 80;
/// A schedule may be this far in the past, for clocks that disagree a little.
pub const SCHEDULE_SKEW: TimeDelta = TimeDelta::seconds(60);

/// Bad input, with the field it is about and a sentence for the person who sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        message: message.into(),
    }
}

/// Trims and checks a one-line text of 1..=max characters without control characters.
fn line(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 || n > max {
        return Err(invalid(
            field,
            format!("{field} must be 1 to {max} characters (got {n})"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("{field} must be one line without control characters"),
        ));
    }
    Ok(s.to_owned())
}

pub fn title(raw: &str) -> Result<String, ValidationError> {
    line("title", raw, TITLE_MAX)
}

pub fn seller_name(raw: &str) -> Result<String, ValidationError> {
    line("name", raw, SELLER_NAME_MAX)
}

pub fn display_name(raw: &str) -> Result<String, ValidationError> {
    line("display_name", raw, DISPLAY_NAME_MAX)
}

/// A chat comment: 1–500 characters, no control characters but line breaks.
pub fn comment(raw: &str) -> Result<String, ValidationError> {
    const MAX: usize = 500;
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 || n > MAX {
        return Err(invalid(
            "text",
            format!("a comment must be 1 to {MAX} characters (got {n})"),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(
            "text",
            "a comment must not contain control characters",
        ));
    }
    Ok(s.to_owned())
}

pub fn description(raw: &str) -> Result<String, ValidationError> {
    let s = raw.trim();
    let n = s.chars().count();
    if n > DESCRIPTION_MAX {
        return Err(invalid(
            "description",
            format!("description must be at most {DESCRIPTION_MAX} characters (got {n})"),
        ));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(invalid(
            "description",
            "description must not contain control characters",
        ));
    }
    Ok(s.to_owned())
}

/// A show is scheduled from now (a minute of clock skew allowed) to a year ahead.
pub fn scheduled_at(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ValidationError> {
    if at < now - SCHEDULE_SKEW {
        return Err(invalid(
            "scheduled_at",
            format!("scheduled_at {} is in the past", at.to_rfc3339()),
        ));
    }
    if at > now + TimeDelta::days(365) {
        return Err(invalid(
            "scheduled_at",
            "scheduled_at must be within a year from now",
        ));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded_in_characters() {
        assert_eq!(title("  Spring sale  ").unwrap(), "Spring sale");
        assert!(title("   ").unwrap_err().message.contains("1 to 120"));
        assert!(
            title(&"ü".repeat(120)).is_ok(),
            "counted in characters, not bytes"
        );
        assert!(title(&"a".repeat(121)).is_err());
        assert!(title("two\nlines").is_err());
    }

    #[test]
    fn descriptions_may_be_empty_but_not_huge() {
        assert_eq!(description("").unwrap(), "");
        assert!(description("line one\nline two").is_ok());
        assert!(description(&"x".repeat(2001)).is_err());
        assert!(description("bell\u{7}").is_err());
    }

    #[test]
    fn schedules_are_from_now_to_a_year_ahead() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(scheduled_at(now - TimeDelta::seconds(30), now).is_ok());
        assert!(scheduled_at(now - TimeDelta::minutes(5), now).is_err());
        assert!(scheduled_at(now + TimeDelta::days(364), now).is_ok());
        assert!(scheduled_at(now + TimeDelta::days(366), now).is_err());
    }
}
