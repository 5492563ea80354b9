-- The data set of the backup benchmark: an Immich-like library generated inside
-- PostgreSQL. 300,000 asset rows (paths, file names, uuids, timestamps, checksums)
-- and 100,000 CLIP embeddings of 512 dimensions, as Immich's smart search keeps
-- them: random unit vectors, which compress no better than real ones. The HNSW
-- index of smart search is left out: it is not in a dump, and its rebuild would
-- weigh the same in every restore measured. `psql -v assets=N` makes another size
-- (a third as many embeddings).
\set ON_ERROR_STOP on
\if :{?assets}
\else
    \set assets 300000
\endif
SELECT :assets / 3 AS embeddings \gset
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE "user" (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email varchar NOT NULL UNIQUE,
    name varchar NOT NULL,
    "storageLabel" varchar,
    "createdAt" timestamptz NOT NULL DEFAULT now()
);
INSERT INTO "user" (email, name, "storageLabel")
SELECT 'user' || n || '@example.org', 'User ' || n, CASE WHEN n = 1 THEN 'admin' END
FROM generate_series(1, 5) n;

CREATE TABLE asset (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "deviceAssetId" varchar NOT NULL,
    "ownerId" uuid NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    "deviceId" varchar NOT NULL,
    type varchar NOT NULL,
    "originalPath" varchar NOT NULL,
    "fileCreatedAt" timestamptz NOT NULL,
    "fileModifiedAt" timestamptz NOT NULL,
    "isFavorite" boolean NOT NULL DEFAULT false,
    duration varchar,
    "encodedVideoPath" varchar DEFAULT '',
    checksum bytea NOT NULL,
    "livePhotoVideoId" uuid,
    "updatedAt" timestamptz NOT NULL DEFAULT now(),
    "createdAt" timestamptz NOT NULL DEFAULT now(),
    "originalFileName" varchar NOT NULL,
    "sidecarPath" varchar,
    thumbhash bytea,
    "isOffline" boolean NOT NULL DEFAULT false,
    "libraryId" uuid,
    "isExternal" boolean NOT NULL DEFAULT false,
    "deletedAt" timestamptz,
    "localDateTime" timestamptz NOT NULL,
    "stackId" uuid,
    "duplicateId" uuid,
    status varchar NOT NULL DEFAULT 'active',
    "updateId" uuid NOT NULL DEFAULT gen_random_uuid(),
    visibility varchar NOT NULL DEFAULT 'timeline'
);

-- One random draw per row, used by several columns.
INSERT INTO asset ("deviceAssetId", "ownerId", "deviceId", type, "originalPath",
    "fileCreatedAt", "fileModifiedAt", "isFavorite", duration, "encodedVideoPath",
    checksum, "livePhotoVideoId", "updatedAt", "createdAt", "originalFileName",
    "sidecarPath", thumbhash, "localDateTime", "duplicateId")
SELECT
    name || '-' || size,
    owner,
    'WEB',
    CASE WHEN video THEN 'VIDEO' ELSE 'IMAGE' END,
    'upload/library/' || owner || '/' || to_char(taken, 'YYYY/YYYY-MM-DD') || '/' || name,
    taken,
    taken + interval '2 seconds',
    r < 0.03,
    CASE WHEN video THEN '0:00:' || to_char(r * 59, 'FM00.000') || '000' ELSE '0:00:00.00000' END,
    CASE WHEN video THEN 'upload/encoded-video/' || owner || '/' || substr(md5(name), 1, 2) || '/' || gen_random_uuid() || '.mp4' ELSE '' END,
    substr(sha256(name::bytea || size::text::bytea), 1, 20),
    CASE WHEN r > 0.97 THEN gen_random_uuid() END,
    taken + interval '1 day',
    taken + interval '1 day',
    name,
    CASE WHEN r < 0.1 THEN 'upload/library/' || owner || '/' || name || '.xmp' END,
    substr(sha512(size::text::bytea), 1, 25),
    taken + interval '2 hours',
    CASE WHEN r < 0.01 THEN gen_random_uuid() END
FROM (
    SELECT
        n,
        (SELECT array_agg(id ORDER BY email) FROM "user")[1 + (n % 5)] AS owner,
        timestamptz '2014-01-01' + random() * interval '11 years' AS taken,
        random() AS r,
        random() < 0.1 AS video,
        (random() * 8e6)::int AS size,
        (CASE WHEN n % 3 = 0 THEN 'PXL_' ELSE 'IMG_' END)
            || to_char(n, 'FM00000000') || (CASE WHEN n % 10 = 0 THEN '.mp4' ELSE '.jpg' END) AS name
    FROM generate_series(1, :assets) n
) draw;

CREATE UNIQUE INDEX "UQ_assets_owner_checksum" ON asset ("ownerId", checksum);
CREATE INDEX "IDX_asset_fileCreatedAt" ON asset ("fileCreatedAt");
CREATE INDEX "IDX_asset_localDateTime" ON asset ("localDateTime");
CREATE INDEX "IDX_asset_duplicateId" ON asset ("duplicateId");

CREATE TABLE smart_search (
    "assetId" uuid PRIMARY KEY REFERENCES asset (id) ON DELETE CASCADE,
    embedding vector(512) NOT NULL
);

-- Each vector draws its own 512 values (the inner query refers to the row).
INSERT INTO smart_search ("assetId", embedding)
SELECT id, l2_normalize(ARRAY(SELECT random() - 0.5 + 0 * k FROM generate_series(1, 512))::vector)
FROM (SELECT id, row_number() OVER () AS k FROM asset LIMIT :embeddings) a;

ANALYZE;
