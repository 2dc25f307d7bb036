//! The view state in the URL: the pairs list's [`PairQuery`] and the overview's study travel
//! as query strings under the same names the API uses, so every view is a shareable link.

use seal_shared::browse::PairQuery;
use seal_shared::link;
use seal_shared::report::Slice;

pub fn to_query_string(q: &PairQuery) -> String {
    q.to_query()
}

/// The view a URL's query string describes; a link with a value the contract does not know
/// opens the default view (the server would refuse it by name).
pub fn from_query_string(search: &str) -> PairQuery {
    PairQuery::from_query(search.trim_start_matches('?')).unwrap_or_default()
}

/// Link to the pairs list of a study, narrowed by `edit`.
pub fn pairs_href(study: &PairQuery, edit: impl FnOnce(&mut PairQuery)) -> String {
    let mut q = study.clone();
    edit(&mut q);
    crate::at(&format!("/pairs?{}", to_query_string(&q)))
}

/// Link to the pairs behind a report slice.
pub fn slice_href(study: &PairQuery, slice: &Slice) -> String {
    pairs_href(study, |q| q.set_slice(slice.clone()))
}

/// Link to a pair's page; `within` (the list's filter) gives next / previous.
pub fn pair_href(dataset: &str, id: &str, within: Option<&PairQuery>) -> String {
    let base = crate::at(&format!("/pair/{}/{}", link::encode_segment(dataset), link::encode_path(id)));
    match within {
        Some(q) => {
            let mut q = q.clone();
            q.limit = None;
            q.offset = None;
            q.around = None;
            format!("{base}?{}", to_query_string(&q))
        }
        None => base,
    }
}

/// The dataset and pair id of a pair page's app path (`/pair/{dataset}/{pair id}`, as
/// `pair_href` writes it or as a link made before its `~` escapes), read as the server reads
/// API paths: from the path as sent, since the router's parameters are already percent-decoded.
pub fn pair_of_path(path: &str) -> Option<(String, String)> {
    let (dataset, id) = path.strip_prefix("/pair/")?.split_once('/')?;
    Some((link::decode(dataset), link::decode(id)))
}
