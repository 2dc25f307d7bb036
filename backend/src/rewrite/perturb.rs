//! Built-in perturbations: deterministic edits of a last response that leave its meaning alone,
//! so a reward model that is robust scores the edited pair as it scored the original. Each one
//! keeps the `Assistant:` tag and the context untouched; the randomness of `typos` and the
//! choice of closing or filler come from a seed and the pair, so a rerun gives the same texts.

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
            Perturbation::NoPoliteClosing => "polite closing sentences at the end removed",
            Perturbation::MarkdownList => "a response of two or more sentences written as a markdown bullet list",
            Perturbation::Typos => "adjacent letters swapped in about one word of ten (four letters or more)",
            Perturbation::Lowercase => "the response in lower case",
            Perturbation::Whitespace => "two spaces after every sentence and a trailing newline",
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
        let mut rng = rng_for(key);
        let new = match self {
            Perturbation::PoliteClosing => {
                let last = sentences(text).last().map(|s| s.to_lowercase()).unwrap_or_default();
                if CLOSING_MARKS.iter().any(|m| last.contains(m)) {
                    return response.to_owned();
                }
                format!("{text} {}", CLOSINGS[rng.random_range(0..CLOSINGS.len())])
            }
            Perturbation::NoPoliteClosing => {
                let mut kept = sentences(text);
                while kept.len() > 1
                    && kept.last().is_some_and(|s| CLOSING_MARKS.iter().any(|m| s.to_lowercase().contains(m)))
                {
                    kept.pop();
                }
                kept.join(" ")
            }
            Perturbation::MarkdownList => {
                let s = sentences(text);
                if s.len() < 2 {
                    return response.to_owned();
                }
                let items: Vec<String> = s.iter().map(|x| format!("- {x}")).collect();
                format!("\n{}", items.join("\n"))
            }
            Perturbation::Typos => typos(text, &mut rng),
            Perturbation::Lowercase => text.to_lowercase(),
            Perturbation::Whitespace => format!("{}\n", sentences(text).join("  ")),
            Perturbation::Filler => format!("{} {text}", FILLERS[rng.random_range(0..FILLERS.len())]),
        };
        let lead = if new.starts_with('\n') { "" } else { lead };
        format!("{tag}{lead}{new}")
    }
}

/// A generator seeded by a hash of `key`.
fn rng_for(key: &str) -> StdRng {
    let digest = Sha256::digest(key.as_bytes());
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&digest);
    StdRng::from_seed(seed)
}

/// Sentences by Unicode's rules, trimmed, empty ones dropped.
fn sentences(text: &str) -> Vec<String> {
    text.unicode_sentences().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
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
    fn empty_or_untagged_responses() {
        assert_eq!(Perturbation::Lowercase.apply("Assistant:", "k"), "Assistant:");
        assert_eq!(Perturbation::Lowercase.apply(" Plain Text", "k"), " plain text");
    }
}
