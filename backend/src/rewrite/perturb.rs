//! Built-in perturbations: deterministic edits of a last response that leave its meaning alone,
//! so a reward model that is robust scores the edited pair as it scored the original. Each one
//! keeps the `Assistant:` tag and the context untouched; the randomness of `typos` and the
//! choice of closing or filler come from a seed and the pair, so a rerun gives the same texts.
//! Text a perturbation does not edit keeps its bytes (line breaks, indentation, trailing
//! whitespace), and one with nothing to edit returns the response unchanged, so the pipeline
//! counts that pair as not applicable rather than as rewritten.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use unicode_segmentation::UnicodeSegmentation;

/// A built-in perturbation of a last response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perturbation {
    PoliteClosing,
    NoPoliteClosing,
    MarkdownList,
    Typos,
    Lowercase,
    Whitespace,
    Filler,
}

const CLOSINGS: [&str; 4] = [
    "I hope this helps!",
    "Let me know if you have any other questions.",
    "Feel free to ask if anything is unclear.",
    "Happy to help further if you need it.",
];

/// Phrases that make a sentence a polite closing (compared in lower case).
const CLOSING_MARKS: [&str; 10] = [
    "hope this helps",
    "hope that helps",
    "let me know if",
    "feel free to",
    "you're welcome",
    "you are welcome",
    "glad i could help",
    "happy to help",
    "is there anything else",
    "have a great day",
];

const FILLERS: [&str; 3] =
    ["Let me think about that for a moment.", "Here is what I can say about that.", "Okay, so to answer that."];

impl Perturbation {
    pub const ALL: [Perturbation; 7] = [
        Perturbation::PoliteClosing,
        Perturbation::NoPoliteClosing,
        Perturbation::MarkdownList,
        Perturbation::Typos,
        Perturbation::Lowercase,
        Perturbation::Whitespace,
        Perturbation::Filler,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Perturbation::PoliteClosing => "polite-closing",
            Perturbation::NoPoliteClosing => "no-polite-closing",
            Perturbation::MarkdownList => "markdown-list",
            Perturbation::Typos => "typos",
            Perturbation::Lowercase => "lowercase",
            Perturbation::Whitespace => "whitespace",
            Perturbation::Filler => "filler",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Perturbation::PoliteClosing => {
                "a polite closing sentence added (\"I hope this helps!\" …) unless one is there"
            }
            Perturbation::NoPoliteClosing => "polite closing sentences at the end removed, the rest as it was",
            Perturbation::MarkdownList => {
                "a response of two or more sentences on one line written as a markdown bullet list"
            }
            Perturbation::Typos => "adjacent letters swapped in about one word of ten (four letters or more)",
            Perturbation::Lowercase => "the response in lower case",
            Perturbation::Whitespace => {
                "two spaces after every sentence that ends within a line, and a trailing newline"
            }
            Perturbation::Filler => {
                "a neutral filler sentence before the response (\"Let me think about that for a moment.\" …)"
            }
        }
    }

    pub fn parse(name: &str) -> Option<Perturbation> {
        Perturbation::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The perturbed last response. `key` (seed and pair) makes random choices reproducible.
    /// Returns the response unchanged where the perturbation does not apply.
    pub fn apply(self, response: &str, key: &str) -> String {
        const TAG: &str = "Assistant:";
        let (tag, body) = match response.strip_prefix(TAG) {
            Some(rest) => (TAG, rest),
            None => ("", response),
        };
        let lead = &body[..body.len() - body.trim_start().len()];
        let text = body.trim();
        if text.is_empty() {
            return response.to_owned();
        }
        // The whitespace after the text stays after the edited text.
        let trail = &body[lead.len() + text.len()..];
        let mut rng = rng_for(key);
        let new = match self {
            Perturbation::PoliteClosing => {
                if text.unicode_sentences().last().is_some_and(is_closing) {
                    return response.to_owned();
                }
                // The closing takes the place of the trailing whitespace.
                return format!("{tag}{lead}{text} {}", CLOSINGS[rng.random_range(0..CLOSINGS.len())]);
            }
            Perturbation::NoPoliteClosing => match closing_start(text) {
                // Cut where the first closing starts, with the whitespace before it.
                Some(at) => text[..at].trim_end().to_owned(),
                None => return response.to_owned(),
            },
            Perturbation::MarkdownList => {
                let items = list_items(text);
                if items.len() < 2 || has_line_break(text) {
                    return response.to_owned();
                }
                let items: Vec<String> = items.iter().map(|x| format!("- {x}")).collect();
                format!("\n{}", items.join("\n"))
            }
            Perturbation::Typos => typos(text, &mut rng),
            Perturbation::Lowercase => text.to_lowercase(),
            Perturbation::Whitespace => return format!("{tag}{lead}{}\n", double_spaced(text)),
            Perturbation::Filler => format!("{} {text}", FILLERS[rng.random_range(0..FILLERS.len())]),
        };
        let lead = if new.starts_with('\n') { "" } else { lead };
        format!("{tag}{lead}{new}{trail}")
    }
}

