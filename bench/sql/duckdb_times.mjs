// bench/sql/duckdb_times.mjs -- the peer of bench/sql_bench.sh: DuckDB
// (@duckdb/node-api, an in-memory database) with a fixed thread count,
// reading the benchmark's files directly.
//
// Usage: node duckdb_times.mjs THREADS
// Reads one SQL statement per line on stdin and answers each with one line,
// "seconds rows cpu-seconds first-row-as-JSON" (or "error message"), timed
// around runAndReadAll only, so neither Node.js's start nor the pipe is
// counted; cpu-seconds is the process's user + system time over the same
// span (all of DuckDB's threads).
// At the end of input prints "hwm_kb N": the peak resident set of this
// process (VmHWM), read the same way as tarn's.
import { DuckDBInstance } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const threads = process.argv[2];
const inst = await DuckDBInstance.create(':memory:', { threads: String(threads) });
const con = await inst.connect();
const plain = (k, v) => (typeof v === 'bigint' ? Number(v) : v);
for await (const q of createInterface({ input: process.stdin })) {
  if (q.trim() === '') continue;
  try {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await con.runAndReadAll(q);
    const rows = r.getRows();
    const t1 = performance.now();
    const c = process.cpuUsage(c0);
    const first = rows.length ? JSON.stringify(rows[0].map(String), plain) : '[]';
    const cpu = ((c.user + c.system) / 1e6).toFixed(4);
    process.stdout.write(`${((t1 - t0) / 1000).toFixed(4)} ${rows.length} ${cpu} ${first}\n`);
  } catch (e) {
    process.stdout.write(`error ${String(e.message).replace(/\s+/g, ' ')}\n`);
  }
}
const hwm = readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/);
process.stdout.write(`hwm_kb ${hwm ? hwm[1] : 0}\n`);
