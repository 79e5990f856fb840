/**
 * The one error handler: every error becomes `{code, message, ...extra}` with its status.
 *
 * - AppError: its code, status, message and extras.
 * - Request validation (zod, through fastify-type-provider-zod): 400 BAD_REQUEST naming the field,
 *   e.g. `body.since: expected array, received undefined`, with `field` as an extra.
 * - Fastify's own client errors: 413 PAYLOAD_TOO_LARGE, 415 UNSUPPORTED_MEDIA_TYPE, 400 BAD_REQUEST
 *   for bad JSON and the rest.
 * - LocationError (a store failed under a request): 503 STORAGE_ERROR, generic message.
 * - Anything else: 500 INTERNAL with a generic message.
 *
 * NB: no 5xx body ever carries the error's own message or stack; they go to the log only.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod'
import { isAppError, type ErrorCode } from '../errors.js'
import { LocationError } from '../location/errors.js'
import type { ErrorBody } from './error-body.js'

export interface ErrorReply {
  readonly status: number
  readonly body: ErrorBody
  /** True when the cause is ours, not the client's: logged at error level with the full error. */
  readonly internal: boolean
}

const CLIENT_CODE_FOR_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  404: 'NOT_FOUND',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
}

export const INTERNAL_MESSAGE = 'internal error; see the server log for this request id'
export const STORAGE_MESSAGE = 'a storage operation failed; retry later'

/** Maps any thrown value to the reply it deserves. Pure. */
export function toErrorReply(err: unknown): ErrorReply {
  if (isAppError(err)) {
    return { status: err.status, body: { ...err.extra, code: err.code, message: err.message }, internal: err.status >= 500 }
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const context = (err as { validationContext?: string }).validationContext ?? 'request'
    const first = err.validation[0]
    const field = fieldPath(context, first?.instancePath ?? '')
    const reason = issueReason(first?.message ?? 'is invalid')
    return { status: 400, body: { code: 'BAD_REQUEST', message: `${field}: ${reason}`, field }, internal: false }
  }
  if (err instanceof LocationError) {
    return { status: 503, body: { code: 'STORAGE_ERROR', message: STORAGE_MESSAGE, kind: err.kind }, internal: true }
  }
  const status = statusOf(err)
  if (status !== undefined && status >= 400 && status < 500) {
    const code = CLIENT_CODE_FOR_STATUS[status] ?? 'BAD_REQUEST'
    const message = err instanceof Error && err.message !== '' ? err.message : code.toLowerCase().replaceAll('_', ' ')
    return { status: CLIENT_CODE_FOR_STATUS[status] === undefined ? 400 : status, body: { code, message: oneLine(message) }, internal: false }
  }
  return { status: 500, body: { code: 'INTERNAL', message: INTERNAL_MESSAGE }, internal: true }
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body, internal } = toErrorReply(err)
  if (internal) {
    req.log.error({ err }, 'request failed')
    return reply.code(status).send({ ...body, requestId: req.id })
  }
  req.log.info({ code: body.code, message: body.message }, 'request rejected')
  return reply.code(status).send(body)
}

export function notFoundHandler(req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = req.url.split('?')[0] ?? ''
  const shown = path.length > 200 ? `${path.slice(0, 197)}...` : path
  return reply.code(404).send({ code: 'NOT_FOUND', message: `no route for ${req.method} ${shown}` } satisfies ErrorBody)
}

/** `body` + `/updates/3/diff` → `body.updates[3].diff`. */
export function fieldPath(context: string, instancePath: string): string {
  let out = context
  for (const segment of instancePath.split('/')) {
    if (segment === '') continue
    out += /^[0-9]+$/.test(segment) ? `[${segment}]` : `.${segment}`
  }
  return out
}

/** zod's "Invalid input: expected array, received undefined" → "expected array, received undefined". */
function issueReason(message: string): string {
  return oneLine(message.replace(/^Invalid input: /, ''))
}

function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const status = (err as { statusCode?: unknown }).statusCode
  return typeof status === 'number' && Number.isInteger(status) ? status : undefined
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ')
}
