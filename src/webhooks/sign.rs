//! Outbound webhooks: Standard Webhooks signatures, the retry schedule, and checks that
//! a target URL cannot be used to reach internal services (SSRF).
//!
//! Signing follows the Standard Webhooks specification (the scheme Svix uses), so
//! receivers can verify our requests with any of its libraries: the signature is
//! `v1,` + base64(HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{body}")),
//! sent in the `webhook-signature` header.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the message id (stable across retries, for receiver de-duplication).
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the Unix timestamp in seconds that was signed.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying one or more space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

const SECRET_PREFIX: &str = "whsec_";
/// Standard Webhooks asks for secrets of 24 to 64 random bytes.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;
const GENERATED_SECRET_BYTES: usize = 24;

/// Secrets written by other tools may or may not carry base64 padding.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a string is not a usable webhook secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretError {
    /// The string does not start with `whsec_`.
    MissingPrefix,
    /// The part after `whsec_` is not standard base64.
    InvalidBase64,
    /// The decoded key has this many bytes, outside 24..=64.
    BadLength(usize),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingPrefix => f.write_str("webhook secret must start with \"whsec_\""),
            Self::InvalidBase64 => {
                f.write_str("webhook secret must be \"whsec_\" followed by standard base64")
            }
            Self::BadLength(n) => write!(
                f,
                "webhook secret must decode to {} to {} bytes, not {n}",
                SECRET_BYTES.start(),
                SECRET_BYTES.end()
            ),
        }
    }
}

impl std::error::Error for SecretError {}

/// A webhook signing secret (`whsec_<base64>`).
///
/// `Debug` prints `whsec_***` and there is deliberately no `Display`: the secret only
/// leaves as text through [`Secret::expose`], so it cannot slip into a log line by
/// accident.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
    /// HMAC state keyed once at parse time, so signing cannot fail later.
    mac: HmacSha256,
}

impl Secret {
    /// Parses `whsec_<base64>`; anything else is an error saying what is wrong.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let encoded = s
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = LENIENT_BASE64
            .decode(encoded)
            .map_err(|_| SecretError::InvalidBase64)?;
        Self::from_key(key)
    }

    /// A new secret of 24 random bytes from the operating system.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut key = vec![0; GENERATED_SECRET_BYTES];
        getrandom::fill(&mut key)?;
        // 24 bytes is within the accepted range, so this cannot fail; map it anyway
        // rather than panic.
        Self::from_key(key).map_err(|_| getrandom::Error::UNEXPECTED)
    }

    fn from_key(key: Vec<u8>) -> Result<Self, SecretError> {
        if !SECRET_BYTES.contains(&key.len()) {
            return Err(SecretError::BadLength(key.len()));
        }
        let mac = <HmacSha256 as Mac>::new_from_slice(&key)
            .map_err(|_| SecretError::BadLength(key.len()))?;
        Ok(Self { key, mac })
    }

    /// The secret as `whsec_<base64>`, to show once to the user or to store.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac_for(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_***")
    }
}

/// The `v1,<base64>` signature of one message under one secret.
///
/// `timestamp` is the Unix time in seconds sent in `webhook-timestamp`; `body` must be
/// the exact bytes sent.
pub fn sign(secret: &Secret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret
        .mac_for(msg_id, timestamp, body)
        .finalize()
        .into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The `webhook-signature` value: one signature per secret, space-separated.
///
/// While a secret is being rotated both the old and the new one sign, so receivers
/// accept the message whichever secret they currently hold.
pub fn signature_header(secrets: &[&Secret], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any `v1` signature in `header` is valid for the message under any of
/// `secrets`. Comparison is constant-time (done by `hmac`). It does not check the
/// timestamp's age; a receiver should also reject stale timestamps.
pub fn verify(
    secrets: &[&Secret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    header
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|tag| {
            secrets.iter().any(|secret| {
                secret
                    .mac_for(msg_id, timestamp, body)
                    .verify_slice(&tag)
                    .is_ok()
            })
        })
}

const fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

/// Waits before each delivery attempt: Svix's schedule (immediately, 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 10 h) extended with 10 h steps, so a receiver that is down
/// over a long weekend still gets the message: the last attempt comes about 2.8 days
/// (67 h 35 min 5 s) after the first.
const RETRY_SCHEDULE: [Duration; 12] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    hours(2),
    hours(5),
    hours(10),
    hours(10),
    hours(10),
    hours(10),
    hours(10),
    hours(10),
];

/// The longest wait a receiver's `Retry-After` can impose: the longest scheduled step,
/// so one response cannot stretch the retry window much beyond its usual length.
pub const MAX_RETRY_AFTER: Duration = hours(10);

/// Wait before attempt `i + 1` at index `i`; its length is the number of attempts.
pub fn retry_schedule() -> &'static [Duration] {
    &RETRY_SCHEDULE
}

