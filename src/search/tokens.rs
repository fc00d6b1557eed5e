//! Tokenizer for the global search, shared by the SQLite FTS5 and PostgreSQL back ends.
//!
//! Why tokenize in Rust instead of letting the database do it:
//! - SQLite FTS5's `trigram` tokenizer cannot match two-character Chinese words, and
//!   `unicode61` treats a whole run of Han characters as one token.
//! - PostgreSQL's `to_tsvector('simple', …)` also makes a whole Chinese sentence one
//!   token, and we cannot rely on extensions such as `zhparser` or `pg_bigm`.
//!
//! So both databases receive text that is already split into tokens, joined with
//! single spaces. Every token consists only of letters and digits, which means FTS5's
//! `unicode61` tokenizer and PostgreSQL's default text-search parser split the stored
//! text exactly at our spaces and nowhere else.
//!
//! The rules:
//! - Full-width ASCII (`ＡＢＣ１２３＠`) and the ideographic space are folded to ASCII
//!   first, so either spelling finds the other.
//! - A run of CJK characters (Han, Hiragana, Katakana, Hangul) yields overlapping
//!   bigrams plus its last character on its own (`客户经理` → `客户 户经 经理 理`).
//!   A query of two or more CJK characters becomes a phrase of its bigrams, so `客户`
//!   matches `重要客户名单` but not `客人`. The trailing single character makes every
//!   character of a run the start of some token, so a one-character query (a prefix
//!   match) finds it wherever it appears.
//! - Other text is split into lowercased words at every character that is not a letter
//!   or digit. An email address `zhang.san@example.com` therefore yields
//!   `zhang san example com`: the query `example` finds it, and the query
//!   `zhang.san@example.com` becomes the phrase of those four words.
//! - Digit groups separated by spaces, `-`, `.` or parentheses that look like a phone
//!   number (7 to 15 digits) also yield their concatenations, so
//!   `+86 138-0013-8000` is found by `13800138000` and `13800138000` by
//!   `138-0013-8000`.

/// Tokens are cut to this many bytes (at a character boundary). Long tokens are almost
/// always hashes or pasted blobs; keeping their beginning still lets a prefix query
/// find them, and it keeps every lexeme far below PostgreSQL's 2 KiB limit.
const MAX_TOKEN_BYTES: usize = 128;

/// PostgreSQL stores positions up to this value; larger ones are clamped.
const MAX_TSVECTOR_POSITION: usize = 16_383;

/// Separators allowed between the digit groups of a phone number.
const PHONE_SEPARATORS: &[char] = &[' ', '\u{a0}', '-', '.', '(', ')'];

/// Phone numbers have at most 15 digits (E.164); 7 excludes most ordinary numbers.
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// Folds full-width ASCII forms and the ideographic space to ASCII (the part of NFKC
/// that matters for typed Chinese and Japanese text), leaving everything else as is.
///
/// It maps one `char` to one `char`, so character offsets in the folded text are
/// character offsets in the original, which [`snippet`] relies on.
fn normalize_char(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Characters that are searched by bigrams because their scripts are written without
/// spaces between words. CJK punctuation (`，。、「」・` …) is deliberately not
/// included: it separates tokens like any other punctuation.
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x1100..=0x11FF          // Hangul Jamo
        | 0x3005..=0x3007        // 々 〆 〇
        | 0x3021..=0x3029        // Hangzhou numerals
        | 0x3031..=0x3035        // kana repeat marks
        | 0x3041..=0x309F        // Hiragana
        | 0x30A1..=0x30FA        // Katakana (without the double hyphen ゠)
        | 0x30FC..=0x30FF        // ー ヽ ヾ ヿ (without the middle dot ・)
        | 0x3131..=0x318E        // Hangul compatibility Jamo
        | 0x31F0..=0x31FF        // Katakana phonetic extensions
        | 0x3400..=0x4DBF        // CJK extension A
        | 0x4E00..=0x9FFF        // CJK unified ideographs
        | 0xA960..=0xA97F        // Hangul Jamo extended A
        | 0xAC00..=0xD7AF        // Hangul syllables
        | 0xD7B0..=0xD7FF        // Hangul Jamo extended B
        | 0xF900..=0xFAFF        // CJK compatibility ideographs
        | 0xFF66..=0xFF9F        // half-width Katakana
        | 0xFFA0..=0xFFDC        // half-width Hangul
        | 0x1B000..=0x1B16F      // Kana supplement and extensions
        | 0x20000..=0x323AF      // CJK extensions B–H and compatibility supplement
    )
}

/// Letters and digits outside the CJK ranges: the characters that make up words.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

