//! Names in URL paths: the app's pair pages (`/pair/{dataset}/{pair id}`) and the API's routes
//! (`/api/datasets/{dataset}/pairs/{pair id}`, a user, a model). A name is percent-encoded as
//! JavaScript's `encodeURIComponent` does, except for what browsers would change on the way:
//! a segment `.` or `..` (dropped with the one before it, `%2E` or not), `%` (the app's router
//! decodes its links once before they reach the address bar), `\` (read as `/`) and control
//! characters (tab and newline are dropped). Those are written `~` and two hex digits (`..` is
//! `~2E~2E`), and so is a `~` that two such digits follow; the link of any other name is what it
//! was before. The server turns the escapes into percent escapes before routing ([`percent_form`]);
//! the app reads its own links with [`decode`].

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What `encodeURIComponent` escapes: all but ASCII letters, digits and `-_.!~*'()`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// The character of a `~` escape at the start of `s`: `~` and two upper-case hex digits of an
/// ASCII code.
fn escape_at(s: &str) -> Option<char> {
    let b = s.as_bytes();
    if b.len() < 3 || b[0] != b'~' {
        return None;
    }
    let hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let code = hex(b[1])? * 16 + hex(b[2])?;
    code.is_ascii().then_some(char::from(code))
}

/// One path segment: a dataset, model or user name, or one `/`-separated part of a pair id
/// (a `/` in it is escaped).
pub fn encode_segment(s: &str) -> String {
    let dots = s == "." || s == "..";
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        let escape = match c {
            '.' => dots,
            '%' | '\\' => true,
            '~' => escape_at(&s[i..]).is_some(),
            _ => c.is_ascii_control(),
        };
        if escape {
            out.push_str(&format!("~{:02X}", u32::from(c)));
        } else {
            out.extend(utf8_percent_encode(c.encode_utf8(&mut [0; 4]), COMPONENT));
        }
    }
    out
}

/// A pair id: each `/`-separated part as [`encode_segment`] writes it, the slashes kept.
pub fn encode_path(s: &str) -> String {
    s.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

/// `path` (as sent, percent-encoded) with its `~` escapes written as percent escapes, or `None`
/// when it has none. A `%7E` is a plain `~`.
pub fn percent_form(path: &str) -> Option<String> {
    if !path.contains('~') {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    let mut changed = false;
    while let Some(c) = rest.chars().next() {
        if escape_at(rest).is_some() {
            out.push('%');
            out.push_str(&rest[1..3]);
            rest = &rest[3..];
            changed = true;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    changed.then_some(out)
}

/// The name a part of a path (as sent, percent-encoded) stands for; bytes that are not UTF-8
/// become U+FFFD.
pub fn decode(raw: &str) -> String {
    let form = percent_form(raw);
    percent_decode_str(form.as_deref().unwrap_or(raw)).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names that were hard to link to, and plain ones.
    const NAMES: &[&str] = &[
        "17",
        "harmless-base",
        ".",
        "..",
        "...",
        ".hidden",
        "a.b",
        "a%2Fb",
        "100%",
        "%2e%2E",
        "x y",
        "é",
        "日本",
        "?#&=+;",
        "a\\b",
        "tab\there",
        "line\nbreak",
        "~",
        "~2E",
        "~~41",
        "a~zz",
        "~7",
        "~FF",
        "it's (fine)!*",
    ];

    /// What the browser does to a path a link of the app's router opens: `decodeURI`, then the
    /// URL parser's re-encoding, for the characters [`encode_segment`] writes.
    fn through_the_address_bar(link: &str) -> String {
        let bytes = link.as_bytes();
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let escaped = if bytes[i] == b'%' && i + 2 < bytes.len() {
                u8::from_str_radix(&link[i + 1..i + 3], 16).ok()
            } else {
                None
            };
            match escaped {
                // decodeURI keeps the escapes of these.
                Some(b) if !b";/?:@&=+$,#".contains(&b) => {
                    decoded.push(b);
                    i += 3;
                }
                _ => {
                    decoded.push(bytes[i]);
                    i += 1;
                }
            }
        }
        let decoded = String::from_utf8(decoded).unwrap();
        // The path percent-encode set, on what decodeURI gave back.
        let mut out = String::new();
        for c in decoded.chars() {
            if c.is_ascii_control() || matches!(c, ' ' | '"' | '<' | '>' | '`' | '{' | '}') || !c.is_ascii() {
                out.extend(utf8_percent_encode(c.encode_utf8(&mut [0; 4]), NON_ALPHANUMERIC));
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn every_name_comes_back() {
        for name in NAMES {
            let link = encode_segment(name);
            assert_eq!(decode(&link), *name, "{link}");
            assert_eq!(decode(&through_the_address_bar(&link)), *name, "{link} in the address bar");
            // The server reads the same name: escapes first, then percent-decoding.
            let server = percent_form(&link).unwrap_or_else(|| link.clone());
            assert_eq!(percent_decode_str(&server).decode_utf8().unwrap(), *name);
        }
    }

    #[test]
    fn links_hold_nothing_a_browser_changes() {
        for name in NAMES {
            let link = encode_segment(name);
            assert!(link != "." && link != "..", "{name:?}: {link}");
            assert!(!link.to_ascii_uppercase().contains("%2E"), "{name:?}: {link}");
            for bad in ["%25", "%5C", "%09", "%0A", "%0D", "/", "\\"] {
                assert!(!link.contains(bad), "{name:?}: {link} holds {bad}");
            }
            assert!(link.chars().all(|c| c.is_ascii_graphic()), "{name:?}: {link}");
        }
        assert_eq!(encode_segment("."), "~2E");
        assert_eq!(encode_segment(".."), "~2E~2E");
        assert_eq!(encode_segment("100%"), "100~25");
        assert_eq!(encode_segment("~2E"), "~7E2E");
        assert_eq!(encode_segment("a/b"), "a%2Fb");
    }

    #[test]
    fn links_of_plain_names_are_unchanged() {
        // What encodeURIComponent writes, as links were made before.
        for (name, link) in [
            ("harmless-base/test/17", "harmless-base/test/17"),
            ("chat/t/x y", "chat/t/x%20y"),
            ("s/t/é", "s/t/%C3%A9"),
            ("s/t/?#", "s/t/%3F%23"),
            ("s/t/a~b", "s/t/a~b"),
            ("s/t/it's (fine)!*", "s/t/it's%20(fine)!*"),
        ] {
            assert_eq!(encode_path(name), link);
            assert_eq!(decode(link), name);
        }
        // Old links of names with `%` still read right.
        assert_eq!(decode("s/t/a%252Fb"), "s/t/a%2Fb");
    }

    #[test]
    fn pair_ids_keep_their_slashes() {
        assert_eq!(encode_path("../t/.."), "~2E~2E/t/~2E~2E");
        assert_eq!(encode_path("s/t/a.b"), "s/t/a.b");
        assert_eq!(decode(&encode_path("s/./..")), "s/./..");
        let sent = "/api/datasets/~2E~2E/pairs/s/t/~25";
        assert_eq!(percent_form(sent).as_deref(), Some("/api/datasets/%2E%2E/pairs/s/t/%25"));
        assert_eq!(percent_form("/api/datasets/hh/pairs/a~b/%7E41"), None);
    }
}