/// How long to wait before the next attempt, given that `attempt` attempts have been
/// made (0 = none yet), or `None` when all attempts are used up.
///
/// A `Retry-After` from the receiver (429/503) lengthens the wait, up to
/// [`MAX_RETRY_AFTER`]; it never shortens it, so a receiver cannot make us retry
/// faster than the schedule.
pub fn next_attempt(attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
    let scheduled = *usize::try_from(attempt)
        .ok()
        .and_then(|i| RETRY_SCHEDULE.get(i))?;
    Some(match retry_after {
        Some(asked) => scheduled.max(asked.min(MAX_RETRY_AFTER)),
        None => scheduled,
    })
}

/// A `Retry-After` header value in delay-seconds. HTTP dates are not supported and
/// give `None`, which falls back to the schedule.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// URL scheme of a webhook target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http`, default port 80.
    Http,
    /// `https`, default port 443.
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// Host of a webhook target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP literal (IPv6 was written in brackets).
    Ip(IpAddr),
    /// A DNS name, lowercased, without a trailing dot.
    Domain(String),
}

/// A checked webhook target URL, in the only forms we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// IP literal or DNS name.
    pub host: Host,
    /// Explicit port, or the scheme's default.
    pub port: u16,
    /// Path and query, starting with `/`, non-ASCII percent-encoded, fragment dropped.
    pub path_and_query: String,
}

impl Target {
    /// The host as given to DNS or a socket: no brackets around IPv6.
    pub fn host_str(&self) -> String {
        match &self.host {
            Host::Ip(ip) => ip.to_string(),
            Host::Domain(name) => name.clone(),
        }
    }

    /// The `Host` header value: brackets around IPv6, port only when not the default.
    pub fn authority(&self) -> String {
        let host = match &self.host {
            Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => ip.to_string(),
            Host::Domain(name) => name.clone(),
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The addresses to connect to, each checked; see [`resolve_and_check`].
    pub async fn resolve(&self, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
        resolve_and_check(&self.host_str(), self.port, allow_private).await
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path_and_query
        )
    }
}

/// Parses and checks a webhook target URL.
///
/// Accepts only `http(s)://host[:port][/path][?query][#fragment]` with no user info.
/// The parser is strict on purpose: anything that URL parsers disagree on
/// (backslashes, whitespace, percent-encoded or non-ASCII hosts, IPv4 written as one
/// number, in hex or octal, or with fewer than four parts) is refused rather than
/// interpreted, so the address checked here is the address an HTTP client would use.
///
/// Unless `allow_private` (for self-hosted setups that deliver inside their network),
/// IP literals in private or reserved ranges ([`is_forbidden_ip`]) and `localhost`
/// names are refused. A DNS name can still point anywhere: connect only to the
/// addresses returned by [`Target::resolve`].
pub fn check_target(url: &str, allow_private: bool) -> Result<Target, String> {
    let target = parse_target(url)?;
    if !allow_private {
        match &target.host {
            Host::Ip(ip) if is_forbidden_ip(*ip) => {
                return Err(format!(
                    "webhook target {ip} is a private, loopback or reserved address"
                ));
            }
            Host::Domain(name) if is_localhost_name(name) => {
                return Err(format!("webhook target {name} is a local host name"));
            }
            _ => {}
        }
    }
    Ok(target)
}

fn parse_target(url: &str) -> Result<Target, String> {
    if url.len() > 2048 {
        return Err("webhook URL is longer than 2048 bytes".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("webhook URL must not contain spaces or control characters".into());
    }
    if url.contains('\\') {
        return Err("webhook URL must not contain backslashes".into());
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("webhook URL must start with http:// or https://")?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else {
        return Err(format!(
            "webhook URL scheme {scheme:?} is not allowed; use http or https"
        ));
    };

    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if authority.contains('@') {
        return Err("webhook URL must not contain a user name or password".into());
    }
    let (host, port) = split_host_port(authority)?;
    let port = match port {
        None | Some("") => scheme.default_port(),
        Some(port) => parse_port(port)?,
    };

    let without_fragment = tail.split('#').next().unwrap_or_default();
    let path_and_query = if without_fragment.starts_with('/') {
        percent_encode_unsafe(without_fragment)
    } else {
        format!("/{}", percent_encode_unsafe(without_fragment))
    };

    Ok(Target {
        scheme,
        host,
        port,
        path_and_query,
    })
}

fn split_host_port(authority: &str) -> Result<(Host, Option<&str>), String> {
    if authority.is_empty() {
        return Err("webhook URL has no host".into());
    }
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or("webhook URL has an unclosed '[' in its host")?;
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("webhook URL host [{inside}] is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("webhook URL has text after its IPv6 address")?,
            ),
        };
        return Ok((Host::Ip(IpAddr::V6(ip)), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    Ok((parse_host_name(host)?, port))
}

fn parse_port(port: &str) -> Result<u16, String> {
    let invalid = || format!("webhook URL port {port:?} is not a number from 1 to 65535");
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid()),
        Ok(n) => Ok(n),
    }
}

fn parse_host_name(host: &str) -> Result<Host, String> {
    if !host.is_ascii() {
        return Err(
            "webhook URL host must be ASCII; write international names in punycode (xn--…)".into(),
        );
    }
    let lower = host.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err("webhook URL has no host".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!("webhook URL host contains {bad:?}"));
    }
    if name.len() > 253
        || name
            .split('.')
            .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err(format!("webhook URL host {name:?} is not a valid DNS name"));
    }
    // WHATWG URL parsers (browsers, the `url` crate, hence reqwest) read a host whose
    // last label is a number as IPv4, in forms like `2130706433`, `0x7f.1` or
    // `0177.0.0.1`. Accept only the unambiguous dotted-quad form.
    let last = name.rsplit('.').next().unwrap_or(name);
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return name
            .parse::<Ipv4Addr>()
            .map(|ip| Host::Ip(IpAddr::V4(ip)))
            .map_err(|_| {
                format!(
                    "webhook URL host {name:?} is ambiguous; write IPv4 as four decimal numbers"
                )
            });
    }
    Ok(Host::Domain(name.to_owned()))
}

