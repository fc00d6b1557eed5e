-- The rows of a batch created together (a create-only import writes a batch of a few thousand
-- rows at once) keep one outcome row instead of one each: `row` is the batch's last created
-- row and `created` a JSON array of [row, record id, version], in row order. An outcome row a
-- spreadsheet row took a million times cost as much of the import's writing as a record's
-- history entry. A row created alone keeps its own outcome row, `created` empty.
ALTER TABLE import_rows ADD COLUMN created TEXT;
