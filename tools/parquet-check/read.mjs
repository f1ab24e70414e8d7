// Reads Parquet files with hyparquet (an implementation independent of osprey's writer and of
// DuckDB) and prints, as JSON: the row count, the columns (name, physical and logical type) and
// a checksum of every value, computed the way query/export_test.go computes it from DuckDB.
//
//   node read.mjs FILE.parquet...
import { createHash } from 'node:crypto'
import { parquetMetadata, parquetReadObjects, parquetSchema } from 'hyparquet'
import { compressors } from 'hyparquet-compressors'
import { readFileSync } from 'node:fs'

// canon renders a value the same way as canon in export_test.go.
function canon(v) {
  if (v === null || v === undefined) return 'NULL'
  if (v instanceof Date) return 'T' + v.getTime()
  if (typeof v === 'bigint') return v.toString()
  if (typeof v === 'number') return String(v)
  if (typeof v === 'boolean') return v ? 'true' : 'false'
  if (typeof v === 'string') return JSON.stringify(v)
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']'
  const keys = Object.keys(v).sort()
  return '{' + keys.map(k => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}'
}

function typeOf(node) {
  const e = node.element
  const t = e.type ?? 'GROUP'
  const l = e.logical_type?.type ?? e.converted_type ?? ''
  return l ? `${t}/${l}` : t
}

let rows = 0
let columns = null
const hash = createHash('sha256')
const lines = []
for (const path of process.argv.slice(2)) {
  const buf = readFileSync(path)
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)
  const metadata = parquetMetadata(file)
  const schema = parquetSchema(metadata)
  const cols = schema.children.map(c => ({ name: c.element.name, type: typeOf(c) }))
  if (columns === null) columns = cols
  else if (JSON.stringify(columns) !== JSON.stringify(cols)) throw new Error(`${path}: columns differ`)
  const data = await parquetReadObjects({ file, compressors, utf8: true })
  rows += data.length
  for (const row of data) lines.push(cols.map(c => canon(row[c.name])).join('|'))
}
lines.sort()
for (const l of lines) hash.update(l + '\n')
console.log(JSON.stringify({ rows, columns, checksum: hash.digest('hex') }))
