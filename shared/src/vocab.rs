//! The contract's closed vocabularies: every field that takes one of a few fixed words is one of
//! these enums. Each serializes as the word it always had on the wire, prints it (`Display`),
//! parses it (`FromStr`, for the CLI and query strings) and, through [`Vocabulary`], lists the
//! words it accepts, so a bad value is refused with the valid ones named.

use std::fmt;

use serde::{Deserialize, Serialize};
use strum::{IntoStaticStr, VariantArray, VariantNames};

/// A word outside a closed vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    pub value: String,
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not one of {}", self.value, self.expected.join(", "))
    }
}

impl std::error::Error for UnknownValue {}

/// A closed vocabulary: its words and the parse that names them when a value is not one.
pub trait Vocabulary: Copy + 'static + VariantArray + VariantNames + Into<&'static str> {
    /// Every accepted word, in declaration order.
    fn words() -> &'static [&'static str] {
        <Self as VariantNames>::VARIANTS
    }

    /// Every value, in declaration order.
    fn all() -> &'static [Self] {
        <Self as VariantArray>::VARIANTS
    }

    /// The value spelled `s`, or an error listing the accepted words.
    fn parse_word(s: &str) -> Result<Self, UnknownValue> {
        <Self as VariantArray>::VARIANTS
            .iter()
            .copied()
            .find(|v| Into::<&'static str>::into(*v) == s)
            .ok_or_else(|| UnknownValue { value: s.to_owned(), expected: Self::words() })
    }
}

/// Declares vocabularies: the enum with serde, `Display`, `FromStr` and [`Vocabulary`], its
/// words spelled as `enum Name as "case"` says (serde's, strum's and utoipa's shared `rename_all`
/// spelling; a `tt`, not a `literal`, so that utoipa's derive reads it too).
macro_rules! vocabulary {
    ($(
        $(#[$meta:meta])*
        enum $name:ident as $case:tt { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }
    )+) => {$(
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            strum::Display, IntoStaticStr, VariantArray, VariantNames, utoipa::ToSchema,
        )]
        #[serde(rename_all = $case)]
        #[strum(serialize_all = $case)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl Vocabulary for $name {}

        impl $name {
            /// The wire word of this value.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                Self::parse_word(s)
            }
        }
    )+};
}