/// A generator seeded by a hash of `key`.
fn rng_for(key: &str) -> StdRng {
    let digest = Sha256::digest(key.as_bytes());
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&digest);
    StdRng::from_seed(seed)
}

/// Whether a sentence is a polite closing.
fn is_closing(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    CLOSING_MARKS.iter().any(|m| lower.contains(m))
}

fn has_line_break(text: &str) -> bool {
    text.contains(['\n', '\r', '\u{0b}', '\u{0c}', '\u{85}', '\u{2028}', '\u{2029}'])
}

/// The byte offset in `text` (trimmed) where its polite closing sentences at the end start, when
/// it has any and another sentence comes before them. Segments without a letter or digit (a
/// lone emoticon) are not sentences, as for `unicode_sentences`: after a closing they go with it.
fn closing_start(text: &str) -> Option<usize> {
    let starts: Vec<(usize, &str)> = text
        .split_sentence_bound_indices()
        .filter(|(_, s)| s.chars().any(char::is_alphanumeric))
        .map(|(at, s)| (at + s.len() - s.trim_start().len(), s.trim()))
        .collect();
    let mut kept = starts.len();
    while kept > 1 && is_closing(starts[kept - 1].1) {
        kept -= 1;
    }
    starts.get(kept).map(|&(at, _)| at)
}

/// The sentences of a markdown list: a segment without a letter or digit (a lone emoticon)
/// joins the item before it instead of being dropped.
fn list_items(text: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for s in text.split_sentence_bounds().map(str::trim).filter(|s| !s.is_empty()) {
        match items.last_mut() {
            Some(last) if !s.chars().any(char::is_alphanumeric) => {
                last.push(' ');
                last.push_str(s);
            }
            _ => items.push(s.to_owned()),
        }
    }
    items
}

/// `text` with two spaces after every sentence that the next follows on the same line; the
/// whitespace around line breaks and the sentences themselves stay as they are.
fn double_spaced(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for s in text.split_sentence_bounds() {
        let sentence = s.trim_end();
        let gap = &s[sentence.len()..];
        out.push_str(sentence);
        if gap.is_empty() || has_line_break(gap) {
            out.push_str(gap);
        } else {
            out.push_str("  ");
        }
    }
    out
}

