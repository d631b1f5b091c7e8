"""Ordered schema migrations. Append new ones; never edit one that has shipped.

Each migration runs once, in its own transaction, and is recorded in `schema_migrations`, so a file made by an
older version of the app opens and upgrades in place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


_INITIAL = """
CREATE SEQUENCE dataset_ids START 1;
CREATE TABLE datasets (
    id INTEGER PRIMARY KEY DEFAULT nextval('dataset_ids'),
    name VARCHAR NOT NULL UNIQUE,
    label VARCHAR NOT NULL DEFAULT '',
    source_kind VARCHAR NOT NULL,               -- local | s3 | none (seed CSV without images)
    source_uri VARCHAR NOT NULL DEFAULT '',     -- folder path or s3://bucket/prefix
    source_options JSON,                        -- profile, region, endpoint_url: never credentials
    list_file VARCHAR,                          -- the CSV the names came from, if any
    duplicates INTEGER NOT NULL DEFAULT 0,      -- extra occurrences of a name in the last list, kept once
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE SEQUENCE image_ids START 1;
CREATE TABLE images (
    id BIGINT PRIMARY KEY DEFAULT nextval('image_ids'),
    dataset_id INTEGER NOT NULL,
    name VARCHAR NOT NULL,                      -- as listed (rejected names are stored escaped)
    location VARCHAR,                           -- path under the folder or key under the prefix; NULL unless found
    status VARCHAR NOT NULL,                    -- found | missing | ambiguous | rejected | unlinked
    detail VARCHAR,                             -- why rejected, or the ambiguous candidates
    size_bytes BIGINT,
    format VARCHAR,
    width INTEGER,
    height INTEGER,
    UNIQUE (dataset_id, name)
);

CREATE SEQUENCE run_ids START 1;
CREATE TABLE runs (
    id INTEGER PRIMARY KEY DEFAULT nextval('run_ids'),
    kind VARCHAR NOT NULL,                      -- fused | describe | categorize | two-pass | mirror | import
    dataset_ids INTEGER[] NOT NULL,
    settings JSON,                              -- public settings only, never secrets
    status VARCHAR NOT NULL,                    -- running | paused | cancelled | completed | failed | interrupted
    message VARCHAR,
    simulated BOOLEAN NOT NULL DEFAULT false,
    total BIGINT NOT NULL DEFAULT 0,
    done BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    requests BIGINT NOT NULL DEFAULT 0,
    tokens_in BIGINT NOT NULL DEFAULT 0,
    tokens_out BIGINT NOT NULL DEFAULT 0,
    tokens_thinking BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE NOT NULL DEFAULT 0,
    started_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    finished_at TIMESTAMP
);

CREATE SEQUENCE annotation_ids START 1;
CREATE TABLE annotations (
    id BIGINT PRIMARY KEY DEFAULT nextval('annotation_ids'),
    image_id BIGINT NOT NULL,
    run_id INTEGER,
    kind VARCHAR NOT NULL,                      -- fused | describe | categorize | import
    model VARCHAR NOT NULL,
    prompt_version VARCHAR NOT NULL,
    category_list_version INTEGER,
    description JSON,                           -- the structured description (or {"summary": text})
    summary VARCHAR,
    categories VARCHAR[],                       -- NULL when not categorized yet
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    tokens_thinking INTEGER NOT NULL DEFAULT 0,
    cost_usd DOUBLE NOT NULL DEFAULT 0,
    simulated BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE SEQUENCE failure_ids START 1;
CREATE TABLE failures (
    id BIGINT PRIMARY KEY DEFAULT nextval('failure_ids'),
    image_id BIGINT NOT NULL,
    run_id INTEGER,
    stage VARCHAR NOT NULL,                     -- read | prepare | model | parse | categorize | mirror
    kind VARCHAR NOT NULL,                      -- short reason used for grouping (safety, max_tokens, ...)
    message VARCHAR NOT NULL,
    resolved BOOLEAN NOT NULL DEFAULT false,    -- set when a later attempt succeeds
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE human_labels (
    image_id BIGINT PRIMARY KEY,
    description JSON,                           -- NULL: the reviewer kept the model's description
    summary VARCHAR,
    categories VARCHAR[],                       -- NULL: the reviewer kept the model's categories
    reviewed BOOLEAN NOT NULL DEFAULT false,
    reviewer VARCHAR,
    version INTEGER NOT NULL DEFAULT 1,         -- optimistic concurrency: a save names the version it read
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE SEQUENCE edit_ids START 1;
CREATE TABLE edit_log (
    id BIGINT PRIMARY KEY DEFAULT nextval('edit_ids'),
    image_id BIGINT NOT NULL,
    reviewer VARCHAR,
    field VARCHAR NOT NULL,
    before JSON,
    after JSON,
    undone BOOLEAN NOT NULL DEFAULT false,
    edited_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE categories (
    name VARCHAR PRIMARY KEY,
    definition VARCHAR NOT NULL DEFAULT '',
    active BOOLEAN NOT NULL DEFAULT true,
    position INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE category_versions (
    version INTEGER PRIMARY KEY,
    note VARCHAR NOT NULL DEFAULT '',
    categories JSON NOT NULL,                   -- [{name, definition, active}] as of this version
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The latest model annotation of each image: every annotation row is a full snapshot.
CREATE VIEW current_annotations AS
    SELECT * FROM annotations WHERE id IN (SELECT max(id) FROM annotations GROUP BY image_id);

-- Effective label: the human's value where one was set, else the latest model annotation.
CREATE VIEW effective_labels AS
    SELECT i.id AS image_id, i.dataset_id, i.name,
           coalesce(h.description, a.description) AS description,
           coalesce(h.summary, a.summary) AS summary,
           coalesce(h.categories, a.categories) AS categories,
           a.categories AS model_categories,
           h.categories AS human_categories,
           coalesce(h.reviewed, false) AS reviewed,
           h.reviewer
    FROM images i
    LEFT JOIN current_annotations a ON a.image_id = i.id
    LEFT JOIN human_labels h ON h.image_id = i.id;
"""

# Issue 4: what a mirror of S3 objects to a local folder has finished, so a stopped run resumes.
_MIRROR_ITEMS = """
CREATE TABLE mirror_items (
    output_dir VARCHAR NOT NULL,                -- absolute path of the mirror's folder
    path VARCHAR NOT NULL,                      -- file path under output_dir (the key relative to the prefix)
    source_uri VARCHAR NOT NULL,                -- s3://bucket/prefix the object was fetched from
    size_bytes BIGINT,
    etag VARCHAR,                               -- the object's ETag when fetched: a changed object is fetched again
    status VARCHAR NOT NULL,                    -- done | failed
    error VARCHAR,
    run_id INTEGER,
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (output_dir, path)
);
"""

# Issue 5: the version each human edit produced, so a refused stale save can say what the other reviewer changed;
# and the gallery's search text, derived from annotations (`sync_review_text`; readers call `sync_derived`).
_EDIT_VERSIONS = """
ALTER TABLE edit_log ADD COLUMN version INTEGER;
CREATE TABLE review_text (                      -- the latest annotation of each image; rebuilt at will
    image_id BIGINT NOT NULL,
    annotation_id BIGINT NOT NULL,
    words VARCHAR                               -- lower-cased summary and description values, for LIKE search
);
CREATE TABLE review_text_marks (                -- what review_text has seen (one row; none: rebuild)
    last_annotation_id BIGINT NOT NULL,
    annotations_seen BIGINT NOT NULL            -- annotations with id <= last_annotation_id
);
"""

# Issue 6: derived state behind fast category distributions and exports, kept in step by
# labeling/store/analytics.py (rebuilt from annotations and human_labels whenever it cannot be updated in place).
_LABEL_TALLY = """
CREATE TABLE label_state (                      -- one row per image with an annotation or a human label
    image_id BIGINT NOT NULL,
    dataset_id INTEGER NOT NULL,
    annotation_id BIGINT,                       -- the latest annotation (NULL: none)
    model_categories VARCHAR[],                 -- its categories, read through the category aliases
    has_human BOOLEAN NOT NULL,                 -- a human_labels row exists
    human_categories VARCHAR[],                 -- human_labels.categories as stored
    reviewed BOOLEAN NOT NULL
);
CREATE TABLE label_tally (                      -- label_state counted per distinct combination
    dataset_id INTEGER NOT NULL,
    model_categories VARCHAR[],
    human_categories VARCHAR[],
    reviewed BOOLEAN NOT NULL,
    images BIGINT NOT NULL
);
CREATE TABLE label_tally_marks (                -- what the state has seen (one row; none: rebuild)
    last_annotation_id BIGINT NOT NULL,
    annotations_seen BIGINT NOT NULL,           -- annotations with id <= last_annotation_id
    human_rows BIGINT NOT NULL,
    human_hash HUGEINT NOT NULL,                -- sum(hash(image_id, categories, reviewed)) over human_labels
    aliases_hash HUGEINT NOT NULL               -- the same over category_aliases (migration 7): a change rebuilds
);
"""

# Issue 7: renames and merges of categories, applied when model categories are read (model history is never
# rewritten). An alias maps a name to the one it became at `since_version`, for annotations categorized against an
# earlier list version (NULL = unknown list, e.g. a seed import, counts as earlier); of several aliases of one name
# the earliest one still ahead of the annotation's version applies. Chains are collapsed when written.
# `category_alias_map()` and `resolve_category_aliases(categories, list_version, alias_map)` let any query read
# model categories as the view does: `... FROM annotations a, (SELECT category_alias_map() AS alias_map) m`.
_CATEGORY_ALIASES = """
CREATE TABLE category_aliases (
    old_name VARCHAR NOT NULL,
    new_name VARCHAR NOT NULL,
    since_version INTEGER NOT NULL,             -- the list version the rename or merge made
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (old_name, since_version)
);

CREATE MACRO category_alias_map() AS (
    SELECT map_from_entries(coalesce(list({k: old_name, v: targets}), []))
    FROM (SELECT old_name, list({since: since_version, name: new_name} ORDER BY since_version) AS targets
          FROM category_aliases GROUP BY old_name)
);

-- Each name through its alias, then duplicates dropped keeping the first place (a merge can make two equal).
CREATE MACRO resolve_category_aliases(cats, list_version, alias_map) AS (
    CASE WHEN cats IS NULL OR cardinality(alias_map) = 0 THEN cats ELSE list_filter(
        list_transform(cats, lambda c: coalesce(
            list_filter(alias_map[c], lambda t: t.since > coalesce(list_version, 0))[1].name, c)),
        lambda x, i: list_position(list_transform(cats, lambda c: coalesce(
            list_filter(alias_map[c], lambda t: t.since > coalesce(list_version, 0))[1].name, c)), x) = i)
    END
);

-- The latest model annotation of each image, categories read through the aliases (as stored: stored_categories).
CREATE OR REPLACE VIEW current_annotations AS
    SELECT a.* REPLACE (resolve_category_aliases(a.categories, a.category_list_version, m.alias_map) AS categories),
           a.categories AS stored_categories
    FROM annotations a, (SELECT category_alias_map() AS alias_map) m
    WHERE a.id IN (SELECT max(id) FROM annotations GROUP BY image_id);
"""

_IMAGE_FACTS = """
CREATE TABLE image_facts (                      -- per-image technical facts, one row per image (the scan pass)
    image_id BIGINT PRIMARY KEY,
    facts_version VARCHAR NOT NULL,             -- the scan that computed the row: a newer one recomputes it
    format VARCHAR,                             -- Pillow's name: JPEG, PNG, WEBP, ...
    size_bytes BIGINT,
    width INTEGER,                              -- as a viewer shows it (after EXIF orientation)
    height INTEGER,
    mode VARCHAR,                               -- RGB, RGBA, L, P, CMYK, I;16, ...
    frames INTEGER,
    orientation INTEGER,
    exif_make VARCHAR,
    exif_model VARCHAR,
    exif_software VARCHAR,
    text_keys VARCHAR[],                        -- PNG text chunks, JPEG comment, ...: their keys
    details JSON,                               -- what later analyses add before they earn a column
    error VARCHAR,                              -- why the file gave no facts (unreadable, not an image)
    computed_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""

# The technical-bias audit's facts: the table is only ever a cache of the files (a new FACTS_VERSION rescans
# every image), so it is rebuilt rather than altered column by column.
_AUDIT_FACTS = """
DROP TABLE image_facts;
CREATE TABLE image_facts (                      -- per-image technical facts, one row per image (the scan pass)
    image_id BIGINT PRIMARY KEY,
    facts_version VARCHAR NOT NULL,             -- the scan that computed the row: a newer one recomputes it
    -- file
    format VARCHAR,                             -- Pillow's name: JPEG, PNG, WEBP, ...
    size_bytes BIGINT,
    width INTEGER,                              -- as a viewer shows it (after EXIF orientation)
    height INTEGER,
    aspect DOUBLE,                              -- width / height
    bytes_per_pixel DOUBLE,                     -- size_bytes / (width * height)
    mode VARCHAR,                               -- RGB, RGBA, L, P, CMYK, I;16, ...
    bit_depth INTEGER,                          -- bits per channel: 8, 16, 1 (bilevel)
    frames INTEGER,
    orientation INTEGER,
    -- JPEG (NULL for other formats)
    jpeg_quality INTEGER,                       -- IJG quality whose luminance table is nearest (exact when standard)
    jpeg_table VARCHAR,                         -- standard (an IJG table at jpeg_quality) | custom
    jpeg_subsampling VARCHAR,                   -- 4:4:4 | 4:2:2 | 4:2:0 | 4:1:1 | 4:4:0 | gray | other
    jpeg_progressive BOOLEAN,
    jpeg_tables INTEGER,                        -- number of quantization tables
    -- metadata
    exif BOOLEAN,
    exif_make VARCHAR,
    exif_model VARCHAR,
    exif_software VARCHAR,
    exif_datetime_original VARCHAR,
    exif_gps BOOLEAN,
    icc BOOLEAN,
    icc_description VARCHAR,
    xmp BOOLEAN,
    text_keys VARCHAR[],                        -- PNG text chunks, JPEG comment, EXIF UserComment: their keys
    generator VARCHAR,                          -- who the text metadata says made it: SD WebUI, ComfyUI, ...
    -- provenance
    c2pa BOOLEAN,                               -- a C2PA manifest store is embedded (PNG caBX, JPEG APP11, WebP C2PA)
    c2pa_generator VARCHAR,                     -- the active manifest's claim generator, read with c2pa-python
    -- pixels, from a small decode (longest side 256)
    luma_mean DOUBLE,                           -- 0..255
    luma_std DOUBLE,
    clip_high DOUBLE,                           -- share of pixels with luma >= 250
    clip_low DOUBLE,                            -- share of pixels with luma <= 5
    saturation_mean DOUBLE,                     -- HSV saturation, 0..1
    sharpness DOUBLE,                           -- variance of the Laplacian of luma
    high_freq DOUBLE,                           -- share of spectral energy above half the Nyquist frequency
    -- hashes
    sha256 VARCHAR,                             -- of the file's bytes, hex
    phash UBIGINT,                              -- imagehash pHash, 64 bits
    dhash UBIGINT,                              -- imagehash dHash, 64 bits
    details JSON,                               -- what later analyses add before they earn a column
    error VARCHAR,                              -- why the file gave no facts (unreadable, not an image)
    computed_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""

# The duplicate groups of the last `labeling duplicates` run over some datasets, so Review can filter by them.
# A run replaces the groups that touch its datasets; `group_id` is the group's smallest image id.
_DUPLICATE_GROUPS = """
CREATE TABLE duplicate_groups (
    image_id BIGINT PRIMARY KEY,
    group_id BIGINT NOT NULL,                   -- the smallest image id in the group
    kind VARCHAR NOT NULL,                      -- exact (one sha256) | near (pHash and dHash within the distance)
    leakage BOOLEAN NOT NULL,                   -- the group spans datasets whose labels differ (REAL and GEN)
    distance INTEGER NOT NULL,                  -- the near_duplicate_distance of the run
    computed_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);
"""

# Gemini Batch Mode: one row per JSONL shard of a run, the state every step resumes from (kill -9 anywhere, then
# run again: an upload continues at the offset the server has, a job is polled, never created twice).
_BATCH_SHARDS = """
CREATE TABLE batch_shards (
    run_id INTEGER NOT NULL,
    shard INTEGER NOT NULL,                     -- 1, 2, ... within the run
    kind VARCHAR NOT NULL,                      -- fused | describe | categorize: one request kind a shard
    path VARCHAR NOT NULL,                      -- the JSONL file on this machine (deleted once recorded)
    bytes BIGINT NOT NULL,
    lines INTEGER NOT NULL,
    image_ids BIGINT[] NOT NULL,                -- the lines' keys
    resubmit_of INTEGER,                        -- the shard whose unanswered lines this one sends again
    attempt INTEGER NOT NULL DEFAULT 1,         -- 1 + how many shards before it carried the same lines
    state VARCHAR NOT NULL,                     -- written | uploading | uploaded | creating | submitted |
                                                -- succeeded | ended | recorded | failed
    upload_url VARCHAR,                         -- the resumable upload session (x-goog-upload-url)
    uploaded_bytes BIGINT NOT NULL DEFAULT 0,   -- the offset the server confirmed
    file_name VARCHAR,                          -- files/... once the upload is final
    batch_name VARCHAR,                         -- batches/... once the job exists
    job_state VARCHAR,                          -- the job's last state as polled (JOB_STATE_...)
    result_file VARCHAR,                        -- files/... of the answers
    done INTEGER NOT NULL DEFAULT 0,            -- lines recorded as annotations
    failed INTEGER NOT NULL DEFAULT 0,          -- lines recorded as failures
    error VARCHAR,
    submitted_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (run_id, shard)
);
"""

# A random name for this database file, minted once: what it puts in the Gemini project (batch job and file
# names) must never be mistaken for another database's, whose run and shard numbers start at 1 too.
_DATABASE_IDENTITY = """
CREATE TABLE database_identity (id VARCHAR NOT NULL);
INSERT INTO database_identity SELECT replace(uuid()::VARCHAR, '-', '');
"""

# A bulk action (a category added to or removed from many images, many marked reviewed) is one entry in the edit
# log and undoes as one: its per-image rows, which keep each image's before value, share a bulk id.
_BULK_EDITS = """
CREATE SEQUENCE bulk_edit_ids START 1;
ALTER TABLE edit_log ADD COLUMN bulk_id BIGINT;             -- NULL: a single edit; else its bulk action
ALTER TABLE edit_log ADD COLUMN bulk_action VARCHAR;        -- what the bulk action did: added category 'cats', ...
"""

# The file a user picked for an ambiguous name (one that matches several files): the import that lists the name
# again finds it there while it is still among the candidates, so a re-import keeps the choice.
_NAME_CHOICES = """
CREATE TABLE name_choices (
    dataset_id INTEGER NOT NULL,
    name VARCHAR NOT NULL,                      -- the listed name (images.name)
    location VARCHAR NOT NULL,                  -- the candidate picked: path under the folder or key under the prefix
    chosen_by VARCHAR NOT NULL DEFAULT '',      -- the reviewer who picked it
    chosen_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (dataset_id, name)
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial data model", _INITIAL),
    Migration(4, "mirror items", _MIRROR_ITEMS),
    Migration(5, "edit log versions, review search text", _EDIT_VERSIONS),
    Migration(6, "label tally", _LABEL_TALLY),
    Migration(7, "category aliases", _CATEGORY_ALIASES),
    Migration(8, "image facts", _IMAGE_FACTS),
    Migration(9, "technical-bias audit facts", _AUDIT_FACTS),
    Migration(10, "duplicate groups", _DUPLICATE_GROUPS),
    Migration(11, "batch shards", _BATCH_SHARDS),
    Migration(12, "database identity", _DATABASE_IDENTITY),
    Migration(13, "bulk edits", _BULK_EDITS),
    Migration(14, "name choices", _NAME_CHOICES),
)
