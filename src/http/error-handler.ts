/**
 * The one error handler: every error becomes `{code, message, ...extra}` with its status.
 *
 * - AppError: its code, status, message and extras.
 * - Request validation (zod, through fastify-type-provider-zod): 400 BAD_REQUEST naming the first
 *   invalid field, e.g. `body.since: expected array, received undefined`, with `field` (that path)
 *   and `fields` (every invalid field of that request part, each `{field, message}`) as extras.
 *   Request parts are named `params.`, `query.`, `headers.` and `body.`.
 * - Fastify's own client errors: 413 PAYLOAD_TOO_LARGE, 415 UNSUPPORTED_MEDIA_TYPE (naming the
 *   content types the route accepts, extra `accepted`), 400 BAD_REQUEST for bad JSON and the rest.
 *   Those raised before a route is found (a malformed escape in the path, a path segment over
 *   the router's limit) come through `frameworkErrorHandler`, as 400 BAD_REQUEST too.
 * - LocationError (a store failed under a request): 503 STORAGE_ERROR, a generic message that says
 *   whether a retry can help (a permanent error needs an operator: credentials, a missing bucket);
 *   a store with no space left: 507 INSUFFICIENT_STORAGE (nothing was written; space must be freed).
 * - Anything else: 500 INTERNAL with a generic message.
 *
 * NB: no 5xx body ever carries the error's own message or stack; they go to the log only.
 *
 * Logging: a fault of the server or its stores (500 INTERNAL, DATA_LOSS, a store's failure) is an
 * error line with the whole error; a 5xx that is a state the server is in, not a fault (503
 * SERVICE_UNAVAILABLE while it starts or shuts down, COMPACTION_DISABLED by the kill switch, 504
 * TIMED_OUT or DEADLINE_EXCEEDED) is a warn line with its code and message, no stack; a client's
 * 4xx is an info line.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod'
import { AppError, FAULT_CODES, isAppError, type ErrorCode } from '../errors.js'
import { LocationError } from '../location/errors.js'
import type { ErrorBody } from './error-body.js'
import { REQUEST_ID_HEADER } from './request-id.js'

export interface ErrorReply {
  readonly status: number
  readonly body: ErrorBody
  /** True for a 5xx: the body carries the request id, to find its log line. */
  readonly internal: boolean
  /** How the request's failure is logged: `error` with the whole error (a fault), `warn` or `info` with its code and message. */
  readonly log: 'error' | 'warn' | 'info'
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
export const STORAGE_FULL_MESSAGE =
  'the storage has no space left, so nothing was written; retry once space is freed (an operator deletes data, or GC frees it), see the server log'
export const STORAGE_PERMANENT_MESSAGE =
  'the storage refused the operation (credentials, permissions or a missing bucket) or holds what compactd cannot read (a data directory changed outside it); an operator must fix it, see the server log'

/** Content types a route takes when its schema declares no `consumes`. */
export const DEFAULT_ACCEPTED = ['application/json'] as const

/** What a 415 names: the content type sent, and those the route takes. */
export interface RequestContext {
  readonly contentType?: string
  readonly accepted?: readonly string[]
}

/** Maps any thrown value to the reply it deserves. Pure. */
export function toErrorReply(err: unknown, request: RequestContext = {}): ErrorReply {
  if (isAppError(err)) {
    const internal = err.status >= 500
    return { status: err.status, body: { ...err.extra, code: err.code, message: err.message }, internal, log: !internal ? 'info' : FAULT_CODES.has(err.code) ? 'error' : 'warn' }
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const context = (err as { validationContext?: string }).validationContext ?? 'request'
    const fields = err.validation.map((issue) => ({ field: fieldPath(context, issue.instancePath), message: issueReason(issue.message ?? 'is invalid') }))
    const first = fields[0] ?? { field: fieldPath(context, ''), message: 'is invalid' }
    const more = fields.length > 1 ? ` (and ${fields.length - 1} more: see fields)` : ''
    return { status: 400, body: { code: 'BAD_REQUEST', message: `${first.field}: ${first.message}${more}`, field: first.field, fields }, internal: false, log: 'info' }
  }
  if (err instanceof LocationError && err.noSpace) {
    return { status: 507, body: { code: 'INSUFFICIENT_STORAGE', message: STORAGE_FULL_MESSAGE, kind: err.kind }, internal: true, log: 'error' }
  }
  if (err instanceof LocationError) {
    const message = err.permanent ? STORAGE_PERMANENT_MESSAGE : STORAGE_MESSAGE
    return { status: 503, body: { code: 'STORAGE_ERROR', message, kind: err.kind, permanent: err.permanent }, internal: true, log: 'error' }
  }
  const status = statusOf(err)
  if (status === 415) {
    const sent = request.contentType ?? ''
    const accepted = request.accepted ?? DEFAULT_ACCEPTED
    const what = sent !== '' ? `content type ${JSON.stringify(clip(sent))} is` : 'a body without a content type is'
    const message = `${what} not accepted here; send ${accepted.length === 1 ? accepted[0] : `one of ${accepted.join(', ')}`}`
    return { status, body: { code: 'UNSUPPORTED_MEDIA_TYPE', message, accepted: [...accepted] }, internal: false, log: 'info' }
  }
  if (status !== undefined && status >= 400 && status < 500) {
    const code = CLIENT_CODE_FOR_STATUS[status] ?? 'BAD_REQUEST'
    const message = err instanceof Error && err.message !== '' ? err.message : code.toLowerCase().replaceAll('_', ' ')
    return { status: CLIENT_CODE_FOR_STATUS[status] === undefined ? 400 : status, body: { code, message: oneLine(message) }, internal: false, log: 'info' }
  }
  return { status: 500, body: { code: 'INTERNAL', message: INTERNAL_MESSAGE }, internal: true, log: 'error' }
}