/// Swaps two adjacent inner letters in about one word of ten of four letters or more, and in at
/// least one such word when there is any.
fn typos(text: &str, rng: &mut StdRng) -> String {
    let words: Vec<&str> = text.split_word_bounds().collect();
    let eligible: Vec<usize> = words
        .iter()
        .enumerate()
        .filter(|(_, w)| w.chars().count() >= 4 && w.chars().all(char::is_alphabetic))
        .map(|(i, _)| i)
        .collect();
    if eligible.is_empty() {
        return text.to_owned();
    }
    let mut pick: Vec<usize> = eligible.iter().copied().filter(|_| rng.random_bool(0.1)).collect();
    if pick.is_empty() {
        pick.push(eligible[rng.random_range(0..eligible.len())]);
    }
    let mut out = String::with_capacity(text.len());
    for (i, w) in words.iter().enumerate() {
        if pick.contains(&i) {
            let mut chars: Vec<char> = w.chars().collect();
            // Inner letters only: the first and last stay, as in human typos that stay readable.
            let at = rng.random_range(1..chars.len() - 2);
            chars.swap(at, at + 1);
            if chars.iter().collect::<String>() == *w {
                // A doubled letter: swapping changed nothing, so drop one of them instead.
                chars.remove(at);
            }
            out.extend(chars);
        } else {
            out.push_str(w);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "Assistant: Sure. You can bake bread at home with flour, water and yeast. Knead it well.";

    #[test]
    fn the_web_app_offers_every_perturbation_by_its_name() {
        let names: Vec<&str> = Perturbation::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(names, seal_shared::jobs::PERTURBATIONS);
        for name in names {
            assert_eq!(Perturbation::parse(name).map(Perturbation::name), Some(name));
        }
    }

    #[test]
    fn every_perturbation_changes_the_response_and_keeps_the_tag() {
        for p in Perturbation::ALL {
            let out = p.apply(R, "7:hh/1:chosen");
            assert!(out.starts_with("Assistant:"), "{}: {out:?}", p.name());
            if p != Perturbation::NoPoliteClosing {
                assert_ne!(out, R, "{}", p.name());
            }
            assert_eq!(out, p.apply(R, "7:hh/1:chosen"), "{} is deterministic", p.name());
            assert_eq!(Perturbation::parse(p.name()), Some(p));
        }
    }

    #[test]
    fn what_each_does() {
        let k = "0:x";
        let closed = Perturbation::PoliteClosing.apply(R, k);
        assert!(CLOSINGS.iter().any(|c| closed == format!("{R} {c}")), "{closed}");
        // Adding twice adds once; removing undoes it.
        assert_eq!(Perturbation::PoliteClosing.apply(&closed, k), closed);
        assert_eq!(Perturbation::NoPoliteClosing.apply(&closed, k), R);
        assert_eq!(Perturbation::NoPoliteClosing.apply(R, k), R, "nothing to remove");
        assert_eq!(
            Perturbation::MarkdownList.apply(R, k),
            "Assistant:\n- Sure.\n- You can bake bread at home with flour, water and yeast.\n- Knead it well."
        );
        assert_eq!(Perturbation::MarkdownList.apply("Assistant: Yes.", k), "Assistant: Yes.", "one sentence stays");
        assert_eq!(
            Perturbation::Lowercase.apply(R, k),
            R.replacen(" Sure", " sure", 1).replace(" You", " you").replace(" Knead", " knead")
        );
        assert_eq!(
            Perturbation::Whitespace.apply(R, k),
            "Assistant: Sure.  You can bake bread at home with flour, water and yeast.  Knead it well.\n"
        );
        let filled = Perturbation::Filler.apply(R, k);
        assert!(FILLERS.iter().any(|f| filled
            == format!("Assistant: {f} Sure. You can bake bread at home with flour, water and yeast. Knead it well.")));
        let typo = Perturbation::Typos.apply(R, k);
        assert_eq!(typo.len(), R.len(), "letters swapped, none added");
        let changed: Vec<(&str, &str)> = R.split(' ').zip(typo.split(' ')).filter(|(a, b)| a != b).collect();
        assert!(!changed.is_empty());
        for (a, b) in changed {
            let (mut x, mut y): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            assert_eq!((x[0], x[x.len() - 1]), (y[0], y[y.len() - 1]), "{a} → {b}: ends kept");
            x.sort_unstable();
            y.sort_unstable();
            assert_eq!(x, y, "{a} → {b}: same letters");
        }
        // Different pairs get different draws.
        let draws: std::collections::HashSet<String> =
            (0..20).map(|i| Perturbation::Typos.apply(R, &format!("{i}"))).collect();
        assert!(draws.len() > 3);
    }

    #[test]
    fn no_polite_closing_removes_only_the_closing_and_keeps_the_layout() {
        let k = "0:x";
        let p = Perturbation::NoPoliteClosing;
        // Nothing to remove: the response comes back byte for byte.
        for r in [
            "Assistant: Here are some ideas:\n1. Bake bread.\n2. Walk.",
            "Assistant: Here are some ideas:\n\n  - Bake bread.\n  - Walk. \n",
            "Assistant: Sure.  Knead it well. ",
            "Plain completion.\r\nSecond line.",
        ] {
            assert_eq!(p.apply(r, k), r);
        }
        // Removed: from where the first closing starts, with the whitespace before it; the lines
        // before it and the whitespace after the response stay.
        assert_eq!(
            p.apply("Assistant: Here are some ideas:\n1. Bake bread.\n2. Walk.\n\nI hope this helps!", k),
            "Assistant: Here are some ideas:\n1. Bake bread.\n2. Walk."
        );
        assert_eq!(
            p.apply("Assistant: Ideas:\n- Bake.\n- Walk. Let me know if you need more. Have a great day! :)\n", k),
            "Assistant: Ideas:\n- Bake.\n- Walk.\n"
        );
        // A closing that is the whole response stays.
        assert_eq!(p.apply("Assistant: Happy to help!", k), "Assistant: Happy to help!");
    }

    #[test]
    fn untouched_text_keeps_its_bytes() {
        let k = "0:x";
        let lines = "Assistant: Here are some ideas:\n1. Bake bread.\n2. Walk.\n";
        // Line breaks stay line breaks; only same-line sentence gaps get two spaces.
        assert_eq!(
            Perturbation::Whitespace.apply(lines, k),
            "Assistant: Here are some ideas:\n1.  Bake bread.\n2.  Walk.\n"
        );
        assert_eq!(Perturbation::Whitespace.apply("Assistant: Done.\n", k), "Assistant: Done.\n", "nothing to do");
        // A list is not made of a response laid out over lines.
        assert_eq!(Perturbation::MarkdownList.apply(lines, k), lines);
        // A segment without letters or digits stays with the item before it.
        assert_eq!(
            Perturbation::MarkdownList.apply("Assistant: Sure. Bake it. \u{1F60A}", k),
            "Assistant:\n- Sure.\n- Bake it. \u{1F60A}"
        );
        assert_eq!(
            Perturbation::Lowercase.apply(lines, k),
            lines.replace(" Here", " here").replace("Bake", "bake").replace("Walk", "walk")
        );
        let filled = Perturbation::Filler.apply(lines, k);
        assert!(filled.ends_with(" Here are some ideas:\n1. Bake bread.\n2. Walk.\n"), "{filled:?}");
        let typo = Perturbation::Typos.apply(lines, k);
        assert_eq!(typo.matches('\n').count(), 3, "{typo:?}");
        assert!(typo.ends_with(".\n"), "{typo:?}");
    }

    #[test]
    fn empty_or_untagged_responses() {
        assert_eq!(Perturbation::Lowercase.apply("Assistant:", "k"), "Assistant:");
        assert_eq!(Perturbation::Lowercase.apply(" Plain Text", "k"), " plain text");
    }
}
