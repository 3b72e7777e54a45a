//! The error every domain check returns: which field broke which rule (never the value itself,
//! which may be personal).

/// A catalog value that breaks a rule: which field and why (no personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct CatalogError {
    pub field: &'static str,
    pub reason: String,
}

impl CatalogError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        CatalogError {
            field,
            reason: reason.into(),
        }
    }
}
