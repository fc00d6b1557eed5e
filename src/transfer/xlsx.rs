//! A streaming XLSX writer: one sheet of text cells, written row by row into a zip stream so a
//! million-row export never holds the sheet in memory. Cells are inline strings: exact text,
//! never a formula, and no shared-string table to keep.
//!
//! Why not a spreadsheet library: see `docs/decisions/013-import-export.md`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// Bytes written so far and not yet taken: the writer's output, handed on in chunks.
#[derive(Clone, Default)]
pub struct Chunks(Arc<Mutex<Vec<u8>>>);

impl Chunks {
    /// What has been written since the last call.
    pub fn take(&self) -> Vec<u8> {
        match self.0.lock() {
            Ok(mut buf) => std::mem::take(&mut *buf),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut buf) => buf.extend_from_slice(data),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(data),
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#;

const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;

const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#;

const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs></styleSheet>"#;

/// A workbook being written: the package parts first, then the sheet's rows as they come.
pub struct SheetWriter {
    zip: ZipWriter<zip::write::StreamWriter<Chunks>>,
    out: Chunks,
    row: String,
}

fn io(e: zip::result::ZipError) -> std::io::Error {
    std::io::Error::other(e)
}

impl SheetWriter {
    /// Starts a workbook with one sheet named `sheet` (cut to Excel's 31 characters).
    pub fn start(sheet: &str) -> std::io::Result<SheetWriter> {
        let out = Chunks::default();
        let mut zip = ZipWriter::new_stream(out.clone());
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(1));
        let name: String = sheet
            .chars()
            .filter(|c| !matches!(c, '[' | ']' | ':' | '*' | '?' | '/' | '\\'))
            .take(31)
            .collect();
        let name = if name.trim().is_empty() {
            "Sheet1".to_owned()
        } else {
            name
        };
        let workbook = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{}" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
            escape(&name)
        );
        for (path, body) in [
            ("[Content_Types].xml", CONTENT_TYPES),
            ("_rels/.rels", ROOT_RELS),
            ("xl/workbook.xml", workbook.as_str()),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
            ("xl/styles.xml", STYLES),
        ] {
            zip.start_file(path, options).map_err(io)?;
            zip.write_all(body.as_bytes())?;
        }
        zip.start_file("xl/worksheets/sheet1.xml", options)
            .map_err(io)?;
        zip.write_all(
            br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
        )?;
        Ok(SheetWriter {
            zip,
            out,
            row: String::new(),
        })
    }

    /// Appends a row of text cells (`bold` for a header row).
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S], bold: bool) -> std::io::Result<()> {
        self.row.clear();
        self.row.push_str("<row>");
        for cell in cells {
            let text = cell.as_ref();
            if text.is_empty() {
                self.row.push_str("<c/>");
                continue;
            }
            self.row.push_str(if bold {
                r#"<c t="inlineStr" s="1"><is><t xml:space="preserve">"#
            } else {
                r#"<c t="inlineStr"><is><t xml:space="preserve">"#
            });
            escape_into(&mut self.row, text);
            self.row.push_str("</t></is></c>");
        }
        self.row.push_str("</row>");
        self.zip.write_all(self.row.as_bytes())
    }

    /// The bytes written since the last call.
    pub fn take(&self) -> Vec<u8> {
        self.out.take()
    }

    /// Closes the sheet and the package; returns the last bytes.
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        self.zip.write_all(b"</sheetData></worksheet>")?;
        self.zip.finish().map_err(io)?;
        Ok(self.out.take())
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// XML text escaping; characters XML 1.0 cannot hold (most control characters) are dropped.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// A whole workbook in memory (tests and small files).
pub fn workbook<S: AsRef<str>>(sheet: &str, rows: &[Vec<S>]) -> std::io::Result<Vec<u8>> {
    let mut writer = SheetWriter::start(sheet)?;
    let mut bytes = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        writer.row(row, i == 0)?;
        bytes.extend(writer.take());
    }
    bytes.extend(writer.finish()?);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Data, Reader, Xlsx};

    #[test]
    fn a_written_workbook_reads_back() {
        let rows = vec![
            vec!["名称", "Amount", "Note"],
            vec!["上海 & <华东>", "1234.50", ""],
            vec!["'=1+2", "-5", "line\nbreak"],
        ];
        let bytes = workbook("客户", &rows).unwrap();
        let mut book: Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(book.sheet_names(), vec!["客户".to_owned()]);
        let range = book.worksheet_range("客户").unwrap();
        let read: Vec<Vec<String>> = range
            .rows()
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        Data::Empty => String::new(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(read[0], vec!["名称", "Amount", "Note"]);
        assert_eq!(read[1][0], "上海 & <华东>");
        assert_eq!(read[2], vec!["'=1+2", "-5", "line\nbreak"]);
    }
}
