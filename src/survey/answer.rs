//! One answer of the blind survey, as the page reads it.

use serde::Serialize;

/// What the customer said about the rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum About {
    Product,
    Support,
    Both,
}

impl About {
    pub fn parse(s: &str) -> Option<About> {
        match s {
            "product" => Some(About::Product),
            "support" => Some(About::Support),
            "both" => Some(About::Both),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            About::Product => "product",
            About::Support => "support",
            About::Both => "both",
        }
    }
}

/// One answer from the page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// 1–5.
    pub csat: u8,
    /// Customer Effort, 1–7 ("The company made it easy to handle my issue").
    pub ces: Option<u8>,
    pub about: Option<About>,
    pub comment: Option<String>,
}
