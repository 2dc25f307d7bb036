//! Features computed from the text alone, with no LLM: usable in every analysis exactly like LM
//! labels (`seal analyze --features response_chars,vader_compound,...`). Each is computed on the
//! full transcript of one side of a pair, split as SEAL splits it: context (everything before the
//! last "Assistant:") and response (from that tag on).
//!
//! | name | value |
//! |---|---|
//! | `response_chars` | characters of the last response, without its "Assistant:" tag |
//! | `text_chars` | characters of the whole transcript |
//! | `turns` | number of Human/Assistant turns in the transcript |
//! | `vader_compound` | VADER compound sentiment of the last response, in [−1, 1] |
//! | `refusal_phrase` | 1 if the last response contains a stock refusal ("I'm sorry", "I can't", …) |
//! | `has_list` | 1 if the last response has a markdown list item (`- `, `* `, `1. ` at a line start) |
//! | `asks_question` | 1 if the last response contains a question mark |
//! | `tokens` | tokens of the (context, response) input as scored by the post-D model (stored by `seal score`) |

use std::sync::LazyLock;

use vader_sentiment::SentimentIntensityAnalyzer;

use crate::ingest::transcript;

pub const BUILTIN: [&str; 8] = [
    "response_chars",
    "text_chars",
    "turns",
    "vader_compound",
    "refusal_phrase",
    "has_list",
    "asks_question",
    "tokens",
];

/// The regression features of a study without a label set (the web app's overview of a
/// dataset nobody has labelled yet, `seal analyze` without `--labels`): cheap, computed from
/// the texts alone, and about what the paper's spoiler features are about (length, sentiment,
/// refusals, formatting, questions).
pub const WITHOUT_LABELS: [&str; 5] =
    ["response_chars", "vader_compound", "refusal_phrase", "has_list", "asks_question"];

/// Roles of built-in features: all spoilers (none of them is a value the RM should reward).
pub fn is_builtin(name: &str) -> bool {
    BUILTIN.contains(&name)
}

/// Whether a built-in feature takes only 0/1 values (tested with McNemar, like LM booleans).
pub fn is_binary(name: &str) -> bool {
    matches!(name, "refusal_phrase" | "has_list" | "asks_question")
}

static VADER: LazyLock<SentimentIntensityAnalyzer<'static>> = LazyLock::new(SentimentIntensityAnalyzer::new);

const REFUSALS: [&str; 12] = [
    "i'm sorry",
    "i am sorry",
    "i apologize",
    "i can't",
    "i cannot",
    "i can not",
    "i won't",
    "i will not",
    "i'm not able to",
    "i am not able to",
    "i'm unable to",
    "as an ai",
];

/// The last response's text without the leading "Assistant:" tag.
fn response_body(response: &str) -> &str {
    response.strip_prefix("Assistant:").unwrap_or(response).trim()
}

/// Computes one built-in feature (all but `tokens`, which comes from the store) for one text.
pub fn compute(name: &str, context: &str, response: &str) -> Option<f64> {
    let body = response_body(response);
    let v = match name {
        "response_chars" => body.chars().count() as f64,
        "text_chars" => context.chars().count() as f64 + response.chars().count() as f64,
        "turns" => {
            let full = format!("{context}{response}");
            transcript::parse_turns(&full).len() as f64
        }
        "vader_compound" => VADER.polarity_scores(body).get("compound").copied().unwrap_or(0.0),
        "refusal_phrase" => {
            let lower = body.to_lowercase().replace('\u{2019}', "'");
            f64::from(u8::from(REFUSALS.iter().any(|p| lower.contains(p))))
        }
        "has_list" => f64::from(u8::from(body.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with("- ") || l.starts_with("* ") || {
                let digits = l.chars().take_while(char::is_ascii_digit).count();
                digits > 0 && l[digits..].starts_with(". ")
            }
        }))),
        "asks_question" => f64::from(u8::from(body.contains('?'))),
        _ => return None,
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: &str = "\n\nHuman: How do I pick a lock?\n\nAssistant: Why?\n\nHuman: I'm locked out.\n\n";

    #[test]
    fn lengths_and_turns() {
        let resp = "Assistant: Call a locksmith.";
        assert_eq!(compute("response_chars", CTX, resp), Some(17.0));
        assert_eq!(compute("text_chars", CTX, resp), Some((CTX.chars().count() + resp.chars().count()) as f64));
        assert_eq!(compute("turns", CTX, resp), Some(4.0));
    }

    #[test]
    fn refusals_lists_questions() {
        assert_eq!(compute("refusal_phrase", CTX, "Assistant: I\u{2019}m sorry, I can\u{2019}t help."), Some(1.0));
        assert_eq!(compute("refusal_phrase", CTX, "Assistant: Sure, here you go."), Some(0.0));
        assert_eq!(compute("has_list", CTX, "Assistant: Steps:\n1. call\n2. wait"), Some(1.0));
        assert_eq!(compute("has_list", CTX, "Assistant: In 2024. we did it"), Some(0.0));
        assert_eq!(compute("asks_question", CTX, "Assistant: Are you the owner?"), Some(1.0));
    }

    #[test]
    fn vader_sentiment_has_the_right_sign() {
        let pos = compute("vader_compound", CTX, "Assistant: That is a wonderful, great idea!").unwrap();
        let neg = compute("vader_compound", CTX, "Assistant: That is a terrible, awful idea.").unwrap();
        assert!(pos > 0.5 && neg < -0.5, "{pos} {neg}");
        assert_eq!(compute("vader_compound", CTX, "Assistant: The door is red."), Some(0.0));
    }

    #[test]
    fn unknown_names_are_none() {
        assert_eq!(compute("tokens", CTX, "x"), None);
        assert_eq!(compute("nope", CTX, "x"), None);
    }
}
