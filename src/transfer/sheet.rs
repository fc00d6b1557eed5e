//! Reading an uploaded file: CSV in UTF-8 (with or without a byte order mark) or GBK/GB18030
//! as Chinese Excel and WPS save it, or the first (or a chosen) sheet of an XLSX workbook.
//! Rows come out as text cells, whatever the file held.

use calamine::{Data, Reader, Xlsx};

use crate::error::{Error, Result};
use crate::fields::text_form::{excel_serial_to_datetime, format_float};

/// What kind of file an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Csv,
    Xlsx,
}

impl FileKind {
    /// From the media type, else from the bytes (an XLSX is a zip: `PK\x03\x04`).
    pub fn detect(content_type: Option<&str>, bytes: &[u8]) -> FileKind {
        match content_type {
            Some(t) if t.contains("spreadsheetml") || t.contains("ms-excel") => FileKind::Xlsx,
            _ if bytes.starts_with(b"PK\x03\x04") => FileKind::Xlsx,
            _ => FileKind::Csv,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Csv => "csv",
            FileKind::Xlsx => "xlsx",
        }
    }

    pub fn parse(s: &str) -> FileKind {
        if s == "xlsx" {
            FileKind::Xlsx
        } else {
            FileKind::Csv
        }
    }
}

/// A file's rows, decoded.
pub enum Sheet {
    /// The decoded text; rows are read from it as they are needed.
    Csv(String),
    Xlsx(calamine::Range<Data>),
}

/// The text of a CSV file: UTF-8 (a BOM dropped), else GB18030 (which GBK is a subset of).
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => {
            let (text, _, _) = encoding_rs::GB18030.decode(bytes);
            text.into_owned()
        }
    }
}

impl Sheet {
    pub fn read(kind: FileKind, bytes: &[u8], sheet: Option<&str>) -> Result<Sheet> {
        Sheet::read_owned(kind, bytes.to_vec(), sheet)
    }

    /// [`Sheet::read`], taking the bytes: a UTF-8 file becomes its text without a copy.
    pub fn read_owned(kind: FileKind, mut bytes: Vec<u8>, sheet: Option<&str>) -> Result<Sheet> {
        match kind {
            FileKind::Csv => {
                if bytes.starts_with(b"\xEF\xBB\xBF") {
                    bytes.drain(..3);
                }
                Ok(Sheet::Csv(match String::from_utf8(bytes) {
                    Ok(text) => text,
                    Err(e) => decode_text(e.as_bytes()),
                }))
            }
            FileKind::Xlsx => {
                let bad = |e: calamine::XlsxError| {
                    Error::bad_request(format!("the file is not a readable XLSX workbook: {e}"))
                };
                let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes)).map_err(bad)?;
                let names = book.sheet_names();
                let name = match sheet.filter(|s| !s.is_empty()) {
                    Some(s) => {
                        names
                            .iter()
                            .find(|n| n.as_str() == s)
                            .cloned()
                            .ok_or_else(|| {
                                Error::bad_parameter(
                                    "sheet",
                                    format!(
                                        "the workbook has no sheet '{s}' (it has {})",
                                        names.join(", ")
                                    ),
                                )
                            })?
                    }
                    None => names
                        .first()
                        .cloned()
                        .ok_or_else(|| Error::bad_request("the workbook has no sheet"))?,
                };
                Ok(Sheet::Xlsx(book.worksheet_range(&name).map_err(bad)?))
            }
        }
    }

    /// Every row as text cells, the header first; a CSV row that cannot be read is an error
    /// naming its line.
    pub fn rows(&self) -> Box<dyn Iterator<Item = Result<Vec<String>>> + Send + '_> {
        match self {
            Sheet::Csv(text) => {
                let reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(text.as_bytes());
                Box::new(reader.into_records().map(|r| {
                    r.map(|record| record.iter().map(str::to_owned).collect())
                        .map_err(|e| Error::bad_request(format!("the CSV file is malformed: {e}")))
                }))
            }
            Sheet::Xlsx(range) => Box::new(
                range
                    .rows()
                    .map(|row| Ok(row.iter().map(cell_text).collect())),
            ),
        }
    }
}

/// A workbook cell as text: numbers as people see them, dates from their serials, a formula
/// cell by its computed value (what the workbook shows).
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) => format_float(*f),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => if *b { "true" } else { "false" }.to_owned(),
        Data::DateTime(d) => match excel_serial_to_datetime(d.as_f64(), false) {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.format("%Y-%m-%d").to_string(),
            Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => format_float(d.as_f64()),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_decoded_whatever_excel_saved() {
        assert_eq!(decode_text("\u{FEFF}名称,a".as_bytes()), "名称,a");
        assert_eq!(decode_text("名称,a".as_bytes()), "名称,a");
        let (gbk, _, _) = encoding_rs::GBK.encode("客户名称,金额");
        assert_eq!(decode_text(&gbk), "客户名称,金额");
    }
}
