CREATE TABLE IF NOT EXISTS lake.c WITH (format='PARQUET', external_location='s3://b/c/', partitioned_by=ARRAY['y'], write_compression='ZSTD') AS SELECT 1 AS x, 2 AS y
