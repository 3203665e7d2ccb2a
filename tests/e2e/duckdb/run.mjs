// tests/e2e/duckdb/run.mjs -- DuckDB for the end-to-end tests.
//
// Usage: node run.mjs < statements.json
// Reads a JSON array of SQL statements on stdin, runs them in order in one
// in-memory database (working directory: the caller's), and prints one JSON
// document: {"results": [[row, ...], ...]} with each row an array of values
// as text (NULL as null), or {"error": "message", "index": i} for the first
// statement that failed.
import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';

const statements = JSON.parse(readFileSync(0, 'utf8'));
const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
const con = await inst.connect();
const text = (v) => (v === null || v === undefined ? null : String(v));
const results = [];
for (let i = 0; i < statements.length; i++) {
  try {
    const r = await con.runAndReadAll(statements[i]);
    results.push(r.getRows().map((row) => row.map(text)));
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: String(e.message), index: i }));
    process.exit(0);
  }
}
process.stdout.write(JSON.stringify({ results }));
