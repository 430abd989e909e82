//! Python's spelling of template values. Hugging Face renders chat templates in Python, so a value
//! printed with `{{ … }}` reads as `str(value)` (`None`, `True`, `['a', 1]`) and the `tojson` filter
//! is `json.dumps` (spaces after `,` and `:`, no HTML escaping, non-ASCII kept). minijinja's own
//! spellings (`none`, `true`, compact JSON with `<` escaped) would change the prompt, so the
//! environment uses these instead.

use std::fmt::Write;

use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs};
use minijinja::{Error, ErrorKind, Value};

/// `str(value)`: strings as they are, everything else as `repr`. Undefined prints as nothing, as
/// Jinja2's default `Undefined` does.
pub(crate) fn py_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => value.as_str().unwrap_or_default().to_owned(),
        _ => py_repr(value),
    }
}

/// `repr(value)` for the kinds a chat template meets; other objects (namespaces, loop state,
/// macros) fall back to minijinja's display, which Python would print differently anyway.
pub(crate) fn py_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

fn write_repr(out: &mut String, value: &Value) {
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => out.push_str(&number(value)),
        ValueKind::String => write_str_repr(out, value.as_str().unwrap_or_default()),
        ValueKind::Seq => {
            out.push('[');
            for (i, item) in value.try_iter().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, &item);
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in value.try_iter().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, &key);
                out.push_str(": ");
                write_repr(out, &value.get_item(&key).unwrap_or_default());
            }
            out.push('}');
        }
        _ => {
            let _ = write!(out, "{value}");
        }
    }
}

/// An integer's digits, or a float the way Python's `repr(float)` writes it.
fn number(value: &Value) -> String {
    if value.is_integer() {
        return value.to_string();
    }
    match f64::try_from(value.clone()) {
        Ok(f) => float_repr(f),
        Err(_) => value.to_string(),
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip (Rust's `{:e}` finds the same
/// ones), written in fixed notation when the decimal exponent is in -4..16 (with a `.0` when the
/// value is integral) and as `1.5e+16` / `1e-05` otherwise.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = f.abs();
    let shortest = format!("{a:e}");
    // When two shortest candidates are equally close (x.25 → x.2 or x.3), Python rounds half to
    // even and Rust's shortest mode rounds up; Rust's exact mode at the same digit count rounds
    // half to even, so prefer it whenever it still reads back as the same float.
    let n = shortest
        .split('e')
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .count();
    let exact = format!("{a:.*e}", n.saturating_sub(1));
    let sci = if exact.parse::<f64>() == Ok(a) {
        exact
    } else {
        shortest
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    // Position of the decimal point relative to the digit string: value = 0.DIGITS × 10^point.
    let point = exp + 1;
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if !(-4 < point && point <= 16) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.unsigned_abs());
    }
    let n = digits.len() as i32;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point >= n {
        format!("{digits}{}.0", "0".repeat((point - n) as usize))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

/// `repr(str)`: single quotes unless the text has a `'` and no `"`; backslash escapes for the
/// quote, `\\`, `\t`, `\n`, `\r` and characters Python does not consider printable.
fn write_str_repr(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let cp = u32::from(c);
                let _ = match cp {
                    0..=0xff => write!(out, "\\x{cp:02x}"),
                    0x100..=0xffff => write!(out, "\\u{cp:04x}"),
                    _ => write!(out, "\\U{cp:08x}"),
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Python's `str.isprintable` for one character: false for control, format, separator (except
/// the ASCII space), private-use characters. Without Unicode tables this covers the categories by
/// their well-known ranges; unassigned code points (also non-printable in Python) are not known.
fn is_printable(c: char) -> bool {
    let cp = u32::from(c);
    !matches!(cp,
        0x00..=0x1f | 0x7f..=0xa0 | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891
        | 0x8e2 | 0x1680 | 0x180e | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064
        | 0x2066..=0x206f | 0x3000 | 0xd800..=0xf8ff | 0xfeff | 0xfff9..=0xfffb | 0x110bd | 0x110cd
        | 0x13430..=0x1343f | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        | 0xf0000..=0x10ffff)
}

/// Options of Python's `json.dumps` that Hugging Face's `tojson` passes through.
struct JsonStyle {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

/// The `tojson` filter as Hugging Face defines it: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`, arguments by position or by name.
pub(crate) fn tojson(value: &Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let mut positional: Vec<Value> = args.0.into_iter().map(Value::from).collect();
    let kwargs = match positional.last() {
        Some(last) if last.is_kwargs() => Kwargs::try_from(positional.pop().unwrap_or_default())?,
        _ => Kwargs::from_iter(std::iter::empty::<(String, Value)>()),
    };
    if positional.len() > 4 {
        return Err(invalid("tojson takes at most 4 positional arguments"));
    }
    let mut positional = positional.into_iter();
    let pick = |name: &str, positional: Option<Value>| -> Result<Option<Value>, Error> {
        match (positional, kwargs.get::<Option<Value>>(name)?) {
            (Some(_), Some(_)) => Err(invalid(format!("tojson got multiple values for {name}"))),
            (p, k) => Ok(p.or(k).filter(|v| !v.is_undefined())),
        }
    };
    let (ensure_ascii, indent) = (positional.next(), positional.next());
    let (separators, sort_keys) = (positional.next(), positional.next());
    let ensure_ascii = pick("ensure_ascii", ensure_ascii)?.is_some_and(|v| v.is_true());
    let indent = pick("indent", indent)?
        .filter(|v| !v.is_none())
        .map(indent_text)
        .transpose()?;
    let separators = pick("separators", separators)?.filter(|v| !v.is_none());
    let sort_keys = pick("sort_keys", sort_keys)?.is_some_and(|v| v.is_true());
    kwargs.assert_all_used()?;
    let (item_sep, key_sep) = match separators {
        Some(seps) => {
            let item = seps.get_item_by_index(0)?;
            let key = seps.get_item_by_index(1)?;
            match (item.as_str(), key.as_str()) {
                (Some(i), Some(k)) => (i.to_owned(), k.to_owned()),
                _ => return Err(invalid("tojson separators must be two strings")),
            }
        }
        // json.dumps drops the space after "," once lines are indented.
        None if indent.is_some() => (",".into(), ": ".into()),
        None => (", ".into(), ": ".into()),
    };
    let style = JsonStyle {
        ensure_ascii,
        indent,
        item_sep,
        key_sep,
        sort_keys,
    };
    let mut out = String::new();
    write_json(&mut out, value, &style, 0)?;
    Ok(out)
}

/// `indent=4` means four spaces, a string is used as it is (a negative number gives no spaces).
fn indent_text(v: Value) -> Result<String, Error> {
    if let Some(s) = v.as_str() {
        return Ok(s.to_owned());
    }
    match v.kind() {
        ValueKind::Bool => Ok(if v.is_true() {
            " ".into()
        } else {
            String::new()
        }),
        _ => match v.as_i64() {
            Some(n) => Ok(" ".repeat(usize::try_from(n).unwrap_or(0))),
            None => Err(invalid(format!(
                "tojson indent must be a number or a string, not {}",
                v.kind()
            ))),
        },
    }
}

fn invalid(what: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, what.into())
}

fn newline(out: &mut String, style: &JsonStyle, level: usize) {
    if let Some(indent) = &style.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    }
}

fn write_json(
    out: &mut String,
    value: &Value,
    style: &JsonStyle,
    level: usize,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&json_number(value)),
        ValueKind::String => {
            write_json_str(out, value.as_str().unwrap_or_default(), style.ensure_ascii)
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline(out, style, level + 1);
                write_json(out, item, style, level + 1)?;
            }
            newline(out, style, level);
            out.push(']');
        }
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                entries.push((json_key(&key)?, key, item));
            }
            if style.sort_keys {
                // Python sorts the original keys; for the string keys templates use that is the
                // code-point order of their text.
                entries.sort_by(|a, b| a.1.cmp(&b.1));
            }
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (key, _, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline(out, style, level + 1);
                write_json_str(out, key, style.ensure_ascii);
                out.push_str(&style.key_sep);
                write_json(out, item, style, level + 1)?;
            }
            newline(out, style, level);
            out.push('}');
        }
        kind => {
            return Err(invalid(format!(
                "object of type {kind} is not JSON serializable"
            )));
        }
    }
    Ok(())
}

