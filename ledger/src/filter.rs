//! Filters on `$all` reads and subscriptions: by stream name or event type, prefixes or a regex.

use crate::error::ReadError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterOn {
    StreamName,
    EventType,
}

#[derive(Clone, Debug)]
enum Matcher {
    /// Matches when the value starts with any of them.
    Prefixes(Vec<String>),
    /// An unanchored match, look-around allowed (clients send `^(?!(a$|b$))`-style excludes).
    Regex(fancy_regex::Regex),
}

#[derive(Clone, Debug)]
pub struct Filter {
    on: FilterOn,
    matcher: Matcher,
}

/// Backtracking steps a regex may take on one value before the value counts as not matching.
const REGEX_BACKTRACK_STEPS_MAX: usize = 100_000;

impl Filter {
    pub fn prefixes(on: FilterOn, prefixes: Vec<String>) -> Self {
        Filter {
            on,
            matcher: Matcher::Prefixes(prefixes),
        }
    }

    pub fn regex(on: FilterOn, pattern: &str) -> Result<Self, ReadError> {
        let re = fancy_regex::RegexBuilder::new(pattern)
            .backtrack_limit(REGEX_BACKTRACK_STEPS_MAX)
            .build()
            .map_err(|e| ReadError::InvalidFilter(format!("regex '{pattern}': {e}")))?;
        Ok(Filter {
            on,
            matcher: Matcher::Regex(re),
        })
    }

    pub fn on(&self) -> FilterOn {
        self.on
    }

    pub fn matches(&self, stream: &str, event_type: &str) -> bool {
        let value = match self.on {
            FilterOn::StreamName => stream,
            FilterOn::EventType => event_type,
        };
        match &self.matcher {
            Matcher::Prefixes(p) => p.iter().any(|p| value.starts_with(p.as_str())),
            // A regex that gives up (backtracking limit) does not match.
            Matcher::Regex(re) => re.is_match(value).unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_regex_with_lookahead() {
        let f = Filter::prefixes(FilterOn::StreamName, vec!["community-".into()]);
        assert!(f.matches("community-1", "X"));
        assert!(!f.matches("ops-1", "X"));
        let ex = Filter::regex(FilterOn::EventType, r"^(?!(\$.+$|Result$))").unwrap();
        assert!(ex.matches("s", "CommunityCreated"));
        assert!(!ex.matches("s", "$metadata"));
        assert!(!ex.matches("s", "Result"));
        assert!(Filter::regex(FilterOn::EventType, "(").is_err());
    }
}
