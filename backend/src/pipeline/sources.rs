//! What an ingest job started from the web may read: files under the configured import folders
//! (after resolving symlinks), and downloads from the allowed hosts whose addresses are public,
//! within size and time caps. Every source is checked before the job starts, so a refused one
//! is a 400 that names the reason and nothing is read; redirects, sizes and the address of
//! every connection are checked again while downloading.

use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Error;

/// The caps and allow-lists of web ingest (`[ingest]` in the settings).
#[derive(Debug, Clone)]
pub struct SourcePolicy {
    /// Canonical forms of `ingest.import_dirs`.
    import_dirs: Vec<PathBuf>,
    allowed_hosts: Vec<String>,
    pub hub_url: String,
    pub max_download_bytes: u64,
    pub max_decompressed_bytes: u64,
    pub download_timeout: Duration,
}

const MB: u64 = 1_000_000;

/// Networks no web ingest may reach by name: loopback, private, link-local, shared, and the
/// other addresses that are not on the public internet.
const NOT_PUBLIC: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    // IPv4-compatible, NAT64 and 6to4 addresses carry an IPv4 address, which may be private.
    "::/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "2002::/16",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// Why an address is not public, if it is not.
fn not_public(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let net = NOT_PUBLIC.iter().filter_map(|n| n.parse::<ipnet::IpNet>().ok()).find(|n| n.contains(&ip))?;
    Some(match net.to_string().as_str() {
        "127.0.0.0/8" | "::1/128" => "a loopback address",
        "169.254.0.0/16" | "fe80::/10" => "a link-local address",
        "10.0.0.0/8" | "172.16.0.0/12" | "192.168.0.0/16" | "fc00::/7" | "100.64.0.0/10" => "a private address",
        _ => "not a public address",
    })
}

impl SourcePolicy {
    pub fn new(
        import_dirs: &[PathBuf],
        allowed_hosts: &[String],
        hub_url: &str,
        max_download_mb: u64,
        max_decompressed_mb: u64,
        download_timeout_s: u64,
    ) -> SourcePolicy {
        // A folder that does not exist (yet) cannot hold anything to import; it stays in the
        // list under its own name, so that nothing resolves under it.
        let import_dirs = import_dirs.iter().map(|d| d.canonicalize().unwrap_or_else(|_| d.clone())).collect();
        SourcePolicy {
            import_dirs,
            allowed_hosts: allowed_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            hub_url: hub_url.to_owned(),
            max_download_bytes: max_download_mb.saturating_mul(MB),
            max_decompressed_bytes: max_decompressed_mb.saturating_mul(MB),
            download_timeout: Duration::from_secs(download_timeout_s),
        }
    }

    /// Checks one source of a web ingest job; the error says why it is refused.
    pub fn check(&self, source: &str) -> Result<(), Error> {
        match super::resolve_url(source, &self.hub_url) {
            Some(url) => self.check_url(&url).map_err(|why| Error::invalid(format!("source {source:?}: {why}"))),
            None => self.check_path(source).map(|_| ()),
        }
    }

    /// The canonical path of a file under an import folder, or why it is refused.
    pub fn check_path(&self, source: &str) -> Result<PathBuf, Error> {
        let refuse = |why: String| Error::invalid(format!("source {source:?}: {why}"));
        if self.import_dirs.is_empty() {
            return Err(refuse(
                "this server reads no files for web users' jobs; an admin can allow folders with ingest.import_dirs"
                    .into(),
            ));
        }
        let path = Path::new(source);
        if !path.is_absolute() {
            return Err(refuse("give an absolute path under one of ingest.import_dirs".into()));
        }
        let outside = || refuse("is not under ingest.import_dirs (symlinks are followed)".into());
        // Resolving symlinks: a link inside an import folder that points outside is outside.
        let real = path.canonicalize().map_err(|_| outside())?;
        if !self.import_dirs.iter().any(|d| real.starts_with(d)) {
            return Err(outside());
        }
        if !real.is_file() {
            return Err(refuse("is not a file".into()));
        }
        self.check_size(source, &real)?;
        Ok(real)
    }

    /// Refuses a file that says it holds more than `ingest.max_decompressed_mb` (a gzip file's
    /// record of its decompressed size, else its length).
    pub fn check_size(&self, source: &str, path: &Path) -> Result<(), Error> {
        match declared_size(path) {
            Some(size) if size > self.max_decompressed_bytes => Err(Error::invalid(format!(
                "source {source:?}: holds {} MB (after decompression), more than the {} MB cap (ingest.max_decompressed_mb)",
                size / MB,
                self.max_decompressed_bytes / MB
            ))),
            _ => Ok(()),
        }
    }

