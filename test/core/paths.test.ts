import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isCompactionId, isPartId, isShardId, isWriterKey, newCompactionId, newPartId, newShardId, newWriterKey } from '../../src/core/ids.js'
import { blobKey, blobKeyForShard, parseBlobKey, parsePartialBatchKey, partialBatchKey } from '../../src/core/paths.js'

describe('ids', () => {
  it('are prefixed uuids that say what they name', () => {
    assert.ok(isShardId(newShardId()) && isWriterKey(newWriterKey()) && isPartId(newPartId()) && isCompactionId(newCompactionId()))
    assert.ok(!isShardId(newPartId()) && !isPartId(newShardId()))
    assert.ok(isWriterKey('n0011500') && !isWriterKey('n115'))
  })
})

describe('blob keys', () => {
  it('round-trip through build and parse', () => {
    for (let i = 0; i < 50; i++) {
      const shardId = newShardId()
      const writerKey = i % 2 === 0 ? newWriterKey() : ('n0011500' as ReturnType<typeof newWriterKey>)
      const partId = newPartId()
      const partial = partialBatchKey(writerKey, partId)
      assert.deepEqual(parsePartialBatchKey(partial), { ok: true, value: { writerKey, partId, key: partial } })
      assert.deepEqual(parseBlobKey(blobKey(shardId, partial)), { ok: true, value: { shardId, writerKey, partId } })
      assert.deepEqual(blobKeyForShard(shardId, partial), { ok: true, value: blobKey(shardId, partial) })
      assert.deepEqual(blobKeyForShard(shardId, blobKey(shardId, partial)), { ok: true, value: blobKey(shardId, partial) })
    }
  })
  it('refuses keys that do not parse or belong to another shard', () => {
    const shardId = newShardId()
    const partial = partialBatchKey(newWriterKey(), newPartId())
    const other = blobKey(newShardId(), partial)
    assert.match((blobKeyForShard(shardId, other) as { error: string }).error, /another shard/)
    for (const bad of ['', 'x', '../etc/passwd', `${partial}/extra`, `w/${newPartId()}`, `${newWriterKey()}/p123`, `${newWriterKey()}/../${newPartId()}`, `/${partial}`]) {
      assert.equal(blobKeyForShard(shardId, bad).ok, false, bad)
    }
    assert.equal(parseBlobKey(`${shardId}`).ok, false)
    assert.equal(parseBlobKey(`s123/${partial}`).ok, false)
  })
})