/// One char of text folded for case- and width-insensitive comparison, still one char
/// so that offsets stay aligned with the original.
fn fold_char(c: char) -> char {
    let c = normalize_char(c);
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

fn truncate_token(mut token: String) -> String {
    if token.len() > MAX_TOKEN_BYTES {
        let mut end = MAX_TOKEN_BYTES;
        while !token.is_char_boundary(end) {
            end -= 1;
        }
        token.truncate(end);
    }
    token
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cjk,
    Word,
}

/// A maximal run of CJK characters or of word characters.
#[derive(Debug)]
struct Piece {
    kind: Kind,
    /// Normalised text; lowercased and length-capped for words.
    text: String,
    /// The (normalised) characters between the previous piece and this one.
    sep_before: String,
}

impl Piece {
    fn is_digit_group(&self) -> bool {
        self.kind == Kind::Word && self.text.bytes().all(|b| b.is_ascii_digit())
    }
}

fn lex(text: &str) -> Vec<Piece> {
    fn flush(pieces: &mut Vec<Piece>, current: &mut Option<(Kind, String)>, sep: &mut String) {
        if let Some((kind, text)) = current.take() {
            let text = match kind {
                Kind::Cjk => text,
                // Most words are lowercase ASCII already: kept, not copied.
                Kind::Word
                    if text
                        .bytes()
                        .all(|b| b.is_ascii() && !b.is_ascii_uppercase()) =>
                {
                    truncate_token(text)
                }
                Kind::Word => truncate_token(text.to_lowercase()),
            };
            let sep_before = std::mem::take(sep);
            pieces.push(Piece {
                kind,
                text,
                sep_before,
            });
        }
    }

    let mut pieces = Vec::new();
    let mut current: Option<(Kind, String)> = None;
    let mut sep = String::new();
    for c in text.chars().map(normalize_char) {
        let kind = if is_cjk(c) {
            Some(Kind::Cjk)
        } else if c.is_alphanumeric() {
            Some(Kind::Word)
        } else {
            None
        };
        match (kind, &mut current) {
            (Some(k), Some((ck, buf))) if *ck == k => buf.push(c),
            (Some(k), _) => {
                flush(&mut pieces, &mut current, &mut sep);
                let mut buf = String::with_capacity(16);
                buf.push(c);
                current = Some((k, buf));
            }
            (None, _) => {
                flush(&mut pieces, &mut current, &mut sep);
                sep.push(c);
            }
        }
    }
    flush(&mut pieces, &mut current, &mut sep);
    pieces
}

fn is_phone_separator(sep: &str) -> bool {
    !sep.is_empty()
        && sep.chars().count() <= 3
        && sep.chars().all(|c| PHONE_SEPARATORS.contains(&c))
}

/// End (exclusive) of the run of phone-separated digit groups starting at `start`.
fn digit_run_end(pieces: &[Piece], start: usize) -> usize {
    let mut end = start;
    while end < pieces.len()
        && pieces[end].is_digit_group()
        && (end == start || is_phone_separator(&pieces[end].sep_before))
    {
        end += 1;
    }
    end
}

fn total_digits(groups: &[Piece]) -> usize {
    groups.iter().map(|g| g.text.len()).sum()
}

fn concat(groups: &[Piece]) -> String {
    groups.iter().map(|g| g.text.as_str()).collect()
}

fn starts_with_plus(groups: &[Piece]) -> bool {
    groups.first().is_some_and(|g| g.sep_before.ends_with('+'))
}

/// Extra tokens stored for a run of digit groups that may be a phone number: every
/// concatenation of a suffix of the groups (so the number is found with or without
/// its country or area code), and for `+`-prefixed numbers the digits without a 1–3
/// digit country code (because `+8613800138000` has no group boundary to cut at).
fn phone_index_extras(groups: &[Piece]) -> Vec<String> {
    let plus = starts_with_plus(groups);
    if !PHONE_DIGITS.contains(&total_digits(groups)) || (groups.len() < 2 && !plus) {
        return Vec::new();
    }
    let mut extras: Vec<String> = Vec::new();
    let mut add = |candidate: String| {
        if candidate.len() >= *PHONE_DIGITS.start()
            && !extras.contains(&candidate)
            && !groups.iter().any(|g| g.text == candidate)
        {
            extras.push(candidate);
        }
    };
    for i in 0..groups.len().saturating_sub(1) {
        add(concat(&groups[i..]));
    }
    if plus {
        let full = concat(groups);
        for cut in 1..=3 {
            if let Some(rest) = full.get(cut..) {
                add(rest.to_owned());
            }
        }
    }
    extras
}

/// The single token a query's digit groups stand for, if they read as a phone number.
///
/// Queries are stricter than documents: two space-separated numbers (`2025 2026`) stay
/// two words unless punctuation, a `+`, or a third group marks them as one number.
/// A leading `+cc ` country code is dropped so the query also finds numbers stored
/// without it (stored numbers always yield their national part, see
/// [`phone_index_extras`]).
fn phone_query_token(groups: &[Piece]) -> Option<String> {
    if groups.len() < 2 || !PHONE_DIGITS.contains(&total_digits(groups)) {
        return None;
    }
    let plus = starts_with_plus(groups);
    let punctuated = groups[0].sep_before.ends_with('(')
        || groups[1..]
            .iter()
            .any(|g| g.sep_before.chars().any(|c| !c.is_whitespace()));
    if !(plus || punctuated || groups.len() >= 3) {
        return None;
    }
    let national = &groups[1..];
    if plus && groups[0].text.len() <= 3 && total_digits(national) >= *PHONE_DIGITS.start() {
        Some(concat(national))
    } else {
        Some(concat(groups))
    }
}

fn push_cjk_index_tokens(run: &str, out: &mut Vec<String>) {
    let chars: Vec<char> = run.chars().collect();
    for pair in chars.windows(2) {
        out.push(pair.iter().collect());
    }
    if let Some(last) = chars.last() {
        out.push(last.to_string());
    }
}

/// Tokens of a document, in order, to be joined with single spaces into the FTS5
/// column or the source of `to_tsvector('simple', …)`.
///
/// Order is kept because phrase queries (CJK bigram phrases, `a.b@c.d`) rely on token
/// positions.
pub fn index_tokens(text: &str) -> Vec<String> {
    let mut pieces = lex(text);
    let mut out = Vec::with_capacity(pieces.len() * 2);
    let mut i = 0;
    // Words move from their pieces to the tokens; nothing reads a piece once it is passed.
    while i < pieces.len() {
        if pieces[i].kind == Kind::Cjk {
            push_cjk_index_tokens(&pieces[i].text, &mut out);
            i += 1;
        } else if pieces[i].is_digit_group() {
            let end = digit_run_end(&pieces, i);
            let extras = phone_index_extras(&pieces[i..end]);
            out.extend(
                pieces[i..end]
                    .iter_mut()
                    .map(|g| std::mem::take(&mut g.text)),
            );
            out.extend(extras);
            i = end;
        } else {
            out.push(std::mem::take(&mut pieces[i].text));
            i += 1;
        }
    }
    out
}

/// [`index_tokens`] joined with single spaces: the text the FTS5 column and PostgreSQL's
/// `tsvector` are made from.
pub fn index_text(text: &str) -> String {
    ascii_index_text(text).unwrap_or_else(|| index_tokens(text).join(" "))
}

/// [`index_text`] of ASCII text in one pass over its bytes (most names, emails and codes), or
/// `None` for anything else: text that is not ASCII, or that holds digit groups which may be a
/// phone number (the full steps add its extra tokens). ASCII needs no width folding and has
/// no CJK, and its words lower-case byte by byte, so the tokens are the same.
fn ascii_index_text(text: &str) -> Option<String> {
    if !text.is_ascii() {
        return None;
    }
    let bytes = text.as_bytes();
    // The words, as byte ranges: maximal runs of letters and digits.
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at].is_ascii_alphanumeric() {
            let start = at;
            while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
                at += 1;
            }
            words.push((start, at));
        } else {
            at += 1;
        }
    }
    let is_digits = |(start, end): (usize, usize)| bytes[start..end].iter().all(u8::is_ascii_digit);
    let cut = |(start, end): (usize, usize)| (start, end.min(start + MAX_TOKEN_BYTES));
    let mut out = String::with_capacity(text.len());
    let mut push = |(start, end): (usize, usize)| {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(
            bytes[start..end]
                .iter()
                .map(|b| char::from(b.to_ascii_lowercase())),
        );
    };
    let mut i = 0;
    while i < words.len() {
        if !is_digits(words[i]) {
            push(cut(words[i]));
            i += 1;
            continue;
        }
        // A run of digit groups with phone separators between them, as `digit_run_end` reads it.
        let mut end = i + 1;
        while end < words.len()
            && is_digits(words[end])
            && is_phone_separator(&text[words[end - 1].1..words[end].0])
        {
            end += 1;
        }
        let digits: usize = words[i..end].iter().map(|&w| cut(w).1 - w.0).sum();
        let before = if i == 0 { 0 } else { words[i - 1].1 };
        let plus = words[i].0 > before && bytes[words[i].0 - 1] == b'+';
        if PHONE_DIGITS.contains(&digits) && (end - i >= 2 || plus) {
            return None;
        }
        for &group in &words[i..end] {
            push(cut(group));
        }
        i = end;
    }
    Some(out)
}

