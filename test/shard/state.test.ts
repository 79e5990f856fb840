import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { newShardId } from '../../src/core/ids.js'
import { int64, utf8, type DataType } from '../../src/columnar/data-type.js'
import {
  applyMergeRes,
  compareAndAppend,
  deleteShard,
  downgradeSince,
  isDeleted,
  newShardState,
  registerSchema,
  shardStateCodec,
  type ShardState,
} from '../../src/shard/state.js'
import { f, hb } from '../trace/fixtures.js'

const AT = '2026-12-01T10:00:00.000Z'
const V0: DataType = { type: 'struct', fields: [{ name: 'a', type: int64, nullable: false }] }
const V1: DataType = { type: 'struct', fields: [{ name: 'a', type: int64, nullable: false }, { name: 'b', type: utf8, nullable: true }] }

function live(): ShardState {
  const s = newShardState(newShardId(), 'orders', 'u64', utf8, V0, '2026-11-30T00:00:00.000Z')
  const appended = compareAndAppend(s, hb(0, 2, 0, 1), f(0), 1 << 20)
  assert.equal(appended.kind, 'continue')
  return appended.kind === 'continue' ? appended.state : s
}

function tombstone(): ShardState {
  const t = deleteShard(live(), AT)
  assert.equal(t.kind, 'continue')
  return t.kind === 'continue' ? t.state : live()
}

describe('shard state tombstones', () => {
  it('deleteShard marks a live shard and leaves a tombstone as it is', () => {
    const s = live()
    const t = deleteShard(s, AT)
    assert.deepEqual(t.kind === 'continue' ? [t.result, t.state.deletedAt, t.state.trace === s.trace] : t, [{ kind: 'deleted', deletedAt: AT }, AT, true])
    assert.ok(!isDeleted(s))
    const again = deleteShard(tombstone(), '2027-01-01T00:00:00.000Z')
    assert.deepEqual(again, { kind: 'break', result: { kind: 'already_deleted', deletedAt: AT } })
  })

  // Every transition that changes data, against a state where it would otherwise write.
  const refusals: Array<[string, (s: ShardState) => unknown, unknown]> = [
    ['compareAndAppend', (s) => compareAndAppend(s, hb(2, 4, 0, 1), f(2), 1 << 20), { kind: 'deleted', deletedAt: AT }],
    ['registerSchema', (s) => registerSchema(s, utf8, V1), { kind: 'deleted', deletedAt: AT }],
    ['downgradeSince', (s) => downgradeSince(s, f(1)), { kind: 'deleted', deletedAt: AT }],
    ['applyMergeRes', (s) => { const t = applyMergeRes(s, hb(0, 2, 0, 1)); return t.kind === 'break' ? { kind: t.kind, result: { result: t.result.result, why: t.result.detail?.why } } : t }, { result: 'not_applied_no_match', why: 'deleted' }],
  ]
  for (const [name, transition, refused] of refusals) {
    it(`${name} writes on a live shard and refuses a tombstone inside the transition`, () => {
      // applyMergeRes of a batch the trace holds as is changes nothing: compare its result only.
      const onLive = transition(live()) as { kind: string; result: unknown }
      if (name === 'applyMergeRes') assert.notDeepEqual(onLive.result, refused)
      else assert.equal(onLive.kind, 'continue', `${name} writes on a live shard`)
      assert.deepEqual(transition(tombstone()), { kind: 'break', result: refused })
    })
  }

  it('the codec keeps deletedAt, and leaves it out of live states', () => {
    const t = tombstone()
    const encoded = shardStateCodec.encode(t) as Record<string, unknown>
    assert.equal(encoded.deletedAt, AT)
    assert.equal(shardStateCodec.decode(JSON.parse(JSON.stringify(encoded))).deletedAt, AT)
    const l = shardStateCodec.encode(live()) as Record<string, unknown>
    assert.ok(!('deletedAt' in l))
    assert.ok(!isDeleted(shardStateCodec.decode(JSON.parse(JSON.stringify(l)))))
  })
})