    /// The canonical path of a model folder under an import folder, or why it is refused.
    pub fn check_folder(&self, folder: &str) -> Result<PathBuf, Error> {
        let refuse = |why: &str| Error::invalid(format!("folder {folder:?}: {why}"));
        if self.import_dirs.is_empty() {
            return Err(refuse(
                "this server reads no folders for web users; an admin can allow folders with ingest.import_dirs",
            ));
        }
        if !Path::new(folder).is_absolute() {
            return Err(refuse("give an absolute path under one of ingest.import_dirs"));
        }
        let real = Path::new(folder)
            .canonicalize()
            .ok()
            .filter(|r| self.import_dirs.iter().any(|d| r.starts_with(d)))
            .ok_or_else(|| refuse("is not under ingest.import_dirs (symlinks are followed)"))?;
        if !real.is_dir() {
            return Err(refuse("is not a folder"));
        }
        Ok(real)
    }

    /// Whether `url` may be fetched: http(s), an allowed host, and (unless the host is an IP
    /// literal listed as allowed) only public addresses after name resolution.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let (scheme, host, port) = crate::net::url_parts(url).map_err(|e| e.to_string())?;
        if scheme != "https" && scheme != "http" {
            return Err(format!("{url}: only http and https are fetched"));
        }
        if !self.listed(&host) {
            return Err(format!("host {host} is not in ingest.allowed_hosts ({})", self.allowed_hosts.join(", ")));
        }
        if host.parse::<IpAddr>().is_ok() {
            // An address written out in the allow-list is the admin's explicit choice.
            return Ok(());
        }
        let addrs: Vec<IpAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("host {host} does not resolve: {e}"))?
            .map(|a| a.ip())
            .collect();
        if addrs.is_empty() {
            return Err(format!("host {host} does not resolve"));
        }
        addrs.into_iter().try_for_each(|ip| self.check_address(&host, ip))
    }

    /// Whether a download may connect to `ip`, an address `host` resolved to when the
    /// connection is made (`net::Guard::check_address`): a public address, or the address of an
    /// IP literal listed in `ingest.allowed_hosts`. [`Self::check_url`] resolved the name
    /// earlier; this judges the address actually connected to, so a name that answers
    /// differently the second time (DNS rebinding) reaches nothing the first answer could not.
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        if host.parse::<IpAddr>().is_ok() && self.listed(host) {
            return Ok(());
        }
        match not_public(ip) {
            Some(kind) => Err(format!("host {host} resolves to {ip}, {kind}")),
            None => Ok(()),
        }
    }

    /// Whether `host` (lowercase) is in `ingest.allowed_hosts`, or is a name under a domain
    /// listed there (an IP literal only as it is written: `127.0.0.1` is not under `0.0.1`).
    fn listed(&self, host: &str) -> bool {
        let literal = host.parse::<IpAddr>().is_ok();
        self.allowed_hosts.iter().any(|h| host == h.as_str() || (!literal && host.ends_with(&format!(".{h}"))))
    }
}

/// The size a file says it holds: a gzip file's own record of its decompressed size (the last
/// four bytes, modulo 4 GiB, of its last member), else its length. The cap is enforced again
/// while reading, so a file that understates its size still stops at the cap.
fn declared_size(path: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut magic = [0u8; 2];
    if len < 18 || f.read_exact(&mut magic).is_err() || magic != [0x1f, 0x8b] {
        return Some(len);
    }
    let mut isize = [0u8; 4];
    f.seek(SeekFrom::End(-4)).ok()?;
    f.read_exact(&mut isize).ok()?;
    Some(u64::from(u32::from_le_bytes(isize)).max(len))
}

