//! hh-rlhf transcripts: the split SEAL's code uses, and the turns for display.

use crate::domain::Side;

const ASSISTANT_TAG: &str = "Assistant:";

/// Splits a transcript exactly as SEAL's code does (its released `compare/__init__.py` and
/// `rewrite/__init__.py`): `pivot = T.rfind("Assistant:")`, context = `T[:pivot]`, response =
/// `T[pivot:]` (the role tag stays in the response, nothing is stripped). Returns `None` when the
/// tag is missing, which SEAL's code would silently mangle.
pub fn split_last_assistant(text: &str) -> Option<Side> {
    let pivot = text.rfind(ASSISTANT_TAG)?;
    Some(Side { context: text[..pivot].to_owned(), response: text[pivot..].to_owned() })
}

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Human,
    Assistant,
}

/// One turn of a transcript, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

/// Parses `"\n\nHuman: …\n\nAssistant: …"` into turns. Text before the first tag (rare,
/// malformed transcripts) becomes part of a leading human turn so nothing is lost.
pub fn parse_turns(text: &str) -> Vec<Turn> {
    const HUMAN: &str = "\n\nHuman:";
    const ASSISTANT: &str = "\n\nAssistant:";
    let mut marks: Vec<(usize, Role, usize)> = Vec::new();
    for (i, _) in text.match_indices(HUMAN) {
        marks.push((i, Role::Human, HUMAN.len()));
    }
    for (i, _) in text.match_indices(ASSISTANT) {
        marks.push((i, Role::Assistant, ASSISTANT.len()));
    }
    // A transcript that starts with the tag but without the blank line before it.
    for (tag, role) in [("Human:", Role::Human), ("Assistant:", Role::Assistant)] {
        if text.starts_with(tag) {
            marks.push((0, role, tag.len()));
        }
    }
    marks.sort_by_key(|m| m.0);
    let mut turns = Vec::new();
    let first = marks.first().map_or(text.len(), |m| m.0);
    if !text[..first].trim().is_empty() {
        turns.push(Turn { role: Role::Human, text: text[..first].trim().to_owned() });
    }
    for (k, &(start, role, tag_len)) in marks.iter().enumerate() {
        let end = marks.get(k + 1).map_or(text.len(), |m| m.0);
        turns.push(Turn { role, text: text[start + tag_len..end].trim().to_owned() });
    }
    turns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_tag_and_whitespace_like_the_paper_code() {
        let t = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\nAssistant: bye ";
        let side = split_last_assistant(t).unwrap();
        assert_eq!(side.context, "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: and?\n\n");
        assert_eq!(side.response, "Assistant: bye ");
        assert_eq!(side.full(), t);
    }

    #[test]
    fn split_without_tag_is_rejected() {
        assert_eq!(split_last_assistant("\n\nHuman: only a question"), None);
    }

    #[test]
    fn turns_alternate_and_are_trimmed() {
        let turns = parse_turns("\n\nHuman: hi there\n\nAssistant: hello\n\nHuman: ok\n\nAssistant:");
        let roles: Vec<Role> = turns.iter().map(|t| t.role).collect();
        assert_eq!(roles, [Role::Human, Role::Assistant, Role::Human, Role::Assistant]);
        assert_eq!(turns[0].text, "hi there");
        assert_eq!(turns[3].text, "");
    }

    #[test]
    fn turns_keep_text_before_the_first_tag() {
        let turns = parse_turns("preamble\n\nHuman: q\n\nAssistant: a");
        assert_eq!(turns.len(), 3);
        assert_eq!(turns[0].text, "preamble");
    }
}
