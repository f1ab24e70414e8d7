// Module hooks for iceberg.mjs: icebird's Avro reader gets Node's raw inflate for deflate blocks
// (see iceberg.mjs); every other import resolves as usual.
export async function resolve(specifier, context, next) {
  if (specifier === 'hyparquet-compressors' && context.parentURL?.includes('/icebird/src/avro/')) {
    return { url: new URL('./iceberg-inflate.mjs', import.meta.url).href, shortCircuit: true }
  }
  return next(specifier, context)
}
