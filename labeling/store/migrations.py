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

# Issue 5: the version each human edit produced, so a refused stale save can say what the other reviewer changed.
_EDIT_VERSIONS = """
ALTER TABLE edit_log ADD COLUMN version INTEGER;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial data model", _INITIAL),
    Migration(4, "mirror items", _MIRROR_ITEMS),
    Migration(5, "edit log versions", _EDIT_VERSIONS),
)
