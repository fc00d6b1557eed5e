-- Global search, newest first, at a million rows: the GIN index also holds each row's block,
-- its id divided by 65,536, as the lexeme `#wN` (no token can be one: tokens are letters and
-- digits). A lookup can then be held to the newest blocks inside the index, instead of
-- reading every match back from the table to put them in order (see store/search.rs and
-- decision 022). The index is over an expression, so the rows themselves do not change.
DROP INDEX IF EXISTS search_rows_tokens;
CREATE INDEX search_rows_tokens ON search_rows
    USING GIN ((tokens || ('#w' || (id >> 16)::text)::tsvector));