/// One part of a query. Every term of a [`QueryPlan`] must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Tokens that must occur consecutively and in this order in the document.
    pub tokens: Vec<String>,
    /// Whether the last token only needs to be a prefix of a document token:
    /// type-ahead on the query's last word, or a single CJK character.
    pub prefix: bool,
}

/// How a query is matched: all terms must occur (AND), each term as a phrase.
///
/// - a run of two or more CJK characters is an exact phrase of its bigrams;
/// - a single CJK character is a prefix match (`"客"*`, `'客':*`);
/// - words joined by punctuation (`zhang.san@example.com`, `o'brien`) are a phrase;
/// - a phone number is one token of its digits;
/// - the query's last term, if it is words or a phone number, ends in a prefix so
///   results appear while typing; earlier words must match exactly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryPlan {
    /// The terms, in query order.
    pub terms: Vec<Term>,
}

impl QueryPlan {
    /// Plans `query`; the plan has no terms when the query has no letters or digits.
    pub fn new(query: &str) -> Self {
        // (term, whether it is words or digits and so gets type-ahead when last)
        let mut terms: Vec<(Term, bool)> = Vec::new();
        let mut words: Vec<String> = Vec::new();
        let flush = |words: &mut Vec<String>, terms: &mut Vec<(Term, bool)>| {
            if !words.is_empty() {
                let tokens = std::mem::take(words);
                terms.push((
                    Term {
                        tokens,
                        prefix: false,
                    },
                    true,
                ));
            }
        };

        let pieces = lex(query);
        let mut i = 0;
        while i < pieces.len() {
            let piece = &pieces[i];
            if piece.kind == Kind::Cjk {
                flush(&mut words, &mut terms);
                terms.push((cjk_query_term(&piece.text), false));
                i += 1;
                continue;
            }
            if piece.is_digit_group() {
                let end = digit_run_end(&pieces, i);
                if let Some(digits) = phone_query_token(&pieces[i..end]) {
                    flush(&mut words, &mut terms);
                    let term = Term {
                        tokens: vec![digits],
                        prefix: false,
                    };
                    terms.push((term, true));
                    i = end;
                    continue;
                }
            }
            if piece.sep_before.chars().any(char::is_whitespace) {
                flush(&mut words, &mut terms);
            }
            words.push(piece.text.clone());
            i += 1;
        }
        flush(&mut words, &mut terms);

        if let Some((last, true)) = terms.last_mut() {
            last.prefix = true;
        }
        QueryPlan {
            terms: terms.into_iter().map(|(term, _)| term).collect(),
        }
    }

