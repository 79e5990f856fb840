/**
 * `npm run openapi`: writes openapi/openapi.json from the routes (the app built on mem:// stores).
 * test/openapi.test.ts fails when the committed file differs from what this writes.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../src/app.js'
import { renderOpenApi } from '../src/http/openapi.js'
import { createServices } from '../src/services.js'
import { parseSettings } from '../src/settings.js'

const OPENAPI_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'openapi', 'openapi.json')

const settings = parseSettings(['--blob', 'mem://', '--consensus', 'mem://', '--log-level', 'silent'], {})
const services = await createServices(settings)
const app = buildApp(services, { logger: false })
try {
  await app.ready()
  await mkdir(dirname(OPENAPI_FILE), { recursive: true })
  await writeFile(OPENAPI_FILE, renderOpenApi(app))
  process.stdout.write(`wrote ${OPENAPI_FILE}\n`)
} finally {
  await app.close()
  await services.close()
}
