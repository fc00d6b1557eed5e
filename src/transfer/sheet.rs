//! Reading an uploaded file: CSV in UTF-8 (with or without a byte order mark) or GBK/GB18030
//! as Chinese Excel and WPS save it, or the first (or a chosen) sheet of an XLSX workbook.
//! Rows come out as text cells, whatever the file held.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

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

/// A file's rows, decoded as they are read.
pub enum Sheet {
    /// A CSV file, parsed a row at a time from where it lies (its bytes never become one text).
    Csv {
        source: CsvSource,
        encoding: Encoding,
    },
    Xlsx(calamine::Range<Data>),
}

/// Where a CSV file's bytes are: uploaded (in memory) or on disk (the command line), read in
/// small pieces so a million rows take no more memory than one.
pub enum CsvSource {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// How a CSV file's text is encoded: UTF-8, or GB18030 (which GBK is a subset of) as Chinese
/// Excel and WPS save it. Both keep ASCII as it is, so the CSV structure (commas, quotes, line
/// ends) is found in the bytes and only the cells are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Gb18030,
}

/// The bytes looked at to tell a file's encoding.
const SNIFF_BYTES: usize = 1 << 20;

impl Encoding {
    /// UTF-8 when the bytes are (a sequence cut at the end of a sample counts as UTF-8).
    fn of(sample: &[u8]) -> Encoding {
        match std::str::from_utf8(sample) {
            Ok(_) => Encoding::Utf8,
            Err(e) if e.error_len().is_none() => Encoding::Utf8,
            Err(_) => Encoding::Gb18030,
        }
    }

    /// A cell's text. A cell that is not UTF-8 in a file that began as UTF-8 is read as
    /// GB18030, so a file assembled from two sources still imports.
    fn decode(self, bytes: &[u8]) -> String {
        match (self, std::str::from_utf8(bytes)) {
            (Encoding::Utf8, Ok(text)) => text.to_owned(),
            _ => encoding_rs::GB18030
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl CsvSource {
    /// What a failed read of the source means: a file named wrongly, or (bytes in memory
    /// cannot fail to read) a fault of ours.
    fn error(&self, e: std::io::Error) -> Error {
        match self {
            CsvSource::File(path) => unreadable(path, e),
            CsvSource::Bytes(_) => Error::internal(e.to_string()),
        }
    }

    /// The bytes after a byte order mark, if any.
    fn open(&self) -> std::io::Result<Box<dyn Read + Send + '_>> {
        match self {
            CsvSource::Bytes(bytes) => Ok(Box::new(bytes.strip_prefix(BOM).unwrap_or(bytes))),
            CsvSource::File(path) => {
                let mut file = std::fs::File::open(path)?;
                let mut head = [0u8; 3];
                let read = read_up_to(&mut file, &mut head)?;
                if head[..read] != *BOM {
                    file.seek(SeekFrom::Start(0))?;
                }
                Ok(Box::new(file))
            }
        }
    }

    fn encoding(&self) -> std::io::Result<Encoding> {
        match self {
            CsvSource::Bytes(bytes) => Ok(Encoding::of(bytes.strip_prefix(BOM).unwrap_or(bytes))),
            CsvSource::File(_) => {
                let mut sample = Vec::with_capacity(SNIFF_BYTES);
                self.open()?
                    .take(SNIFF_BYTES as u64)
                    .read_to_end(&mut sample)?;
                Ok(Encoding::of(&sample))
            }
        }
    }
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// A file that could not be read, named for the person importing it.
pub fn unreadable(path: &std::path::Path, e: std::io::Error) -> Error {
    Error::bad_request(format!("cannot read {}: {e}", path.display()))
}

impl Sheet {
    pub fn read(kind: FileKind, bytes: &[u8], sheet: Option<&str>) -> Result<Sheet> {
        Sheet::read_owned(kind, bytes.to_vec(), sheet)
    }

    /// A CSV file on disk, read as its rows are wanted.
    pub fn csv_file(path: PathBuf) -> Result<Sheet> {
        let source = CsvSource::File(path);
        let encoding = source.encoding().map_err(|e| source.error(e))?;
        Ok(Sheet::Csv { source, encoding })
    }

    /// [`Sheet::read`], taking the bytes.
    pub fn read_owned(kind: FileKind, bytes: Vec<u8>, sheet: Option<&str>) -> Result<Sheet> {
        match kind {
            FileKind::Csv => {
                let source = CsvSource::Bytes(bytes);
                let encoding = source.encoding().map_err(|e| source.error(e))?;
                Ok(Sheet::Csv { source, encoding })
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
            Sheet::Csv { source, encoding } => {
                let input = match source.open() {
                    Ok(input) => input,
                    Err(e) => return Box::new(std::iter::once(Err(source.error(e)))),
                };
                let encoding = *encoding;
                let reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(input);
                Box::new(reader.into_byte_records().map(move |r| {
                    r.map(|record| record.iter().map(|cell| encoding.decode(cell)).collect())
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

    fn cells(sheet: &Sheet) -> Vec<Vec<String>> {
        sheet.rows().map(|r| r.expect("a readable row")).collect()
    }

    #[test]
    fn texts_are_decoded_whatever_excel_saved() {
        let read = |bytes: &[u8]| cells(&Sheet::read(FileKind::Csv, bytes, None).expect("read"));
        let want = vec![vec!["名称".to_owned(), "a".to_owned()]];
        assert_eq!(read("\u{FEFF}名称,a".as_bytes()), want);
        assert_eq!(read("名称,a".as_bytes()), want);
        let (gbk, _, _) = encoding_rs::GBK.encode("客户名称,金额");
        assert_eq!(
            read(&gbk),
            vec![vec!["客户名称".to_owned(), "金额".to_owned()]]
        );
    }

    #[test]
    fn a_file_on_disk_is_read_a_row_at_a_time() {
        let dir = std::env::temp_dir().join(format!("tessera-sheet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        // A GBK file; a UTF-8 file with a BOM whose last cell was pasted from a GBK one.
        let gbk_path = dir.join("gbk.csv");
        let (gbk, _, _) = encoding_rs::GBK.encode("客户名称,金额\n华东贸易,\"1,200\"\n");
        std::fs::write(&gbk_path, &gbk).expect("write");
        let sheet = Sheet::csv_file(gbk_path).expect("a sheet");
        assert_eq!(
            cells(&sheet),
            vec![
                vec!["客户名称".to_owned(), "金额".to_owned()],
                vec!["华东贸易".to_owned(), "1,200".to_owned()],
            ]
        );
        // More UTF-8 than the encoding is told from, then one GBK cell.
        let mixed_path = dir.join("mixed.csv");
        let mut mixed = b"\xEF\xBB\xBF".to_vec();
        mixed.extend_from_slice("名称\n".as_bytes());
        while mixed.len() <= SNIFF_BYTES {
            mixed.extend_from_slice("华南\n".as_bytes());
        }
        mixed.extend_from_slice(&encoding_rs::GBK.encode("深圳").0);
        std::fs::write(&mixed_path, &mixed).expect("write");
        let rows = cells(&Sheet::csv_file(mixed_path).expect("a sheet"));
        assert_eq!(rows[0], vec!["名称".to_owned()]);
        assert_eq!(rows[1], vec!["华南".to_owned()]);
        assert_eq!(rows.last(), Some(&vec!["深圳".to_owned()]));
        let missing = Sheet::csv_file(dir.join("missing.csv"));
        assert!(missing.is_err_and(|e| e.to_string().contains("cannot read")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