export function errorHandler(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body, internal, log } = toErrorReply(err, { contentType: req.headers['content-type'] ?? '', accepted: acceptedTypes(req) })
  // NB: the line of a 5xx names its request (method, path), so it says on its own what failed where.
  const where = { method: req.method, url: clip(req.url.split('?')[0] ?? '') }
  if (log === 'error') req.log.error({ ...where, err }, 'request failed')
  else if (log === 'warn') req.log.warn({ ...where, code: body.code, message: body.message }, 'request not served')
  else req.log.info({ code: body.code, message: body.message }, 'request rejected')
  return reply.code(status).send(internal ? { ...body, requestId: req.id } : body)
}

/** Longest path parameter the router matches (fastify's `maxParamLength`); no id compactd gives out comes close. */
export const MAX_PARAM_LENGTH = 100

/**
 * Fastify's errors before a route is found (its `frameworkErrors` hook): the client's, answered in
 * the one error body like every other error (fastify's own body has other fields and codes).
 *
 * NB: no hook has run (nothing was routed), so neither has auth: a malformed path is a 400 with or
 * without a token, and reaches nothing. The request id header is set here for the same reason.
 */
export function frameworkErrorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.header(REQUEST_ID_HEADER, req.id)
  const path = clip(req.url.split('?')[0] ?? '')
  const why = FRAMEWORK_ERRORS[err.code]
  return errorHandler(why === undefined ? err : new AppError('BAD_REQUEST', `path ${path}: ${why}`), req, reply)
}

/** What is wrong with a path fastify refused before routing, by its error code. */
const FRAMEWORK_ERRORS: Readonly<Record<string, string>> = {
  FST_ERR_BAD_URL: 'a % must start an escape of two hex digits that decodes as UTF-8; encode each path segment (encodeURIComponent)',
  FST_ERR_MAX_PARAM_LENGTH: `a segment is longer than ${MAX_PARAM_LENGTH} characters; no id or name compactd uses is that long`,
}

/**
 * The not-found handler: 405 METHOD_NOT_ALLOWED with `Allow` when some route answers the path with
 * another method (`allowed` lists them), else 404 NOT_FOUND.
 */
export function notFoundHandler(allowed: (path: string) => readonly string[] = () => []) {
  return (req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const path = req.url.split('?')[0] ?? ''
    const shown = path.length > 200 ? `${path.slice(0, 197)}...` : path
    const methods = allowed(path)
    // NB: a route that exists for this method and calls not-found itself (an unknown asset) is a 404.
    if (methods.length > 0 && !methods.includes(req.method) && !(req.method === 'HEAD' && methods.includes('GET'))) {
      const message = `${req.method} is not allowed on ${shown}; use ${methods.join(', ')}`
      return reply
        .code(405)
        .header('allow', methods.join(', '))
        .send({ code: 'METHOD_NOT_ALLOWED', message, allowed: [...methods] } satisfies ErrorBody)
    }
    const message = methods.length > 0 ? `nothing at ${shown}` : `no route for ${req.method} ${shown}`
    return reply.code(404).send({ code: 'NOT_FOUND', message } satisfies ErrorBody)
  }
}

/** The content types the request's route takes: its schema's `consumes`, else JSON. */
function acceptedTypes(req: FastifyRequest): readonly string[] {
  const consumes = (req.routeOptions.schema as { consumes?: unknown } | undefined)?.consumes
  return Array.isArray(consumes) && consumes.length > 0 && consumes.every((c) => typeof c === 'string') ? consumes : DEFAULT_ACCEPTED
}

/** Request parts as messages name them; fastify says `querystring`. */
const PART_NAMES: Readonly<Record<string, string>> = { querystring: 'query' }

/** `body` + `/updates/3/diff` → `body.updates[3].diff`; `querystring` + `/limit` → `query.limit`. */
export function fieldPath(context: string, instancePath: string): string {
  let out = PART_NAMES[context] ?? context
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

function clip(s: string): string {
  return s.length > 100 ? `${s.slice(0, 97)}...` : s
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ')
}