/// Percent-encodes bytes an HTTP request line cannot carry raw (non-ASCII and a few
/// ASCII characters), leaving existing `%XX` escapes alone.
fn percent_encode_unsafe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && !matches!(c, '"' | '<' | '>' | '`' | '{' | '}' | '|' | '^') {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether a webhook must not be delivered to `ip`: loopback, unspecified, private,
/// link-local, CGNAT, multicast, broadcast, documentation, benchmarking and other
/// special-purpose ranges, including IPv6 forms that embed such an IPv4 address
/// (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
///
/// IPv6 is allowed only inside global unicast `2000::/3`, minus its special blocks;
/// this refuses new reserved ranges by default instead of needing a list update.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_forbidden_v4(ip),
        IpAddr::V6(ip) => is_forbidden_v6(ip),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                       // "this network", incl. 0.0.0.0
        || a == 10                               // private
        || a == 127                              // loopback
        || (a == 100 && (64..=127).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254)                // link-local, cloud metadata
        || (a == 172 && (16..=31).contains(&b))  // private
        || (a == 192 && b == 0 && c == 0)        // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)        // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)      // 6to4 relay anycast
        || (a == 192 && b == 168)                // private
        || (a == 198 && (b == 18 || b == 19))    // benchmarking 198.18/15
        || (a == 198 && b == 51 && c == 100)     // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)      // TEST-NET-3
        // Multicast 224/4, reserved 240/4, broadcast 255.255.255.255.
        || a >= 224
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4); // ::ffff:a.b.c.d
    }
    if s[..5] == [0, 0, 0, 0, 0xffff] && s[5] == 0 {
        return is_forbidden_v4(embedded_v4(s[6], s[7])); // ::ffff:0:a.b.c.d (SIIT)
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_forbidden_v4(embedded_v4(s[6], s[7])); // NAT64 64:ff9b::/96
    }
    if s[0] == 0x2002 {
        return is_forbidden_v4(embedded_v4(s[1], s[2])); // 6to4 2002::/16
    }
    // Outside global unicast 2000::/3: ::, ::1, ::/96, fc00::/7, fe80::/10, ff00::/8 …
    (s[0] & 0xe000) != 0x2000
        || (s[0] == 0x2001 && s[1] < 0x0200)     // 2001::/23 IETF assignments incl. Teredo
        || (s[0] == 0x2001 && s[1] == 0x0db8)    // documentation 2001:db8::/32
        // Documentation 3fff::/20.
        || (s[0] == 0x3fff && s[1] < 0x1000)
}