vocabulary! {
    /// The source format of a dataset.
    enum DatasetFormat as "kebab-case" {
        /// Anthropic/hh-rlhf transcripts: `{"chosen", "rejected"}`, split at the last "Assistant:".
        HhRlhf,
        /// Explicit pairs (context and both responses).
        Pairs,
        /// A rewrite of another dataset (`seal rewrite`), named `<base>@<variant>`.
        Variant,
    }

    /// Where a model's scores come from.
    enum ModelKind as "kebab-case" {
        /// A folder SEAL Lab runs with ONNX Runtime.
        Onnx,
        /// Scores computed elsewhere and imported.
        Imported,
        /// Served by inference servers (Open Inference Protocol); the folder holds its tokenizer.
        Served,
    }

    /// How a reward model receives (context, response).
    enum InputFormat as "kebab-case" {
        /// A tokenizer text pair `(context, response)`, as SEAL calls the OpenAssistant RMs.
        Pair,
        /// One text: `context + response`.
        Concat,
    }

    /// What to do with inputs longer than the model's maximum length.
    enum Truncation as "kebab-case" {
        /// Feed the whole text, as the paper does (DeBERTa-v3 has relative positions only).
        None,
        /// Drop the oldest context tokens so the response survives; when the response alone is
        /// too long, fall back to `longest-first`.
        ContextLeft,
        /// Hugging Face's default `truncation=True`: cut the longer sequence from its end.
        LongestFirst,
    }

    /// The arithmetic of a model's graph.
    enum Precision as "lowercase" {
        /// Scores as SEAL computes them.
        Fp32,
        /// A dynamically quantized graph: faster on CPU, its scores drift from fp32.
        Int8,
        /// Half-precision weights and arithmetic: several times faster on GPUs, its scores drift
        /// from fp32.
        Fp16,
    }

    /// Whether a model prefers the human-chosen response. Agreement is strict, as in SEAL:
    /// chosen must score higher than rejected; ties are counted apart.
    enum Agreement as "snake_case" {
        Agree,
        Disagree,
        Tie,
    }

    /// Who speaks a turn of a transcript.
    enum Speaker as "snake_case" {
        Human,
        Assistant,
    }

    /// What `seal ingest` did with a source.
    enum SourceOutcome as "snake_case" {
        /// A new source of the dataset.
        Added,
        /// The source's content changed and replaced the earlier one (`--replace`).
        Replaced,
        /// The same content was ingested before; nothing was written.
        Unchanged,
    }

    /// What `seal labels import` did.
    enum LabelImportOutcome as "snake_case" {
        Stored,
        /// The same content was imported before; nothing was written.
        Unchanged,
    }

    /// How a variant dataset was made.
    enum VariantKind as "snake_case" {
        /// A built-in deterministic perturbation.
        Perturbation,
        /// An LM rewrite (SEAL's prompt).
        Llm,
        /// The original a variant was made from (only on a variant's own pair page).
        Original,
    }

    /// Which texts of a pair a rewrite touched.
    enum Sides as "snake_case" {
        Both,
        Chosen,
        Rejected,
    }

    /// A model's part in a study: the reward model before or after training on D.
    enum ModelRole as "snake_case" {
        Pre,
        Post,
    }

    /// A feature's part in a study.
    enum FeatureRole as "snake_case" {
        /// A feature the preference data is meant to teach.
        Target,
        /// A feature it should not teach.
        Spoiler,
    }

    /// What a feature-imprint row's outcome is: a model's score, or the post-D minus the pre-D
    /// score.
    enum ImprintOutcome as "snake_case" {
        Pre,
        Post,
        PostMinusPre,
    }

    /// How a feature-imprint regression is fitted.
    enum ImprintVariant as "snake_case" {
        /// The released code exactly: OLS on the 2N texts of an intercept, the features and
        /// `row_id` (R's `reward ~ .`), classical standard errors, Bonferroni over every
        /// coefficient.
        Pooled,
        /// The same design with standard errors clustered by pair (what the released code's
        /// `cluster = row_id` meant; `coeftest` ignores it).
        PooledClustered,
        /// The paper's formula: pair fixed effects (first differences), standard errors
        /// clustered by pair.
        PairFe,
    }

    /// A binary agreement indicator of a non-indifferent pair, as in the McNemar tests of SEAL's
    /// released `analysis/main_results.ipynb` (cell 6): does the LM-labeler, the pre-D model or
    /// the post-D model prefer the human's choice, and do the LM-labeler and the post-D model
    /// prefer the same response.
    enum AgreementIndicator as "snake_case" {
        LmHuman,
        PreHuman,
        PostHuman,
        LmPost,
    }

    /// The test of a feature's chosen-vs-rejected rate.
    enum FeatureTestKind as "snake_case" {
        /// Exact McNemar on the discordant pairs (binary features).
        McnemarExact,
        /// Paired t test (other features).
        PairedT,
    }

    /// A job the web app can start.
    enum JobKind as "snake_case" {
        Ingest,
        Score,
        Analyze,
        /// SEAL's LM-labeler over the server's `[llm]` endpoint.
        Label,
        /// A rewritten variant of a dataset: a built-in perturbation, or SEAL's rewrite by
        /// the server's `[llm]` endpoint.
        Rewrite,
        /// Scores computed elsewhere (a file of pair_id, chosen_score, rejected_score, or the
        /// shard files of `seal score --shard I/N --out FILE`) merged into a model's scores.
        ImportScores,
        /// A label set made elsewhere (SEAL's taxonomy keys per text).
        ImportLabels,
    }

    /// What a user may do; each role may do everything the ones before it may.
    enum Role as "lowercase" {
        /// Reads every dataset, model, report and pair.
        Viewer,
        /// Also writes notes and creates share links.
        Reviewer,
        /// Also starts jobs and uploads data.
        Editor,
        /// Also manages users, tokens and models, and reads the audit log.
        Admin,
    }

    /// What a share link shows.
    enum ShareKind as "lowercase" {
        /// One pair's page.
        Pair,
        /// One example-browser view and the pairs in it.
        View,
        /// One study's report, and the pairs behind its numbers.
        Report,
    }

    /// How the server tells who is asking (`auth.mode`).
    enum AuthMode as "lowercase" {
        /// No accounts: a single user on a loopback address, who may do everything.
        None,
        /// Accounts of this server: sign-in with a password, API tokens.
        Local,
        /// A reverse proxy in front signs users in and names them in a header.
        Proxy,
    }

    /// Where a job is.
    enum JobState as "snake_case" {
        /// Waiting for a free slot of its kind.
        Queued,
        Running,
        Done,
        Failed,
        /// Stopped by a user, at a chunk boundary: what it committed before stays.
        Cancelled,
        /// Running when the server stopped; retry resumes it.
        Interrupted,
    }

    /// How a pair moved from the pre-D to the post-D model (SEAL's Table 1; a tie is δ = 0).
    enum Regime as "snake_case" {
        StayedAligned,
        GotAligned,
        Resisted,
        Reversed,
    }

    /// A slice's agreement of one model.
    enum AgreementFilter as "snake_case" {
        Agree,
        Disagree,
        Tie,
        /// Disagree or tie: δ = 0.
        NotAgree,
    }

    /// A slice's LM-labeler preference γ.
    enum GammaFilter as "snake_case" {
        /// The labeler prefers the chosen text.
        C,
        /// Indifferent.
        I,
        /// Prefers the rejected text.
        R,
        /// c or r.
        Decided,
    }

    /// In which direction a slice's feature differs between the two texts of a pair.
    enum FeatureSide as "snake_case" {
        ChosenOnly,
        RejectedOnly,
        Differs,
    }

    /// One text of a pair.
    enum TextSide as "snake_case" {
        Chosen,
        Rejected,
    }

    /// An angle of the report's polar histograms.
    enum AngleKind as "snake_case" {
        /// The reward shift θ from pre-D to post-D.
        Theta,
        /// The pre-D model's reward direction.
        PhiPre,
        /// The post-D model's reward direction.
        PhiPost,
    }

    /// Orders of the pairs list.
    enum SortKey as "snake_case" {
        /// Source order.
        Dataset,
        PreMargin,
        PostMargin,
        PreChosen,
        PostChosen,
        /// The margin's change from pre-D to post-D.
        Shift,
        Length,
        PairId,
    }

    enum SortDir as "snake_case" {
        Asc,
        Desc,
    }
}