    /// True when the query contained nothing searchable.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

fn cjk_query_term(run: &str) -> Term {
    let chars: Vec<char> = run.chars().collect();
    if chars.len() == 1 {
        Term {
            tokens: vec![run.to_owned()],
            prefix: true,
        }
    } else {
        Term {
            tokens: chars.windows(2).map(|pair| pair.iter().collect()).collect(),
            prefix: false,
        }
    }
}

/// The tokens of `query` in order, by the same rules as [`index_tokens`] (CJK runs
/// as bigrams, phone numbers as their digits). [`QueryPlan`] says how to match them.
pub fn query_tokens(query: &str) -> Vec<String> {
    QueryPlan::new(query)
        .terms
        .into_iter()
        .flat_map(|term| term.tokens)
        .collect()
}

/// The SQLite FTS5 `MATCH` expression for `query`, or `None` if it has no tokens.
///
/// Every term is a double-quoted FTS5 string (inner `"` doubled), so no character of
/// the user's query can act as FTS5 syntax (`OR`, `NEAR`, `-`, `^`, column filters).
/// Terms are joined with `AND`; a `*` after a string makes its last token a prefix.
pub fn fts5_match(query: &str) -> Option<String> {
    let plan = QueryPlan::new(query);
    if plan.is_empty() {
        return None;
    }
    let terms: Vec<String> = plan
        .terms
        .iter()
        .map(|term| {
            let phrase = term.tokens.join(" ").replace('"', "\"\"");
            let star = if term.prefix { "*" } else { "" };
            format!("\"{phrase}\"{star}")
        })
        .collect();
    Some(terms.join(" AND "))
}

/// The tsquery of every token of `plan` joined with `&`: what [`tsquery`] matches and a
/// little more (the tokens of a phrase anywhere in the document, in any order). The GIN index
/// answers it without reading the rows back, where a phrase (`<->`) makes PostgreSQL recheck
/// every candidate's positions; [`QueryPlan::matches`] then keeps the real matches.
pub fn tsquery_all_tokens(plan: &QueryPlan) -> Option<String> {
    let lexemes: Vec<String> = plan
        .terms
        .iter()
        .flat_map(|term| {
            let last = term.tokens.len().saturating_sub(1);
            term.tokens.iter().enumerate().map(move |(i, token)| {
                let star = if term.prefix && i == last { ":*" } else { "" };
                format!("{}{star}", quote_lexeme(token))
            })
        })
        .collect();
    (!lexemes.is_empty()).then(|| lexemes.join(" & "))
}

impl QueryPlan {
    /// True when a term has more than one token (a phrase), so that [`tsquery_all_tokens`]
    /// can match more than [`tsquery`].
    pub fn has_phrase(&self) -> bool {
        self.terms.iter().any(|t| t.tokens.len() > 1)
    }

