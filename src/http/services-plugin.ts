/**
 * Exposes the composition root to every route as `app.services` (fastify-plugin, so the decorator
 * is visible outside the plugin's own scope).
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Services } from '../services.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's services (stores, metrics, ...); owned by the caller of buildApp, not by the app. */
    readonly services: Services
  }
}

async function services(app: FastifyInstance, opts: { readonly services: Services }): Promise<void> {
  app.decorate('services', opts.services)
}

export const servicesPlugin = fp(services, { name: 'compactd-services', fastify: '5.x' })
