// tests/e2e/lake/read.mjs -- reads Parquet objects from tarn's S3 the way a
// distributed SQL engine's reader does, with a Parquet implementation that
// is not tarn's (hyparquet): for each object, a suffix range GET of the last
// 8 bytes (footer length and the PAR1 magic), a suffix range GET of the
// footer, then ranged GETs of the column chunks the footer points at.
//
// Input (environment): TARN_ENDPOINT, TARN_BUCKET, AWS credentials, and
// TARN_KEYS: a JSON array of object keys. Output (stdout): one JSON line per
// object: {key, size, magic, footerLength, ranges, schema, numRows, rows};
// decimals as exact text at their scale, timestamps and dates as their raw
// integers ("us:<micros>", "ms:<millis>", "d:<days>") so nothing is rounded.
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parquetMetadata, parquetReadObjects } from 'hyparquet'

// the AWS SDK installed for the other JavaScript tests (tests/e2e/js)
const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(path.join(here, '..', 'js', 'package.json'))
const { S3Client, GetObjectCommand, HeadObjectCommand } = require('@aws-sdk/client-s3')

const s3 = new S3Client({
  endpoint: process.env.TARN_ENDPOINT,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  },
})
const Bucket = process.env.TARN_BUCKET

async function get(Key, Range, ranges) {
  const r = await s3.send(new GetObjectCommand({ Bucket, Key, Range }))
  const bytes = await r.Body.transformToByteArray()
  ranges.push({ range: Range, status: r.$metadata.httpStatusCode, contentRange: r.ContentRange,
                length: bytes.length })
  return bytes
}

function text(v, element) {
  if (v === null || v === undefined) return null
  if (element?.converted_type === 'DECIMAL') return v.toFixed(element.scale || 0)
  if (typeof v === 'bigint') return v.toString()
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
  if (Array.isArray(v)) return v.map(x => text(x))
  if (typeof v === 'object') {
    const o = {}
    for (const [k, x] of Object.entries(v)) o[k] = text(x)
    return o
  }
  return v
}

for (const Key of JSON.parse(process.env.TARN_KEYS)) {
  const ranges = []
  const size = (await s3.send(new HeadObjectCommand({ Bucket, Key }))).ContentLength
  const tail = await get(Key, 'bytes=-8', ranges)
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength)
  const footerLength = view.getUint32(0, true)
  const magic = Buffer.from(tail.subarray(4)).toString('latin1')
  const footer = await get(Key, `bytes=-${footerLength + 8}`, ranges)
  const metadata = parquetMetadata(footer)
  const file = {
    byteLength: size,
    async slice(start, end) {
      const b = await get(Key, `bytes=${start}-${(end ?? size) - 1}`, ranges)
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)
    },
  }
  const rows = await parquetReadObjects({
    file, metadata, utf8: true,
    parsers: {
      timestampFromMicroseconds: v => `us:${v}`,
      timestampFromMilliseconds: v => `ms:${v}`,
      timestampFromNanoseconds: v => `ns:${v}`,
      dateFromDays: v => `d:${v}`,
    },
  })
  const byName = Object.fromEntries(metadata.schema.map(e => [e.name, e]))
  const out = rows.map(r => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, text(v, byName[k])])))
  const schema = metadata.schema.slice(1).map(e => ({
    name: e.name, type: e.type ?? null, repetition: e.repetition_type ?? null,
    converted: e.converted_type ?? null, logical: e.logical_type ? JSON.parse(JSON.stringify(e.logical_type, (k, v) => typeof v === 'bigint' ? v.toString() : v)) : null,
    precision: e.precision ?? null, scale: e.scale ?? null, children: e.num_children ?? null,
  }))
  console.log(JSON.stringify({ key: Key, size, magic, footerLength, ranges, schema,
                               numRows: Number(metadata.num_rows), rows: out }))
}