/// JSON numbers as Python writes them; `NaN` and `Infinity` are what `json.dumps` emits by default.
fn json_number(value: &Value) -> String {
    if !value.is_integer()
        && let Ok(f) = f64::try_from(value.clone())
    {
        if f.is_nan() {
            return "NaN".into();
        }
        if f.is_infinite() {
            return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
        }
        return float_repr(f);
    }
    value.to_string()
}

/// Python turns string, number, bool and None keys into text; anything else is a TypeError.
fn json_key(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_owned()),
        ValueKind::Number => Ok(json_number(key)),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.into()),
        ValueKind::None => Ok("null".into()),
        kind => Err(invalid(format!(
            "keys must be str, int, float, bool or None, not {kind}"
        ))),
    }
}

/// Python's string encoder: `\"`, `\\`, the five short escapes, `\u00XX` for other control
/// characters, and with `ensure_ascii` every non-ASCII character as `\uXXXX` (UTF-16 pairs).
fn write_json_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 || (ensure_ascii && u32::from(c) > 0x7e) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_like_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e16, "1.5e+16"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (123456789.125, "123456789.125"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (5e-324, "5e-324"),
            (1e100, "1e+100"),
            // Two 17-digit candidates are equally close; Python rounds half to even.
            (6_435_531_714_575_641.0 / 4.0, "1608882928643910.2"),
        ];
        for (f, want) in cases {
            assert_eq!(float_repr(f), want, "{f:e}");
        }
    }

    #[test]
    fn strings_repr_like_python() {
        assert_eq!(py_repr(&Value::from("it's")), "\"it's\"");
        assert_eq!(py_repr(&Value::from("a'b\"c")), "'a\\'b\"c'");
        assert_eq!(
            py_repr(&Value::from("x\ny\u{7}\u{3000}é🙂")),
            "'x\\ny\\x07\\u3000é🙂'"
        );
    }

    #[test]
    fn ascii_json_uses_surrogate_pairs() {
        let mut out = String::new();
        write_json_str(&mut out, "é🙂\u{1}\u{7f}", true);
        assert_eq!(out, "\"\\u00e9\\ud83d\\ude42\\u0001\\u007f\"");
    }
}
