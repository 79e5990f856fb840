import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { buildApp } from '../../src/app.js'
import { createServices } from '../../src/services.js'
import type { Settings } from '../../src/settings.js'
import { buildTestApp, testSettings } from '../helper.js'
import { startPostgres } from '../support/postgres.js'
import { startS3 } from '../support/s3.js'
import { runModel } from './shard-model.js'

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`shard model test seed: ${SEED} (rerun with FC_SEED=${SEED})`)

async function serverOn(overrides: Partial<Settings>) {
  const services = await createServices(testSettings({ workers: 1, gcGraceMs: 0, ...overrides }), { gcIntervalMs: null })
  await services.start()
  const app = buildApp(services, { logger: false })
  await app.ready()
  return {
    app,
    services,
    stop: async () => {
      await app.close()
      await services.close()
    },
  }
}

describe('shard API against a model', () => {
  it('mem:// stores, 400 operations', async () => {
    const { ops } = await runModel({
      seed: SEED,
      ops: 400,
      restarts: false,
      start: async () => {
        const t = await buildTestApp({ settings: { workers: 1, gcGraceMs: 0 } })
        return { app: t.app, services: t.services, stop: t.close }
      },
    })
    console.log(`operations run: ${JSON.stringify(ops)}`)
  })

  it('file:// stores with restarts, 150 operations', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'compactd-model-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    await runModel({
      seed: SEED + 1,
      ops: 150,
      restarts: true,
      start: () => serverOn({ dataDir: dir, blobUrl: pathToFileURL(join(dir, 'blob')).href, consensusUrl: pathToFileURL(join(dir, 'consensus')).href }),
    })
  })

  it('S3 and Postgres with restarts, 60 operations', async (t) => {
    const s3 = await startS3()
    t.after(() => s3.stop())
    const pg = await startPostgres()
    t.after(() => pg.stop())
    const blobUrl = s3.urlFor(`model-${SEED}`)
    const consensusUrl = await pg.schemaUrl()
    await runModel({ seed: SEED + 2, ops: 60, restarts: true, start: () => serverOn({ blobUrl, consensusUrl }) })
  })
})