impl Regime {
    pub const ALL: [Regime; 4] = [Regime::StayedAligned, Regime::GotAligned, Regime::Resisted, Regime::Reversed];

    /// Table 1 from strict agreement: a tie does not agree.
    pub fn of(pre: Agreement, post: Agreement) -> Regime {
        match (pre == Agreement::Agree, post == Agreement::Agree) {
            (true, true) => Regime::StayedAligned,
            (false, true) => Regime::GotAligned,
            (false, false) => Regime::Resisted,
            (true, false) => Regime::Reversed,
        }
    }
}

impl AgreementFilter {
    pub fn matches(self, a: Agreement) -> bool {
        match self {
            AgreementFilter::Agree => a == Agreement::Agree,
            AgreementFilter::Disagree => a == Agreement::Disagree,
            AgreementFilter::Tie => a == Agreement::Tie,
            AgreementFilter::NotAgree => a != Agreement::Agree,
        }
    }
}

impl Sides {
    /// Whether the chosen text is among the sides.
    pub fn chosen(self) -> bool {
        self != Sides::Rejected
    }

    /// Whether the rejected text is among the sides.
    pub fn rejected(self) -> bool {
        self != Sides::Chosen
    }
}

impl Agreement {
    /// The agreement of a model that gave the chosen text `chosen` and the rejected one
    /// `rejected` (strict: equal scores are a tie).
    pub fn of(chosen: f64, rejected: f64) -> Agreement {
        if chosen > rejected {
            Agreement::Agree
        } else if chosen == rejected {
            Agreement::Tie
        } else {
            Agreement::Disagree
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_through_text_and_json() {
        /// Every string of every `enum` keyword in a schema (a flat enum, or one per variant).
        fn schema_words(schema: &serde_json::Value, out: &mut Vec<String>) {
            match schema {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        match (k.as_str(), v) {
                            ("enum", serde_json::Value::Array(words)) => {
                                out.extend(words.iter().filter_map(|w| w.as_str().map(str::to_owned)))
                            }
                            _ => schema_words(v, out),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| schema_words(v, out)),
                _ => {}
            }
        }
        fn check<T>()
        where
            T: Vocabulary + fmt::Debug + PartialEq + Serialize + serde::de::DeserializeOwned + utoipa::PartialSchema,
        {
            for (v, word) in <T as VariantArray>::VARIANTS.iter().zip(T::words()) {
                assert_eq!(Into::<&'static str>::into(*v), *word);
                assert_eq!(T::parse_word(word).unwrap(), *v);
                assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{word}\""));
                assert_eq!(serde_json::from_str::<T>(&format!("\"{word}\"")).unwrap(), *v);
            }
            // The API document lists the same words as the wire uses.
            let mut listed = Vec::new();
            schema_words(&serde_json::to_value(T::schema()).unwrap(), &mut listed);
            assert_eq!(listed, T::words(), "{}", std::any::type_name::<T>());
        }
        check::<DatasetFormat>();
        check::<ModelKind>();
        check::<InputFormat>();
        check::<Truncation>();
        check::<Precision>();
        check::<Agreement>();
        check::<Speaker>();
        check::<SourceOutcome>();
        check::<LabelImportOutcome>();
        check::<VariantKind>();
        check::<Sides>();
        check::<ModelRole>();
        check::<FeatureRole>();
        check::<ImprintOutcome>();
        check::<ImprintVariant>();
        check::<AgreementIndicator>();
        check::<FeatureTestKind>();
        check::<JobKind>();
        check::<JobState>();
        check::<Regime>();
        check::<AgreementFilter>();
        check::<GammaFilter>();
        check::<FeatureSide>();
        check::<TextSide>();
        check::<AngleKind>();
        check::<SortKey>();
        check::<SortDir>();
        assert_eq!(Agreement::of(1.0, 0.5), Agreement::Agree);
        assert_eq!(Agreement::of(0.5, 1.0), Agreement::Disagree);
        assert_eq!(Agreement::of(0.25, 0.25), Agreement::Tie);
        assert_eq!(DatasetFormat::words(), ["hh-rlhf", "pairs", "variant"]);
        assert_eq!(Truncation::words(), ["none", "context-left", "longest-first"]);
        assert_eq!(Precision::words(), ["fp32", "int8", "fp16"]);
        assert_eq!(Truncation::ContextLeft.to_string(), "context-left");
    }

    #[test]
    fn a_bad_word_is_refused_with_the_valid_ones() {
        let e = "left".parse::<Truncation>().unwrap_err();
        assert_eq!(e.to_string(), "\"left\" is not one of none, context-left, longest-first");
        assert!(serde_json::from_str::<JobKind>("\"train\"").is_err());
    }
}
