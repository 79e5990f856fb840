/**
 * Dynamic configs over HTTP (docs/api.md#dynamic-configs). Thin: parse → one DynamicConfigs call →
 * map. Errors are AppErrors thrown by the service and mapped by the app's error handler.
 *
 * Registered with the service as a plugin option: `app.register(configsRoutes, { dyncfg })`.
 * Paths are absolute (`/v1/configs…`): register it without a prefix.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { DynamicConfigs } from '../src/dyncfg/dynamic-configs.js'
import { CONFIG_DEFS, CONFIG_TYPES, type ConfigDef } from '../src/dyncfg/registry.js'
import { jsonResponse, errorResponses } from '../src/http/responses.js'

const ConfigValueJson = z
  .union([z.boolean(), z.number(), z.string()])
  .meta({ description: 'bool: a JSON boolean; count and bytes: an integer; duration: a canonical string like "90s"; enum: one of its options.' })

const ConfigJson = z
  .object({
    name: z.string(),
    type: z.enum(CONFIG_TYPES),
    value: ConfigValueJson,
    default: ConfigValueJson,
    description: z.string(),
  })
  .meta({ id: 'Config' })

const ConfigChangeJson = z
  .object({
    at: z.string().meta({ description: 'ISO 8601 time of the update' }),
    name: z.string(),
    old: ConfigValueJson,
    new: ConfigValueJson,
  })
  .meta({ id: 'ConfigChange' })

const ConfigList = z.object({ configs: z.array(ConfigJson) })

/** JSON Schema of one config's input, for the OpenAPI document only. */
function documentedInput(def: ConfigDef): Record<string, unknown> {
  switch (def.type) {
    case 'bool':
      return { type: 'boolean' }
    case 'count':
    case 'bytes':
      return { type: 'integer', minimum: def.min, maximum: def.max }
    case 'duration':
      return { anyOf: [{ type: 'string', pattern: '^[0-9]+(h|m|s|ms)$' }, { type: 'integer', minimum: 0 }] }
    case 'enum':
      return { type: 'string', enum: [...def.options] }
  }
}

// NB: values are `unknown` to zod on purpose: the service validates them, so a bad value is a 400
// INVALID_CONFIG naming the config and its rule rather than a generic schema error. The metadata
// only documents each config's input; unknown names pass through to be rejected the same way.
const ConfigPatch = z
  .object(
    Object.fromEntries(
      CONFIG_DEFS.map((d) => [d.name, z.unknown().optional().meta({ ...documentedInput(d), description: `(${d.type}) ${d.description}` })]),
    ),
  )
  .catchall(z.unknown())
  .meta({ description: 'Config name → new value; applied all or nothing. Durations as "90s", "1500ms", "2m" or integer milliseconds.' })

const configsRoutes: FastifyPluginAsyncZod<{ dyncfg: DynamicConfigs }> = async (fastify, { dyncfg }) => {
  fastify.get(
    '/v1/configs',
    { schema: { tags: ['configs'], summary: 'Every dynamic config with its current value', response: { 200: jsonResponse('Every config', ConfigList) } } },
    async () => ({ configs: dyncfg.list() }),
  )

  fastify.get(
    '/v1/configs/history',
    {
      schema: {
        tags: ['configs'],
        summary: 'The audit history of config changes, newest first',
        response: { 200: jsonResponse('Changes, newest first', z.object({ changes: z.array(ConfigChangeJson) })) },
      },
    },
    async () => ({ changes: dyncfg.history() }),
  )

  fastify.get(
    '/v1/configs/:name',
    {
      schema: {
        tags: ['configs'],
        summary: 'One dynamic config',
        params: z.object({ name: z.string() }),
        response: { 200: jsonResponse('The config', ConfigJson), ...errorResponses({ 404: 'CONFIG_NOT_FOUND: no config has that name' }) },
      },
    },
    async (req) => dyncfg.get(req.params.name),
  )

  fastify.patch(
    '/v1/configs',
    {
      schema: {
        tags: ['configs'],
        summary: 'Set dynamic configs atomically; returns the ones that changed',
        body: ConfigPatch,
        response: { 200: jsonResponse('The configs this change set', ConfigList), ...errorResponses({ 400: 'INVALID_CONFIG: an unknown name or a bad value; nothing applied', 503: 'The change could not be stored' }) },
      },
    },
    async (req) => ({ configs: await dyncfg.update(req.body) }),
  )
}

export default configsRoutes
