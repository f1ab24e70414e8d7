// What icebird's Avro reader imports from hyparquet-compressors, from Node's zlib: Avro's
// deflate codec is raw deflate (RFC 1951).
import { inflateRawSync } from 'node:zlib'

export function gunzip(input) {
  return new Uint8Array(inflateRawSync(input))
}
