// tests/e2e/sql/bench/duckdb_times.mjs -- times each query on DuckDB
// (@duckdb/node-api) with a fixed thread count: one line per query,
// "seconds rows". Usage: node duckdb_times.mjs THREADS QUERIES.json
import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';
const threads = process.argv[2];
const queries = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const inst = await DuckDBInstance.create(':memory:', { threads: String(threads) });
const con = await inst.connect();
for (const q of queries) {
  const t0 = performance.now();
  const r = await con.runAndReadAll(q);
  const t1 = performance.now();
  console.log(((t1 - t0) / 1000).toFixed(3), r.getRows().length);
}