/// The message of a failed job as someone other than an admin sees it: server paths replaced,
/// so that an error reveals nothing of the machine's layout.
pub fn scrub_paths(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, word) in message.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let start = word.find(|c: char| !matches!(c, '"' | '\'' | '`' | '(' | '[')).unwrap_or(word.len());
        let (lead, rest) = word.split_at(start);
        // Past the last character that is not closing punctuation (which may be wider than a byte).
        let end = rest
            .char_indices()
            .rfind(|(_, c)| !matches!(c, '"' | '\'' | '`' | ')' | ']' | ',' | ';' | '.' | ':'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let (body, trail) = rest.split_at(end);
        let b = body.as_bytes();
        let drive = b.len() > 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'\\' | b'/');
        let file_url = body.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("file://"));
        let looks_like_path =
            ((body.starts_with('/') || body.starts_with("~/")) && body.len() > 1) || drive || file_url;
        out.push_str(lead);
        if looks_like_path {
            // A `path:line` keeps its line number.
            let line = body.rsplit_once(':').filter(|(_, n)| n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty());
            out.push_str("<server path>");
            if let Some((_, n)) = line {
                out.push(':');
                out.push_str(n);
            }
        } else {
            out.push_str(body);
        }
        out.push_str(trail);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_keeps_words_of_any_width_and_hides_paths() {
        assert_eq!(scrub_paths("analyze hh: pre → post"), "analyze hh: pre → post");
        assert_eq!(scrub_paths("café, (naïve) ∑"), "café, (naïve) ∑");
        assert_eq!(scrub_paths("ingest /home/ana/é.jsonl into hh"), "ingest <server path> into hh");
        assert_eq!(scrub_paths("\"/srv/x.csv:12\": bad"), "\"<server path>:12\": bad");
        assert_eq!(scrub_paths("read C:\\data\\x.csv: denied"), "read <server path>: denied");
        assert_eq!(scrub_paths("read file:///srv/x.csv: denied"), "read <server path>: denied");
        assert_eq!(scrub_paths("at https://hub.example/x.csv"), "at https://hub.example/x.csv");
    }

    #[test]
    fn addresses_off_the_public_internet_are_named() {
        for (ip, kind) in [
            ("127.0.0.1", "a loopback address"),
            ("10.1.2.3", "a private address"),
            ("192.168.0.9", "a private address"),
            ("169.254.169.254", "a link-local address"),
            ("::1", "a loopback address"),
            ("::ffff:10.0.0.1", "a private address"),
            ("fd00::1", "a private address"),
            ("0.0.0.0", "not a public address"),
            ("64:ff9b::a9fe:a9fe", "not a public address"),
            ("2002:a00:1::1", "not a public address"),
            ("::10.0.0.1", "not a public address"),
        ] {
            assert_eq!(not_public(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in ["8.8.8.8", "18.160.0.1", "2606:4700::1111"] {
            assert_eq!(not_public(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn server_paths_are_scrubbed_from_messages() {
        assert_eq!(
            scrub_paths("/srv/seal/imports/x.jsonl:17: no \"chosen\" field"),
            "<server path>:17: no \"chosen\" field"
        );
        assert_eq!(scrub_paths("reading `/etc/passwd`: denied."), "reading `<server path>`: denied.");
        assert_eq!(scrub_paths("https://huggingface.co/x: HTTP 404"), "https://huggingface.co/x: HTTP 404");
        assert_eq!(scrub_paths("a / b"), "a / b");
    }

    #[test]
    fn hosts_must_be_listed_and_public() {
        let p = SourcePolicy::new(&[], &["localhost".into(), "127.0.0.1".into()], "https://huggingface.co", 1, 1, 1);
        assert!(p.check_url("http://127.0.0.1:9/x").is_ok(), "an address listed as it is");
        let e = p.check_url("http://localhost:9/x").unwrap_err();
        assert!(e.contains("a loopback address"), "{e}");
        let e = p.check_url("http://10.0.0.1/x").unwrap_err();
        assert!(e.contains("not in ingest.allowed_hosts"), "{e}");
        assert!(p.check_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn connections_go_only_to_public_or_listed_addresses() {
        let p = SourcePolicy::new(&[], &["example.org".into(), "127.0.0.1".into()], "https://huggingface.co", 1, 1, 1);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // A name that answered a public address to `check_url` and loopback to the connection.
        assert_eq!(
            p.check_address("example.org", ip("127.0.0.1")).unwrap_err(),
            "host example.org resolves to 127.0.0.1, a loopback address"
        );
        let e = p.check_address("cdn.example.org", ip("::ffff:169.254.169.254")).unwrap_err();
        assert!(e.starts_with("host cdn.example.org resolves to ") && e.ends_with(", a link-local address"), "{e}");
        assert!(p.check_address("example.org", ip("93.184.215.14")).is_ok());
        assert!(p.check_address("127.0.0.1", ip("127.0.0.1")).is_ok(), "an address listed as it is");
        assert!(p.check_address("10.0.0.1", ip("10.0.0.1")).is_err(), "an address not listed");
        let suffix = SourcePolicy::new(&[], &["0.0.1".into()], "https://huggingface.co", 1, 1, 1);
        assert!(suffix.check_address("127.0.0.1", ip("127.0.0.1")).is_err(), "an address is not under a domain");
    }
}
