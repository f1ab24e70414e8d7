// Module hooks for iceberg.mjs: icebird's Avro reader gets Node's raw inflate for deflate blocks
// (see iceberg.mjs); "icebird-hyparquet/convert.js" is the convert.js of the hyparquet icebird
// itself imports (its own pinned copy, not the one read.mjs uses), whose timestamp parser
// iceberg.mjs replaces; every other import resolves as usual.
export async function resolve(specifier, context, next) {
  if (specifier === 'hyparquet-compressors' && context.parentURL?.includes('/icebird/src/avro/')) {
    return { url: new URL('./iceberg-inflate.mjs', import.meta.url).href, shortCircuit: true }
  }
  if (specifier === 'icebird-hyparquet/convert.js') {
    const icebird = await next('icebird', context)
    return next('hyparquet/src/convert.js', { ...context, parentURL: icebird.url })
  }
  return next(specifier, context)
}
