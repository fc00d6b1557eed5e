-- An import's refused rows, by themselves. Its report and its error file list them, and the
-- report is read after every run and at every poll of a running one: without this index each
-- read walked every outcome of the import (a million-row import: all million rows, 0.15 s and
-- 45 MB of page cache, to find none). Partial, so the rows that went in cost nothing more.
CREATE INDEX import_rows_failed ON import_rows (import_id, row) WHERE outcome = 'failed';
