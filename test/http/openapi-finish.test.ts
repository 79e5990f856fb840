import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { finishOpenApi } from '../../src/http/openapi-finish.js'

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })

/** A document whose one operation's request uses `request` and response uses `response`. */
function doc(schemas: Record<string, unknown>, request: string, response: string) {
  return {
    openapi: '3.1.0',
    paths: {
      '/v1/shards': {
        post: {
          requestBody: { content: { 'application/json': { schema: ref(request) } } },
          responses: { 201: { description: 'ok', content: { 'application/json': { schema: ref(response) } } } },
        },
      },
    },
    components: { schemas },
  }
}

describe('finishOpenApi', () => {
  it('merges X and XInput when they are the same schema, refs inside included, and drops what nothing uses', () => {
    const out = finishOpenApi(
      doc(
        {
          Shard: { type: 'object', properties: { t: ref('Time') }, additionalProperties: false },
          ShardInput: { type: 'object', properties: { t: ref('TimeInput') } },
          Time: { type: 'integer' },
          TimeInput: { type: 'integer' },
          Unused: { type: 'string' },
          UnusedInput: { type: 'string' },
        },
        'ShardInput',
        'Shard',
      ),
    )
    assert.deepEqual(Object.keys(out.components.schemas), ['Shard', 'Time'])
    assert.deepEqual(out.paths['/v1/shards'].post.requestBody.content['application/json'].schema, ref('Shard'))
    assert.deepEqual(out.components.schemas['Shard'], { type: 'object', properties: { t: ref('Time') }, additionalProperties: false })
  })

  it('keeps twins that differ, and twins whose refs lead to twins that differ', () => {
    const out = finishOpenApi(
      doc(
        {
          Shard: { type: 'object', properties: { t: ref('Time') } },
          ShardInput: { type: 'object', properties: { t: ref('TimeInput') } },
          Time: { type: 'integer' },
          TimeInput: { anyOf: [{ type: 'integer' }, { type: 'string' }] },
        },
        'ShardInput',
        'Shard',
      ),
    )
    assert.deepEqual(Object.keys(out.components.schemas), ['Shard', 'ShardInput', 'Time', 'TimeInput'])
  })

  it('gives a request-only schema its plain name', () => {
    const out = finishOpenApi(doc({ CreateShard: { type: 'object' }, CreateShardInput: { type: 'object', properties: { name: { type: 'string' } } }, Shard: { type: 'object' } }, 'CreateShardInput', 'Shard'))
    assert.deepEqual(Object.keys(out.components.schemas), ['CreateShard', 'Shard'])
    assert.deepEqual(out.components.schemas['CreateShard'], { type: 'object', properties: { name: { type: 'string' } } })
    assert.deepEqual(out.paths['/v1/shards'].post.requestBody.content['application/json'].schema, ref('CreateShard'))
  })

  it('sets operationIds, request examples and an explicit empty security, and leaves its input alone', () => {
    const input = doc({ CreateShard: { type: 'object' }, Shard: { type: 'object' } }, 'CreateShard', 'Shard')
    const before = JSON.stringify(input)
    const out = finishOpenApi(input)
    const op = out.paths['/v1/shards'].post as Record<string, unknown> & { requestBody: { content: { 'application/json': Record<string, unknown> } } }
    assert.equal(op['operationId'], 'createShard')
    assert.deepEqual(op['security'], [])
    assert.ok(Object.keys(op.requestBody.content['application/json']['examples'] as object).length > 0)
    assert.equal(JSON.stringify(input), before)
  })
})