    /// Whether `text`, tokenized as it is indexed, matches exactly as [`tsquery`] and
    /// [`fts5_match`] do: every term's tokens at consecutive positions, the last one as a
    /// prefix where the term says so.
    pub fn matches(&self, text: &str) -> bool {
        let tokens = index_tokens(text);
        !self.is_empty()
            && self.terms.iter().all(|term| {
                let n = term.tokens.len();
                n > 0
                    && tokens.windows(n).any(|window| {
                        window
                            .iter()
                            .zip(&term.tokens)
                            .enumerate()
                            .all(|(i, (doc, want))| {
                                if term.prefix && i == n - 1 {
                                    doc.starts_with(want.as_str())
                                } else {
                                    doc == want
                                }
                            })
                    })
            })
    }
}

/// A quoted tsquery/tsvector lexeme: wrapped in single quotes, with `'` doubled and
/// `\` escaped (PostgreSQL treats backslash as an escape inside lexemes).
fn quote_lexeme(token: &str) -> String {
    format!("'{}'", token.replace('\\', "\\\\").replace('\'', "''"))
}

/// The argument for `to_tsquery('simple', $1)` (or `$1::tsquery`), or `None` if the
/// query has no tokens.
///
/// Phrase tokens are joined with `<->` (adjacent positions), terms with `&`, and a
/// prefix token gets `:*`. Every lexeme is quoted, so user input never becomes
/// tsquery operators.
pub fn tsquery(query: &str) -> Option<String> {
    let plan = QueryPlan::new(query);
    if plan.is_empty() {
        return None;
    }
    let terms: Vec<String> = plan
        .terms
        .iter()
        .map(|term| {
            let last = term.tokens.len().saturating_sub(1);
            let lexemes: Vec<String> = term
                .tokens
                .iter()
                .enumerate()
                .map(|(i, token)| {
                    let star = if term.prefix && i == last { ":*" } else { "" };
                    format!("{}{star}", quote_lexeme(token))
                })
                .collect();
            if lexemes.len() == 1 {
                lexemes.join("")
            } else {
                format!("({})", lexemes.join(" <-> "))
            }
        })
        .collect();
    Some(terms.join(" & "))
}

/// A tsvector literal (`'tok':1 'tok2':2 …`) of [`index_text`]'s tokens for `$1::tsvector`, with positions
/// 1-based and clamped to PostgreSQL's maximum.
///
/// This stores our tokens verbatim, bypassing PostgreSQL's parser; pair it with
/// `$1::tsquery` (not `to_tsquery`) so both sides skip the parser. The
/// `to_tsvector('simple', tokens)` / `to_tsquery('simple', …)` pair works too,
/// as both sides then go through the same parser.
pub fn tsvector_literal(tokens: &str) -> String {
    let mut out = String::new();
    for (i, token) in tokens.split(' ').filter(|t| !t.is_empty()).enumerate() {
        if !out.is_empty() {
            out.push(' ');
        }
        let position = (i + 1).min(MAX_TSVECTOR_POSITION);
        out.push_str(&quote_lexeme(token));
        out.push(':');
        out.push_str(&position.to_string());
    }
    out
}

/// Something to look for in the text when building a snippet.
struct Needle {
    chars: Vec<char>,
    /// Must start at the beginning of a word (Latin words: `an` should not light up
    /// inside `plan`).
    word_start: bool,
    /// Digits that may be separated by phone punctuation in the text.
    phone: bool,
}

fn needles(query: &str) -> Vec<Needle> {
    let pieces = lex(query);
    let mut out = Vec::new();
    let mut i = 0;
    while i < pieces.len() {
        let piece = &pieces[i];
        if piece.is_digit_group() {
            let end = digit_run_end(&pieces, i);
            if let Some(digits) = phone_query_token(&pieces[i..end]) {
                out.push(Needle {
                    chars: digits.chars().collect(),
                    word_start: false,
                    phone: true,
                });
                i = end;
                continue;
            }
        }
        // A long digit group may be a phone number written with separators in the text.
        let phone = piece.is_digit_group() && piece.text.len() >= *PHONE_DIGITS.start();
        out.push(Needle {
            chars: piece.text.chars().map(fold_char).collect(),
            word_start: piece.kind == Kind::Word && !phone,
            phone,
        });
        i += 1;
    }
    // Longest first, so `客户经理` wins over `客户` when both are asked for.
    out.sort_by_key(|n| std::cmp::Reverse(n.chars.len()));
    out
}

/// Length in text chars of `needle` matched at `at`, if it matches there.
fn match_at(folded: &[char], at: usize, needle: &Needle) -> Option<usize> {
    if needle.chars.is_empty() {
        return None;
    }
    if needle.word_start && at > 0 && folded.get(at - 1).copied().is_some_and(is_word_char) {
        return None;
    }
    let mut pos = at;
    for (k, &want) in needle.chars.iter().enumerate() {
        if needle.phone && k > 0 {
            let mut skipped = 0;
            while skipped < 3
                && folded
                    .get(pos)
                    .is_some_and(|c| PHONE_SEPARATORS.contains(c))
            {
                pos += 1;
                skipped += 1;
            }
        }
        if folded.get(pos) != Some(&want) {
            return None;
        }
        pos += 1;
    }
    Some(pos - at)
}

/// Non-overlapping hits `(start, end)` in char offsets, leftmost first.
fn find_hits(folded: &[char], needles: &[Needle]) -> Vec<(usize, usize)> {
    let mut hits = Vec::new();
    let mut at = 0;
    while at < folded.len() {
        match needles.iter().find_map(|n| match_at(folded, at, n)) {
            Some(len) => {
                hits.push((at, at + len));
                at += len;
            }
            None => at += 1,
        }
    }
    hits
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        _ => out.push(c),
    }
}

/// An HTML snippet of at most `max_chars` characters of `text` around the first hit of
/// `query`, with hits wrapped in `<mark>…</mark>` and `…` where the text was cut.
///
/// Matching ignores case and full-width forms. CJK runs of the query match as exact
/// substrings, words match at the start of a word, phone numbers match across
/// `-`/space/`.`/parentheses. All text is HTML-escaped (`& < > " '`), so the result can
/// be inserted as HTML. Works on chars, so a UTF-8 sequence is never split. Without a
/// hit, the snippet is the start of the text.
pub fn snippet(text: &str, query: &str, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    let chars: Vec<char> = text.chars().collect();
    let folded: Vec<char> = chars.iter().copied().map(fold_char).collect();
    let hits = find_hits(&folded, &needles(query));
    let len = chars.len();

    let (mut start, mut end) = (0, len.min(max_chars));
    if len > max_chars {
        if let Some(&(hit_start, hit_end)) = hits.first() {
            let hit_len = (hit_end - hit_start).min(max_chars);
            // A third of the spare room before the hit: readers scan forward.
            let before = (max_chars - hit_len) / 3;
            start = hit_start.saturating_sub(before).min(len - max_chars);
            end = start + max_chars;
            // Don't start or end in the middle of a word when a little room allows it.
            let mut moved = 0;
            while start > 0
                && start < hit_start
                && moved < 12
                && is_word_char(chars[start - 1])
                && is_word_char(chars[start])
            {
                start += 1;
                moved += 1;
            }
            let mut moved = 0;
            while end < len
                && end > hit_end
                && moved < 12
                && is_word_char(chars[end - 1])
                && is_word_char(chars[end])
            {
                end -= 1;
                moved += 1;
            }
        }
        while start > 0 && start < end && chars[start].is_whitespace() {
            start += 1;
        }
        while end < len && end > start && chars[end - 1].is_whitespace() {
            end -= 1;
        }
    }

    let mut out = String::with_capacity((end - start) * 3 + 16);
    if start > 0 {
        out.push('…');
    }
    let mut hits = hits
        .into_iter()
        .filter(|&(s, e)| s < end && e > start)
        .map(|(s, e)| (s.max(start), e.min(end)))
        .peekable();
    let mut open_until = None;
    for (i, &c) in chars.iter().enumerate().take(end).skip(start) {
        if open_until.is_none()
            && let Some(&(s, e)) = hits.peek()
            && s == i
        {
            out.push_str("<mark>");
            open_until = Some(e);
            hits.next();
        }
        push_escaped(&mut out, c);
        if open_until == Some(i + 1) {
            out.push_str("</mark>");
            open_until = None;
        }
    }
    if end < len {
        out.push('…');
    }
    out
}