/// Resolves `host` and returns its addresses only if none of them is forbidden.
///
/// The caller must connect to exactly these addresses (sending the original host name
/// in `Host` and TLS SNI) rather than resolving again: a second lookup could return a
/// different, internal address (DNS rebinding). One forbidden address refuses the
/// whole name, since a name that mixes public and internal addresses is suspect.
/// `host` may be an IP literal, with or without IPv6 brackets. The lookup has no
/// timeout of its own; wrap it in the delivery's timeout.
pub async fn resolve_and_check(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if !allow_private && is_localhost_name(host) {
        return Err(format!("webhook target {host} is a local host name"));
    }
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve webhook host {host}: {e}"))?
        .collect();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(format!("webhook host {host} has no addresses"));
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|addr| is_forbidden_ip(addr.ip())) {
        return Err(format!(
            "webhook host {host} resolves to {}, a private, loopback or reserved address",
            bad.ip()
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VECTOR_TS: i64 = 1_649_367_553;
    const VECTOR_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const VECTOR_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn vector_secret() -> Secret {
        Secret::parse(VECTOR_SECRET).expect("test vector secret parses")
    }

    #[test]
    fn standard_webhooks_test_vector() {
        let secret = vector_secret();
        assert_eq!(sign(&secret, VECTOR_ID, VECTOR_TS, VECTOR_BODY), VECTOR_SIG);
        assert!(verify(
            &[&secret],
            VECTOR_ID,
            VECTOR_TS,
            VECTOR_BODY,
            VECTOR_SIG
        ));
    }

    #[test]
    fn verify_rejects_anything_changed() {
        let secret = vector_secret();
        let other = Secret::generate().expect("os rng");
        let ok = |id: &str, ts: i64, body: &[u8], header: &str, s: &Secret| {
            verify(&[s], id, ts, body, header)
        };
        assert!(!ok(VECTOR_ID, VECTOR_TS, b"{}", VECTOR_SIG, &secret));
        assert!(!ok(
            "msg_other",
            VECTOR_TS,
            VECTOR_BODY,
            VECTOR_SIG,
            &secret
        ));
        assert!(!ok(
            VECTOR_ID,
            VECTOR_TS + 1,
            VECTOR_BODY,
            VECTOR_SIG,
            &secret
        ));
        assert!(!ok(VECTOR_ID, VECTOR_TS, VECTOR_BODY, VECTOR_SIG, &other));
        let v2 = VECTOR_SIG.replacen("v1,", "v2,", 1);
        for header in ["", "v1,", "v1,!!!", "garbage", v2.as_str()] {
            assert!(
                !ok(VECTOR_ID, VECTOR_TS, VECTOR_BODY, header, &secret),
                "{header}"
            );
        }
        // A valid entry among junk still verifies.
        let mixed = format!("v1a,xyz {VECTOR_SIG} v1,AAAA");
        assert!(ok(VECTOR_ID, VECTOR_TS, VECTOR_BODY, &mixed, &secret));
    }

    #[test]
    fn rotation_header_carries_both_signatures() {
        let old = vector_secret();
        let new = Secret::generate().expect("os rng");
        let header = signature_header(&[&old, &new], VECTOR_ID, VECTOR_TS, VECTOR_BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], VECTOR_SIG);
        assert!(verify(&[&old], VECTOR_ID, VECTOR_TS, VECTOR_BODY, &header));
        assert!(verify(&[&new], VECTOR_ID, VECTOR_TS, VECTOR_BODY, &header));
        assert_eq!(signature_header(&[], VECTOR_ID, VECTOR_TS, VECTOR_BODY), "");
    }

    #[test]
    fn secret_parsing() {
        assert_eq!(
            Secret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").err(),
            Some(SecretError::MissingPrefix)
        );
        assert_eq!(
            Secret::parse("WHSEC_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").err(),
            Some(SecretError::MissingPrefix)
        );
        assert_eq!(
            Secret::parse("whsec_!!!!").err(),
            Some(SecretError::InvalidBase64)
        );
        assert_eq!(
            Secret::parse(&format!("{VECTOR_SECRET} ")).err(),
            Some(SecretError::InvalidBase64)
        );
        assert_eq!(
            Secret::parse("whsec_").err(),
            Some(SecretError::BadLength(0))
        );
        assert_eq!(
            Secret::parse("whsec_c2hvcnQ=").err(),
            Some(SecretError::BadLength(5))
        );
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        assert_eq!(Secret::parse(&long).err(), Some(SecretError::BadLength(65)));
        // Padding is optional.
        let padded = format!("whsec_{}", STANDARD.encode([7u8; 25]));
        let unpadded = padded.trim_end_matches('=');
        assert!(Secret::parse(&padded).is_ok() && Secret::parse(unpadded).is_ok());
        assert!(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
                .parse::<Secret>()
                .is_ok()
        );
        let message = SecretError::MissingPrefix.to_string();
        assert!(message.contains("whsec_"), "{message}");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let secret = vector_secret();
        assert_eq!(format!("{secret:?}"), "whsec_***");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(whsec_***)");
        assert_eq!(secret.expose(), VECTOR_SECRET);
    }

    #[test]
    fn generated_secrets_round_trip_and_differ() {
        let a = Secret::generate().expect("os rng");
        let b = Secret::generate().expect("os rng");
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(a.expose().len(), "whsec_".len() + 32);
        assert_ne!(a.expose(), b.expose());
        let again = Secret::parse(&a.expose()).expect("own format parses");
        assert_eq!(again.expose(), a.expose());
        assert_eq!(sign(&a, "m", 1, b"x"), sign(&again, "m", 1, b"x"));
    }

    #[test]
    fn retry_schedule_spans_about_three_days() {
        let schedule = retry_schedule();
        assert_eq!(schedule[0], Duration::ZERO);
        assert!(schedule.windows(2).all(|w| w[0] <= w[1]));
        let total: Duration = schedule.iter().sum();
        assert_eq!(total, Duration::from_secs(67 * 3600 + 35 * 60 + 5));
        assert!(total > hours(60) && total < hours(84));
    }

    #[test]
    fn next_attempt_follows_schedule_and_retry_after() {
        let n = u32::try_from(retry_schedule().len()).expect("short schedule");
        assert_eq!(next_attempt(0, None), Some(Duration::ZERO));
        assert_eq!(next_attempt(1, None), Some(Duration::from_secs(5)));
        assert_eq!(next_attempt(2, None), Some(Duration::from_secs(300)));
        assert_eq!(next_attempt(n - 1, None), Some(hours(10)));
        assert_eq!(next_attempt(n, None), None);
        assert_eq!(next_attempt(u32::MAX, Some(hours(1))), None);
        // Retry-After lengthens, is capped, and never shortens.
        assert_eq!(next_attempt(1, Some(hours(1))), Some(hours(1)));
        assert_eq!(next_attempt(1, Some(hours(1000))), Some(MAX_RETRY_AFTER));
        assert_eq!(next_attempt(4, Some(Duration::ZERO)), Some(hours(2)));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-5"), None);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address parses")
    }

    #[test]
    fn forbidden_ipv4() {
        for bad in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(is_forbidden_ip(ip(bad)), "{bad} should be forbidden");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
        ] {
            assert!(!is_forbidden_ip(ip(good)), "{good} should be allowed");
        }
    }

    #[test]
    fn forbidden_ipv6_including_embedded_ipv4() {
        for bad in [
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:192.168.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(is_forbidden_ip(ip(bad)), "{bad} should be forbidden");
        }
        for good in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_forbidden_ip(ip(good)), "{good} should be allowed");
        }
    }

    #[test]
    fn accepted_targets() {
        let t = check_target("https://Hooks.Example.COM", false).expect("valid");
        assert_eq!(t.scheme, Scheme::Https);
        assert_eq!(t.host, Host::Domain("hooks.example.com".into()));
        assert_eq!(t.port, 443);
        assert_eq!(t.path_and_query, "/");
        assert_eq!(t.to_string(), "https://hooks.example.com/");

        let t = check_target("HTTP://example.com.:8080/a/b?x=1&y=%20#frag", false).expect("valid");
        assert_eq!((t.scheme, t.port), (Scheme::Http, 8080));
        assert_eq!(t.host_str(), "example.com");
        assert_eq!(t.authority(), "example.com:8080");
        assert_eq!(t.path_and_query, "/a/b?x=1&y=%20");

        let t = check_target("https://[2606:4700::1111]:8443/hook", false).expect("valid");
        assert_eq!(t.host, Host::Ip(ip("2606:4700::1111")));
        assert_eq!(t.authority(), "[2606:4700::1111]:8443");
        assert_eq!(t.host_str(), "2606:4700::1111");

        let t = check_target("http://93.184.215.14:80?q", false).expect("valid");
        assert_eq!(t.to_string(), "http://93.184.215.14/?q");
        let t = check_target("https://example.com:/钩子", false).expect("valid");
        assert_eq!(t.port, 443);
        assert_eq!(t.path_and_query, "/%E9%92%A9%E5%AD%90");
    }

    #[test]
    fn refused_targets() {
        for bad in [
            "",
            "example.com",
            "//example.com",
            "ftp://example.com",
            "javascript://example.com",
            "https://",
            "https:///path",
            "https://user:pw@example.com/",
            "https://example.com@127.0.0.1/",
            "https://user@example.com",
            "http://127.0.0.1/",
            "http://127.0.0.1.:80/",
            "http://0.0.0.0/",
            "http://10.0.0.5/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://localhost:3000/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[fd00::1]/",
            "http://[fe80::1%25eth0]/",
            "http://[::1/",
            "http://[2606:4700::1111]x/",
            "http://::1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://1.2.3.04/",
            "http://1.2.3.4\\@example.com/",
            "http://exa mple.com/",
            "http://example.com/a b",
            "http://example.com\t/",
            "http://ex%61mple.com/",
            "http://ｅｘａｍｐｌｅ.com/",
            "http://example..com/",
            "http://.example.com/",
            "http://example.com:0/",
            "http://example.com:65536/",
            "http://example.com:80:80/",
            "http://example.com:8o/",
            "http://example.com:+80/",
        ] {
            assert!(
                check_target(bad, false).is_err(),
                "{bad:?} should be refused"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(3000));
        assert!(check_target(&long, false).is_err());
    }

    #[test]
    fn allow_private_permits_internal_targets_but_not_ambiguous_ones() {
        for ok in [
            "http://localhost:3000/hook",
            "http://10.0.0.5/",
            "http://[::1]:8080/",
            "http://crm-worker.internal/",
        ] {
            assert!(check_target(ok, true).is_ok(), "{ok:?} should be allowed");
        }
        for bad in [
            "http://2130706433/",
            "http://u:p@localhost/",
            "file:///etc/passwd",
        ] {
            assert!(
                check_target(bad, true).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = |url| check_target(url, false).err().unwrap_or_default();
        assert!(err("ftp://x.com").contains("http or https"));
        assert!(err("https://a:b@x.com").contains("user name or password"));
        assert!(err("http://127.0.0.1").contains("private, loopback or reserved"));
        assert!(err("http://2130706433").contains("four decimal numbers"));
        assert!(err("http://bücher.de").contains("punycode"));
    }

    #[tokio::test]
    async fn resolution_checks_every_address() {
        let err = resolve_and_check("127.0.0.1", 80, false).await;
        assert!(err.is_err());
        let ok = resolve_and_check("127.0.0.1", 80, true).await;
        assert_eq!(ok, Ok(vec!["127.0.0.1:80".parse().expect("addr")]));
        assert!(
            resolve_and_check("[::ffff:127.0.0.1]", 80, false)
                .await
                .is_err()
        );
        assert!(resolve_and_check("localhost", 80, false).await.is_err());
        assert!(
            resolve_and_check("Api.LocalHost.", 80, false)
                .await
                .is_err()
        );
        // Public literals need no DNS.
        let public = resolve_and_check("[2606:4700::1111]", 443, false).await;
        assert_eq!(
            public,
            Ok(vec!["[2606:4700::1111]:443".parse().expect("addr")])
        );
    }

    #[tokio::test]
    async fn resolving_localhost_yields_loopback_when_allowed() {
        // Goes through the system resolver (/etc/hosts), not the network.
        let addrs = resolve_and_check("localhost", 8080, true)
            .await
            .expect("localhost resolves");
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080)
        );
        let target = check_target("http://[::1]:9/", true).expect("allowed");
        assert_eq!(
            target.resolve(true).await,
            Ok(vec!["[::1]:9".parse().expect("addr")])
        );
        assert!(target.resolve(false).await.is_err());
    }
}
