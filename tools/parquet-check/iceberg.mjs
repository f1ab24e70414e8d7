// Reads an Iceberg table with icebird (npm, pinned in package-lock.json): an implementation of
// Iceberg independent of iceberg-go and of osprey, for tests. Prints, as JSON, the table's row
// count and a checksum of every row, computed as read.mjs computes it, rows sorted by their
// canonical text so that the order of files does not matter.
//
//   node iceberg.mjs TABLE_DIR METADATA_FILE_NAME
//   node iceberg.mjs --records TABLE_DIR METADATA_FILE_NAME [TABLE_DIR METADATA_FILE_NAME...]
//
// With --records it reads each table given and prints a line for each, in order: the row count,
// the columns of the table's current schema and every row as a JSON object of those columns
// (sorted keys), in the shape osprey sql --format json gives values, so that a test can compare
// the two: timestamps as RFC 3339 strings with their microseconds (hyparquet's Dates keep only
// milliseconds: the timestamp parser of icebird's own hyparquet is replaced for that, see
// iceberg-hooks.mjs), 64-bit integers as JSON numbers of every digit, binary values (osprey
// writes none) in base64, a column a file lacks as null.
//
// TABLE_DIR is the table's location on the local disk (its metadata/ holds METADATA_FILE_NAME,
// the catalog's current metadata file), or in S3 (s3://bucket/key, read from the endpoint that
// OSPREY_S3_ENDPOINT names). icebird reads through fetch only: a small fetch below
// serves local paths, with Range requests. Its Avro reader decodes deflate blocks with
// hyparquet-compressors' gunzip, which fails on the manifests iceberg-go writes ("offset is out
// of bounds"); a module hook gives it Node's raw inflate instead (iceberg-hooks.mjs).
import { createHash, createHmac } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { register } from 'node:module'
import { isAbsolute } from 'node:path'
import { fileURLToPath } from 'node:url'

register('./iceberg-hooks.mjs', import.meta.url)

const args = process.argv.slice(2)
const records = args[0] === '--records'
if (records) args.shift()
if (args.length === 0 || args.length % 2 !== 0 || (!records && args.length !== 2)) {
  console.error('usage: node iceberg.mjs TABLE_DIR METADATA_FILE_NAME')
  console.error('       node iceberg.mjs --records TABLE_DIR METADATA_FILE_NAME [TABLE_DIR METADATA_FILE_NAME...]')
  process.exit(2)
}

const networkFetch = globalThis.fetch
globalThis.fetch = async (url, init) => {
  let path = String(url)
  // A lake in S3: icebird turns s3://bucket/key into https://bucket.s3.amazonaws.com/key;
  // with OSPREY_S3_ENDPOINT set, that is read from this S3-compatible endpoint instead
  // (moto_server in the tests), path-style, signed with the AWS_* credentials.
  const s3 = /^https:\/\/([^./]+)\.s3\.amazonaws\.com\/(.*)$/.exec(path)
  if (s3 && process.env.OSPREY_S3_ENDPOINT) {
    const target = new URL(process.env.OSPREY_S3_ENDPOINT.replace(/\/$/, '') + '/' + s3[1] + '/' + s3[2])
    return networkFetch(target, { ...init, headers: signV4(target, new Headers(init?.headers)) })
  }
  if (path.startsWith('file://')) path = fileURLToPath(path)
  if (!isAbsolute(path)) return networkFetch(url, init)
  let body = await readFile(path)
  let status = 200
  const range = new Headers(init?.headers).get('Range')
  const m = range && /^bytes=(\d+)-(\d*)$/.exec(range)
  if (m) {
    const end = m[2] === '' ? body.length : Math.min(Number(m[2]) + 1, body.length)
    body = body.subarray(Number(m[1]), end)
    status = 206
  }
  return new Response(body, { status, headers: { 'Content-Length': String(body.length) } })
}

