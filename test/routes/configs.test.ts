import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import configsRoutes from '../../routes/configs.js'
import { createDynamicConfigs, type DynamicConfigs } from '../../src/dyncfg/dynamic-configs.js'
import { isAppError } from '../../src/errors.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'

/**
 * A minimal app around the plugin: zod compilers and an error handler mapping AppError (and
 * request validation) to `{code, message, ...extra}`. The real app's handler lives in src/http/.
 */
async function buildApp(dyncfg: DynamicConfigs): Promise<FastifyInstance> {
  const app = Fastify()
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  app.setErrorHandler((err, _req, reply) => {
    if (isAppError(err)) return reply.code(err.status).send({ ...err.extra, code: err.code, message: err.message })
    if (hasZodFastifySchemaValidationErrors(err)) return reply.code(400).send({ code: 'BAD_REQUEST', message: err.message })
    return reply.code(500).send({ code: 'INTERNAL', message: 'internal error' })
  })
  await app.register(configsRoutes, { dyncfg })
  await app.ready()
  return app
}

describe('routes/configs', () => {
  let consensus: MemConsensus
  let dyncfg: DynamicConfigs
  let app: FastifyInstance

  before(async () => {
    consensus = new MemConsensus()
    dyncfg = createDynamicConfigs({ consensus })
    await dyncfg.start()
    app = await buildApp(dyncfg)
  })
  after(async () => {
    await app.close()
    await dyncfg.stop()
  })

  it('GET /v1/configs lists every config', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/configs' })
    assert.equal(res.statusCode, 200)
    const body = res.json() as { configs: { name: string; type: string; value: unknown; default: unknown; description: string }[] }
    assert.equal(body.configs.length, 24)
    assert.deepEqual(
      body.configs.find((c) => c.name === 'persist_compaction_minimum_timeout'),
      {
        name: 'persist_compaction_minimum_timeout',
        type: 'duration',
        value: '90s',
        default: '90s',
        description: 'Floor of the per-request timeout, which is otherwise 1 s per whole MiB of input.',
      },
    )
    assert.deepEqual(
      body.configs.find((c) => c.name === 'persist_batch_preferred_order')?.value,
      'structured',
    )
  })

  it('GET /v1/configs/:name gives one config, 404 CONFIG_NOT_FOUND for an unknown one', async () => {
    const ok = await app.inject({ method: 'GET', url: '/v1/configs/compaction_queue_size' })
    assert.equal(ok.statusCode, 200)
    assert.deepEqual(ok.json(), {
      name: 'compaction_queue_size',
      type: 'count',
      value: 20,
      default: 20,
      description: dyncfg.get('compaction_queue_size').description,
    })
    const missing = await app.inject({ method: 'GET', url: '/v1/configs/compaction_queue_length' })
    assert.equal(missing.statusCode, 404)
    assert.deepEqual(missing.json(), {
      code: 'CONFIG_NOT_FOUND',
      message: 'config "compaction_queue_length" does not exist',
      config: 'compaction_queue_length',
    })
  })

  it('PATCH /v1/configs applies atomically and returns the changed ones; history shows them', async () => {
    const res = await app.inject({
      method: 'PATCH',
      url: '/v1/configs',
      payload: { compaction_concurrency_limit: 2, persist_compaction_minimum_timeout: 60_000, compaction_queue_size: 20 },
    })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(
      (res.json() as { configs: { name: string; value: unknown }[] }).configs.map((c) => [c.name, c.value]),
      [
        ['persist_compaction_minimum_timeout', '1m'],
        ['compaction_concurrency_limit', 2],
      ],
    )
    assert.equal(dyncfg.snapshot().compaction_concurrency_limit, 2)

    const history = await app.inject({ method: 'GET', url: '/v1/configs/history' })
    assert.equal(history.statusCode, 200)
    const changes = (history.json() as { changes: { at: string; name: string; old: unknown; new: unknown }[] }).changes
    assert.deepEqual(
      changes.map((c) => [c.name, c.old, c.new]),
      [
        ['persist_compaction_minimum_timeout', '90s', '1m'],
        ['compaction_concurrency_limit', 5, 2],
      ],
    )
    assert.ok(!Number.isNaN(Date.parse(changes[0]?.at ?? '')))
  })

  it('PATCH with one bad entry is 400 INVALID_CONFIG naming it, and applies nothing', async () => {
    const before = await consensus.head('compactd/configs')
    for (const [payload, config, message] of [
      [{ compaction_queue_size: 3, persist_blob_target_size: 0 }, 'persist_blob_target_size', /persist_blob_target_size: must be an integer ≥ 1, got 0/],
      [{ compaction_queue_size: 3, persist_compaction_minimum_timeout: '1.5s' }, 'persist_compaction_minimum_timeout', /whole number/],
      [{ compaction_queue_size: 3, compaction_queue_length: 3 }, 'compaction_queue_length', /unknown config/],
      [{ compaction_queue_size: 3, persist_blob_target_size: 512 * 1024 * 1024 }, 'persist_blob_target_size', /at least 4 ×/],
    ] as const) {
      const res = await app.inject({ method: 'PATCH', url: '/v1/configs', payload })
      assert.equal(res.statusCode, 400)
      const body = res.json() as { code: string; message: string; config: string }
      assert.equal(body.code, 'INVALID_CONFIG')
      assert.equal(body.config, config)
      assert.match(body.message, message)
    }
    assert.deepEqual(await consensus.head('compactd/configs'), before)
    assert.equal(dyncfg.snapshot().compaction_queue_size, 20)
  })

  it('PATCH with a body that is not an object is 400', async () => {
    for (const payload of ['[1]', '"x"', 'null']) {
      const res = await app.inject({ method: 'PATCH', url: '/v1/configs', payload, headers: { 'content-type': 'application/json' } })
      assert.equal(res.statusCode, 400, payload)
      assert.equal((res.json() as { code: string }).code, 'BAD_REQUEST')
    }
  })

  it('PATCH {} changes nothing', async () => {
    const res = await app.inject({ method: 'PATCH', url: '/v1/configs', payload: {} })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { configs: [] })
  })
})