/// Char offset of the first place where `query` occurs in `text` as a whole phrase
/// (ignoring case and full-width forms; any run of whitespace in the query matches
/// any run of whitespace in the text), or `None`.
///
/// The token index finds documents whose terms appear anywhere; ranking those with an
/// exact phrase first, and earlier phrases before later ones, puts the record whose
/// name is the query at the top.
pub fn phrase_position(text: &str, query: &str) -> Option<usize> {
    let parts: Vec<Vec<char>> = query
        .chars()
        .map(fold_char)
        .collect::<String>()
        .split_whitespace()
        .map(|part| part.chars().collect())
        .collect();
    if parts.is_empty() {
        return None;
    }
    let folded: Vec<char> = text.chars().map(fold_char).collect();
    (0..folded.len()).find(|&at| {
        let mut pos = at;
        for (k, part) in parts.iter().enumerate() {
            if k > 0 {
                let gap_start = pos;
                while folded.get(pos).is_some_and(|c| c.is_whitespace()) {
                    pos += 1;
                }
                if pos == gap_start {
                    return false;
                }
            }
            if folded.get(pos..pos + part.len()) != Some(part.as_slice()) {
                return false;
            }
            pos += part.len();
        }
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny stand-in for FTS5/tsquery: every term must occur as consecutive tokens,
    /// the last one possibly as a prefix.
    fn matches(text: &str, query: &str) -> bool {
        let doc = index_tokens(text);
        let plan = QueryPlan::new(query);
        !plan.is_empty()
            && plan.terms.iter().all(|term| {
                let n = term.tokens.len();
                doc.len() >= n
                    && (0..=doc.len() - n).any(|at| {
                        term.tokens.iter().enumerate().all(|(k, want)| {
                            let got = &doc[at + k];
                            if term.prefix && k == n - 1 {
                                got.starts_with(want.as_str())
                            } else {
                                got == want
                            }
                        })
                    })
            })
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn cjk_runs_become_bigrams_plus_last_char() {
        assert_eq!(
            index_tokens("客户经理"),
            strings(&["客户", "户经", "经理", "理"])
        );
        assert_eq!(index_tokens("客"), strings(&["客"]));
        // CJK punctuation separates runs.
        assert_eq!(
            index_tokens("客户，经理"),
            strings(&["客户", "户", "经理", "理"])
        );
    }

    #[test]
    fn two_char_word_matches_as_phrase_not_single_chars() {
        assert!(matches("重要客户名单", "客户"));
        assert!(matches("客户经理", "客户"));
        assert!(!matches("客人", "客户"));
        assert!(!matches("户客", "客户"));
    }

    #[test]
    fn company_name_and_five_char_phrase() {
        assert!(matches("上海华东贸易有限公司", "华东"));
        assert!(matches("上海华东贸易有限公司", "华东贸易有"));
        assert!(!matches("上海华东商贸有限公司", "华东贸易有"));
        assert!(matches("上海华东贸易有限公司", "有限公司"));
    }

    #[test]
    fn single_cjk_char_is_a_prefix_match_anywhere_in_a_run() {
        let plan = QueryPlan::new("客");
        assert_eq!(
            plan.terms,
            vec![Term {
                tokens: strings(&["客"]),
                prefix: true
            }]
        );
        assert!(matches("重要客户名单", "客"));
        assert!(matches("重要客户名单", "单"));
        assert!(!matches("重要客户名单", "人"));
    }

    #[test]
    fn japanese_and_korean_are_bigrammed() {
        assert!(matches("カタカナとひらがな", "ひらがな"));
        assert!(matches("서울특별시", "서울"));
        assert!(!matches("서울특별시", "부산"));
    }

    #[test]
    fn mixed_text() {
        let text = "Tessera 客户 CRM 2026";
        assert_eq!(
            index_tokens(text),
            strings(&["tessera", "客户", "户", "crm", "2026"])
        );
        assert!(matches(text, "客户"));
        assert!(matches(text, "crm tessera"));
        assert!(matches(text, "Tess"));
        assert!(matches(text, "tessera 客户 2026"));
        assert!(!matches(text, "tessera 客人"));
        let plan = QueryPlan::new("Tessera 客户 CRM 20");
        assert_eq!(
            plan.terms,
            vec![
                Term {
                    tokens: strings(&["tessera"]),
                    prefix: false
                },
                Term {
                    tokens: strings(&["客户"]),
                    prefix: false
                },
                Term {
                    tokens: strings(&["crm"]),
                    prefix: false
                },
                Term {
                    tokens: strings(&["20"]),
                    prefix: true
                },
            ]
        );
    }

    #[test]
    fn latin_words_prefix_only_on_the_last_one() {
        assert!(matches("Acme Corporation", "acme corp"));
        assert!(!matches("Acme Corporation", "ac corporation"));
        assert!(matches("Zoë Müller", "MÜLLER zoë"));
    }

    #[test]
    fn email_addresses() {
        let text = "联系人：zhang.san@example.com";
        assert_eq!(
            index_tokens(text),
            strings(&["联系", "系人", "人", "zhang", "san", "example", "com"])
        );
        assert!(matches(text, "zhang.san@example.com"));
        assert!(matches(text, "Zhang.San@Example"));
        assert!(matches(text, "example"));
        assert!(!matches(text, "li.si@example.com"));
        assert!(!matches("san.zhang@example.com", "zhang.san@example.com"));
    }

    #[test]
    fn phone_numbers() {
        let formatted = "电话 +86 138-0013-8000";
        let plain = "手机13800138000";
        let glued = "tel:+8613800138000";
        for text in [formatted, plain, glued] {
            assert!(matches(text, "13800138000"), "{text}");
            assert!(matches(text, "138-0013-8000"), "{text}");
            assert!(matches(text, "138 0013 8000"), "{text}");
            assert!(matches(text, "+86 138 0013 8000"), "{text}");
            assert!(matches(text, "1380013"), "{text}");
        }
        assert!(matches(formatted, "+86 138"));
        assert!(matches("(010) 8888-6666", "01088886666"));
        assert!(matches("(010) 8888-6666", "8888 6666"));
        assert!(!matches(formatted, "13900139000"));
        assert_eq!(query_tokens("138-0013-8000"), strings(&["13800138000"]));
        // Two space-separated numbers in a query stay two words.
        assert_eq!(query_tokens("2025 2026"), strings(&["2025", "2026"]));
    }

    #[test]
    fn full_width_forms_are_folded() {
        assert_eq!(index_tokens("ＡＢＣ１２３"), strings(&["abc123"]));
        assert!(matches("订单ＮＯ．１２３４５", "no.12345"));
        assert!(matches("order no.12345", "ＮＯ．１２３"));
        assert!(matches("电话：１３８００１３８０００", "13800138000"));
        assert_eq!(
            index_tokens("客户　经理"),
            strings(&["客户", "户", "经理", "理"])
        );
    }

    #[test]
    fn long_tokens_are_truncated_on_a_char_boundary() {
        let long = "é".repeat(200);
        let tokens = index_tokens(&long);
        assert_eq!(tokens.len(), 1);
        assert!(tokens[0].len() <= MAX_TOKEN_BYTES);
        assert!(matches(&long, &"é".repeat(10)));
    }

    #[test]
    fn fts5_expressions_are_quoted() {
        assert_eq!(fts5_match("客户").as_deref(), Some("\"客户\""));
        assert_eq!(fts5_match("客").as_deref(), Some("\"客\"*"));
        assert_eq!(
            fts5_match("客户经理").as_deref(),
            Some("\"客户 户经 经理\"")
        );
        assert_eq!(
            fts5_match("Tessera 客户 CRM").as_deref(),
            Some("\"tessera\" AND \"客户\" AND \"crm\"*")
        );
        assert_eq!(
            fts5_match("zhang.san@exa").as_deref(),
            Some("\"zhang san exa\"*")
        );
        // Syntax in the query is just text.
        assert_eq!(
            fts5_match("a\" OR NEAR(b) -c*").as_deref(),
            Some("\"a\" AND \"or\" AND \"near b\" AND \"c\"*")
        );
        assert_eq!(fts5_match(" \"*^-( ) "), None);
        assert_eq!(fts5_match(""), None);
    }

    #[test]
    fn tsquery_expressions_are_quoted() {
        assert_eq!(tsquery("客户").as_deref(), Some("'客户'"));
        assert_eq!(tsquery("客").as_deref(), Some("'客':*"));
        assert_eq!(
            tsquery("客户经理").as_deref(),
            Some("('客户' <-> '户经' <-> '经理')")
        );
        assert_eq!(
            tsquery("o'brien & 客户 | !x").as_deref(),
            Some("('o' <-> 'brien') & '客户' & 'x':*")
        );
        assert_eq!(
            tsquery("zhang.san@example.com").as_deref(),
            Some("('zhang' <-> 'san' <-> 'example' <-> 'com':*)")
        );
        assert_eq!(
            tsquery("+86 138-0013-8000").as_deref(),
            Some("'13800138000':*")
        );
        assert_eq!(tsquery("'&|!<->:*"), None);
    }

    #[test]
    fn ascii_text_gives_the_tokens_of_the_full_steps() {
        let samples = [
            "Customer 42",
            "c42@Example.COM",
            "zhang.san@example.com",
            "  leading and trailing  ",
            "",
            "---",
            "+86 138-0013-8000",
            "+8613800138000",
            "Call (010) 6552 9988 now",
            "2025 2026",
            "12345 67890",
            "order 1234567 shipped",
            "a1b2 99 x",
            "O'Brien & Sons, Ltd.",
        ];
        let long_word = "Ab".repeat(100);
        let long_digits = "7".repeat(200);
        let long_phone = format!("1{} 234", "0".repeat(130));
        let mut texts: Vec<String> = samples.iter().map(|s| s.to_string()).collect();
        texts.extend([long_word, long_digits, long_phone]);
        // Strings of letters, digits and phone punctuation, made by a fixed generator.
        let alphabet = b"aZ09 5+-.()@,7";
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3_000 {
            let mut text = String::new();
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            for _ in 0..(state >> 59) as usize + 1 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                text.push(char::from(
                    alphabet[(state >> 33) as usize % alphabet.len()],
                ));
            }
            texts.push(text);
        }
        let mut fast = 0;
        for text in &texts {
            assert_eq!(index_text(text), index_tokens(text).join(" "), "{text:?}");
            fast += usize::from(ascii_index_text(text).is_some());
        }
        // Most of them take the one pass; some are phone numbers or not ASCII.
        assert!(fast > texts.len() / 2, "{fast} of {}", texts.len());
        assert_eq!(ascii_index_text("+86 138-0013-8000"), None);
        assert_eq!(ascii_index_text("客户"), None);
        assert_eq!(index_text("客户 CRM"), "客户 户 crm");
    }

    #[test]
    fn lexeme_quoting() {
        assert_eq!(quote_lexeme("o'brien"), "'o''brien'");
        assert_eq!(quote_lexeme("a\\b"), "'a\\\\b'");
        assert_eq!(
            tsvector_literal(&index_text("客户 CRM")),
            "'客户':1 '户':2 'crm':3"
        );
    }

    #[test]
    fn snippet_escapes_everything_but_the_mark() {
        let text = "before <img src=x onerror=alert(1)> & \"quotes\" 'single' 客户 after";
        let html = snippet(text, "客户", 200);
        assert_eq!(
            html,
            "before &lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot; \
             &#39;single&#39; <mark>客户</mark> after"
        );
        let html = snippet(text, "<img src=x onerror=alert(1)>", 200);
        assert!(!html.contains("<img"));
        assert!(html.contains("&lt;<mark>img</mark> <mark>src</mark>=<mark>x</mark>"));
    }

    #[test]
    fn snippet_cuts_around_the_hit_with_ellipses() {
        let text = format!("{}重要客户名单{}", "前".repeat(100), "后".repeat(100));
        let html = snippet(&text, "客户", 20);
        assert!(html.starts_with('…') && html.ends_with('…'), "{html}");
        assert!(html.contains("<mark>客户</mark>"), "{html}");
        let visible = html.replace("<mark>", "").replace("</mark>", "");
        assert_eq!(visible.chars().filter(|&c| c != '…').count(), 20);

        // No hit: the start of the text.
        assert_eq!(snippet("abcdef", "zzz", 3), "abc…");
        assert_eq!(snippet("abc", "", 10), "abc");
        assert_eq!(snippet("abc", "b", 0), "");
    }

    #[test]
    fn snippet_matches_words_case_and_width_insensitively() {
        let html = snippet("The ACME plan for Ａｃｍｅ", "acme", 100);
        assert_eq!(html, "The <mark>ACME</mark> plan for <mark>Ａｃｍｅ</mark>");
        // Word matches start at a word boundary.
        assert_eq!(snippet("plan an", "an", 100), "plan <mark>an</mark>");
        assert_eq!(
            snippet("Call +86 138-0013-8000 now", "13800138000", 100),
            "Call +86 <mark>138-0013-8000</mark> now"
        );
    }

    #[test]
    fn snippet_does_not_cut_latin_words_when_avoidable() {
        let text = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo";
        let html = snippet(text, "golf", 24);
        assert!(html.contains("<mark>golf</mark>"));
        let inner = html.trim_matches('…');
        for word in inner
            .replace("<mark>", "")
            .replace("</mark>", "")
            .split(' ')
        {
            assert!(
                text.split(' ').any(|w| w == word),
                "cut word {word:?} in {html}"
            );
        }
    }

    #[test]
    fn phrase_position_finds_exact_phrases() {
        assert_eq!(
            tsquery_all_tokens(&QueryPlan::new("华东贸易 客")).as_deref(),
            Some("'华东' & '东贸' & '贸易' & '客':*")
        );
        let phrase = |q: &str| QueryPlan::new(q).has_phrase();
        assert!(phrase("华东贸易") && !phrase("客户") && !phrase("acme"));
        assert!(QueryPlan::new("华东贸易").matches("上海华东贸易有限公司"));
        assert!(
            !QueryPlan::new("华东贸易").matches("华东的东贸易"),
            "the bigrams scattered"
        );
        assert!(QueryPlan::new("贸易 上海").matches("上海华东贸易有限公司"));
        assert!(QueryPlan::new("acme corp").matches("Acme Corporation"));
        assert!(!QueryPlan::new("acme corporation").matches("Corp of Acme"));
        assert_eq!(phrase_position("重要客户名单", "客户"), Some(2));
        assert_eq!(phrase_position("Acme   Corp Ltd", "acme corp"), Some(0));
        assert_eq!(phrase_position("The ＡＣＭＥ Corp", "acme corp"), Some(4));
        assert_eq!(phrase_position("Corp of Acme", "acme corp"), None);
        assert_eq!(phrase_position("客人", "客户"), None);
        assert_eq!(phrase_position("anything", "   "), None);
    }
}