// signV4 signs a GET of url with AWS Signature Version 4 (service s3), from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_REGION, and returns the request's headers.
function signV4(url, headers) {
  const hmac = (key, text) => createHmac('sha256', key).update(text).digest()
  const sha = text => createHash('sha256').update(text).digest('hex')
  const region = process.env.AWS_REGION || 'us-east-1'
  const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')
  const day = date.slice(0, 8)
  headers.set('host', url.host)
  headers.set('x-amz-date', date)
  headers.set('x-amz-content-sha256', 'UNSIGNED-PAYLOAD')
  const names = [...headers.keys()].map(k => k.toLowerCase()).sort()
  const query = [...url.searchParams].map(([k, v]) => [encodeURIComponent(k), encodeURIComponent(v)])
    .sort().map(([k, v]) => k + '=' + v).join('&')
  const canonical = ['GET', url.pathname, query, names.map(n => n + ':' + headers.get(n).trim() + '\n').join(''),
    names.join(';'), 'UNSIGNED-PAYLOAD'].join('\n')
  const scope = `${day}/${region}/s3/aws4_request`
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha(canonical)].join('\n')
  let key = hmac('AWS4' + (process.env.AWS_SECRET_ACCESS_KEY || ''), day)
  for (const part of [region, 's3', 'aws4_request']) key = hmac(key, part)
  const signature = createHmac('sha256', key).update(toSign).digest('hex')
  headers.set('authorization', `AWS4-HMAC-SHA256 Credential=${process.env.AWS_ACCESS_KEY_ID}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`)
  headers.delete('host') // fetch sets it
  return headers
}

// canon renders a value the same way as canon in read.mjs.
function canon(v) {
  if (v === null || v === undefined) return 'NULL'
  if (v instanceof Date) return 'T' + v.getTime()
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'number') return String(v)
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (typeof v === 'string') return JSON.stringify(v)
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('base64'))
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']'
  const keys = Object.keys(v).sort()
  return '{' + keys.map(k => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}'
}

// Micros is a timestamp read with its microseconds (--records).
class Micros {
  constructor(micros) { this.micros = micros }

  // rfc3339 formats it as Go's time.RFC3339Nano does in UTC, as osprey sql prints timestamps.
  rfc3339() {
    let s = this.micros / 1000000n
    let f = this.micros % 1000000n
    if (f < 0n) {
      f += 1000000n
      s -= 1n
    }
    const frac = f === 0n ? '' : '.' + f.toString().padStart(6, '0').replace(/0+$/, '')
    return new Date(Number(s) * 1000).toISOString().slice(0, 19) + frac + 'Z'
  }
}

// json renders a value read by icebird as JSON text (--records).
function json(v) {
  if (v === null || v === undefined) return 'null'
  if (v instanceof Micros) return JSON.stringify(v.rfc3339())
  if (v instanceof Date) return JSON.stringify(new Micros(BigInt(v.getTime()) * 1000n).rfc3339())
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v)
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('base64'))
  if (Array.isArray(v)) return '[' + v.map(json).join(',') + ']'
  const keys = Object.keys(v).sort()
  return '{' + keys.map(k => JSON.stringify(k) + ':' + json(v[k])).join(',') + '}'
}

if (records) {
  const { DEFAULT_PARSERS } = await import('icebird-hyparquet/convert.js')
  DEFAULT_PARSERS.timestampFromMicroseconds = micros => new Micros(BigInt(micros))
}
const { icebergMetadata, icebergRead } = await import('icebird')
if (records) {
  for (let i = 0; i < args.length; i += 2) {
    const tableUrl = args[i].replace(/\/$/, '')
    const metadata = await icebergMetadata({ tableUrl, metadataFileName: args[i + 1] })
    const rows = await icebergRead({ tableUrl, metadata })
    const schema = metadata.schemas.find(s => s['schema-id'] === metadata['current-schema-id'])
    const columns = schema.fields.map(f => f.name)
    const out = rows.map(r => json(Object.fromEntries(columns.map(c => [c, r[c]]))))
    console.log(`{"rows":${rows.length},"columns":${JSON.stringify(columns)},"records":[${out.join(',')}]}`)
  }
  process.exit(0)
}
const [tableDir, metadataFileName] = args
const rows = await icebergRead({ tableUrl: tableDir.replace(/\/$/, ''), metadataFileName })
const lines = rows.map(canon).sort()
const hash = createHash('sha256')
for (const l of lines) hash.update(l + '\n')
console.log(JSON.stringify({ rows: rows.length, checksum: hash.digest('hex') }))
