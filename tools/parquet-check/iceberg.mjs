// Reads an Iceberg table with icebird (npm, pinned in package-lock.json): an implementation of
// Iceberg independent of iceberg-go and of osprey, for tests. Prints, as JSON, the table's row
// count and a checksum of every row, computed as read.mjs computes it, rows sorted by their
// canonical text so that the order of files does not matter.
//
//   node iceberg.mjs TABLE_DIR METADATA_FILE_NAME
//
// TABLE_DIR is the table's location on the local disk (its metadata/ holds METADATA_FILE_NAME,
// the catalog's current metadata file). icebird reads through fetch only: a small fetch below
// serves local paths, with Range requests. Its Avro reader decodes deflate blocks with
// hyparquet-compressors' gunzip, which fails on the manifests iceberg-go writes ("offset is out
// of bounds"); a module hook gives it Node's raw inflate instead (iceberg-hooks.mjs).
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { register } from 'node:module'
import { isAbsolute } from 'node:path'
import { fileURLToPath } from 'node:url'

register('./iceberg-hooks.mjs', import.meta.url)

const [tableDir, metadataFileName] = process.argv.slice(2)
if (!tableDir || !metadataFileName) {
  console.error('usage: node iceberg.mjs TABLE_DIR METADATA_FILE_NAME')
  process.exit(2)
}

const networkFetch = globalThis.fetch
globalThis.fetch = async (url, init) => {
  let path = String(url)
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

const { icebergRead } = await import('icebird')
const rows = await icebergRead({ tableUrl: tableDir.replace(/\/$/, ''), metadataFileName })
const lines = rows.map(canon).sort()
const hash = createHash('sha256')
for (const l of lines) hash.update(l + '\n')
console.log(JSON.stringify({ rows: rows.length, checksum: hash.digest('hex') }))
