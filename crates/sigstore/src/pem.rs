//! PEM handling with Go's `encoding/pem` semantics.
//!
//! containers/image decides several verdicts on exactly how Go reads PEM:
//! the first block of a key file counts and the rest is ignored, a Rekor
//! entry's key must be one block with nothing after it, and a certificate
//! list fails on any text that is not a block. The `pem` crate parses one
//! block; this module decides which bytes form that block and what is left.

/// One decoded PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) label: String,
    pub(crate) has_headers: bool,
    pub(crate) der: Vec<u8>,
}

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";

/// Finds and decodes the first PEM block, skipping anything before it like
/// Go's `pem.Decode`, and returns the bytes after the block's end line.
/// A malformed block is skipped and the search goes on after its `BEGIN`
/// line, as Go does.
pub(crate) fn decode(input: &[u8]) -> Option<(Block, &[u8])> {
    let mut rest = input;
    loop {
        let start = find(rest, BEGIN)?;
        // A block must start a line.
        if start > 0 && rest[start - 1] != b'\n' {
            rest = &rest[start + BEGIN.len()..];
            continue;
        }
        let candidate = &rest[start..];
        match decode_at(candidate) {
            Some(found) => return Some(found),
            None => rest = &candidate[BEGIN.len()..],
        }
    }
}

/// Decodes a block that starts exactly at `input`.
fn decode_at(input: &[u8]) -> Option<(Block, &[u8])> {
    let (first_line, _) = split_line(input);
    let first_line = trim_trailing_space(first_line);
    let label = first_line.strip_prefix(BEGIN)?.strip_suffix(b"-----")?;
    let label = std::str::from_utf8(label).ok()?;
    let end_marker = [END, label.as_bytes(), b"-----"].concat();
    let end = find(input, &end_marker)?;
    if end == 0 || input[end - 1] != b'\n' {
        return None;
    }
    let (end_line, after) = split_line(&input[end..]);
    if !trim_trailing_space(&end_line[end_marker.len()..]).is_empty() {
        return None;
    }
    let block_text = &input[..end + end_marker.len()];
    let parsed = pem::parse(block_text).ok()?;
    if parsed.tag() != label {
        return None;
    }
    let block = Block {
        label: label.to_owned(),
        has_headers: parsed.headers().iter().next().is_some(),
        der: parsed.into_contents(),
    };
    Some((block, after))
}

/// Every block in `input`, which must hold nothing but blocks and white
/// space: the rule sigstore applies to certificate chains.
pub(crate) fn decode_all_strict(input: &[u8]) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut rest = input.trim_ascii();
    while !rest.is_empty() {
        let Some((block, after)) = decode(rest) else {
            return Err("error during PEM decoding".to_owned());
        };
        blocks.push(block);
        rest = after.trim_ascii();
    }
    Ok(blocks)
}

/// Every well-formed block in `input`, ignoring anything else: how Go's
/// `CertPool.AppendCertsFromPEM` reads a CA bundle.
pub(crate) fn decode_all_lenient(input: &[u8]) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut rest = input;
    while let Some((block, after)) = decode(rest) {
        blocks.push(block);
        rest = after;
    }
    blocks
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Splits after the first line ending (`\n`, `\r\n` or a lone `\r`).
fn split_line(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|b| *b == b'\n' || *b == b'\r') {
        Some(i) if input[i] == b'\r' && input.get(i + 1) == Some(&b'\n') => {
            (&input[..i], &input[i + 2..])
        }
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[]),
    }
}

fn trim_trailing_space(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str = "-----BEGIN TEST-----\naGVsbG8=\n-----END TEST-----\n";

    #[test]
    fn first_block_after_leading_text() {
        let input = format!("junk\n{BLOCK}tail");
        let (block, rest) = decode(input.as_bytes()).unwrap();
        assert_eq!(block.label, "TEST");
        assert_eq!(block.der, b"hello");
        assert_eq!(rest, b"tail");
    }

    #[test]
    fn nothing_after_a_single_block() {
        let (_, rest) = decode(BLOCK.as_bytes()).unwrap();
        assert!(rest.is_empty());
        let (_, rest) = decode(BLOCK.trim_end().as_bytes()).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn mismatched_end_label_is_not_a_block() {
        let input = "-----BEGIN A-----\naGVsbG8=\n-----END B-----\n";
        assert!(decode(input.as_bytes()).is_none());
    }

    #[test]
    fn strict_list_refuses_text_between_blocks() {
        let two = format!("{BLOCK}{BLOCK}");
        assert_eq!(decode_all_strict(two.as_bytes()).unwrap().len(), 2);
        let with_text = format!("{BLOCK}not pem\n");
        assert!(decode_all_strict(with_text.as_bytes()).is_err());
        assert!(
            decode_all_strict(b"this is not a valid certificate").is_err(),
            "text alone is an error"
        );
        assert!(decode_all_strict(b"  \n").unwrap().is_empty());
    }

    #[test]
    fn lenient_list_skips_text() {
        let input = format!("x\n{BLOCK}y\n{BLOCK}z");
        assert_eq!(decode_all_lenient(input.as_bytes()).len(), 2);
    }
}
