import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AppError } from '../../src/errors.js'
import { fieldPath, INTERNAL_MESSAGE, STORAGE_FULL_MESSAGE, STORAGE_MESSAGE, STORAGE_PERMANENT_MESSAGE, toErrorReply } from '../../src/http/error-handler.js'
import { determinate, indeterminate, noSpace, permanent } from '../../src/location/errors.js'

describe('toErrorReply', () => {
  it('keeps an AppError’s code, status, message and extras; code and message win over extras', () => {
    const r = toErrorReply(new AppError('QUEUE_FULL', 'the compaction queue is full', { queueDepth: 20, code: 'X' }))
    assert.deepEqual(r, { status: 429, body: { queueDepth: 20, code: 'QUEUE_FULL', message: 'the compaction queue is full' }, internal: false, log: 'info' })
  })

  it('marks 5xx AppErrors internal but keeps their message; logs a state of the server (the kill switch) as a warning, a fault as an error', () => {
    const r = toErrorReply(new AppError('COMPACTION_DISABLED', 'compaction disabled'))
    assert.equal(r.status, 503)
    assert.equal(r.body.message, 'compaction disabled')
    assert.equal(r.internal, true)
    assert.equal(r.log, 'warn')
    assert.equal(toErrorReply(new AppError('DATA_LOSS', 'part missing')).log, 'error')
  })

  it('maps a storage error to 503 STORAGE_ERROR without its message', () => {
    for (const err of [determinate('ENOSPC at /data/blob/x'), indeterminate('socket hang up talking to 10.0.0.5')]) {
      const r = toErrorReply(err)
      assert.equal(r.status, 503)
      assert.deepEqual(r.body, { code: 'STORAGE_ERROR', message: STORAGE_MESSAGE, kind: err.kind, permanent: false })
    }
  })

  it('says a permanent storage error needs an operator, never "retry later"', () => {
    const r = toErrorReply(permanent('s3 blob get "k": no credentials'))
    assert.equal(r.status, 503)
    assert.deepEqual(r.body, { code: 'STORAGE_ERROR', message: STORAGE_PERMANENT_MESSAGE, kind: 'determinate', permanent: true })
    assert.doesNotMatch(r.body.message, /retry/)
  })

  it('answers a store with no space left 507 INSUFFICIENT_STORAGE: nothing was written, free space and retry', () => {
    const r = toErrorReply(noSpace('file blob set "s1/w/p": no space left under /data/blob'))
    assert.equal(r.status, 507)
    assert.deepEqual(r.body, { code: 'INSUFFICIENT_STORAGE', message: STORAGE_FULL_MESSAGE, kind: 'determinate' })
    assert.equal(r.internal, true)
    assert.doesNotMatch(r.body.message, /\/data/)
  })

  it('names the content type sent and the ones accepted in a 415', () => {
    const fst = Object.assign(new Error('Unsupported Media Type'), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' })
    assert.deepEqual(toErrorReply(fst, { contentType: 'text/csv', accepted: ['application/json', 'application/vnd.apache.arrow.stream'] }).body, {
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: 'content type "text/csv" is not accepted here; send one of application/json, application/vnd.apache.arrow.stream',
      accepted: ['application/json', 'application/vnd.apache.arrow.stream'],
    })
    assert.deepEqual(toErrorReply(fst).body, {
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: 'a body without a content type is not accepted here; send application/json',
      accepted: ['application/json'],
    })
  })

  it('maps fastify-style client errors by status', () => {
    const fst = (statusCode: number, code: string, message: string) => Object.assign(new Error(message), { statusCode, code })
    assert.deepEqual(toErrorReply(fst(413, 'FST_ERR_CTP_BODY_TOO_LARGE', 'Request body is too large')).body, {
      code: 'PAYLOAD_TOO_LARGE',
      message: 'Request body is too large',
    })
    assert.equal(toErrorReply(fst(400, 'FST_ERR_CTP_INVALID_JSON_BODY', 'bad')).body.code, 'BAD_REQUEST')
    const odd = toErrorReply(fst(418, 'FST_SOMETHING', 'teapot'))
    assert.equal(odd.status, 400)
    assert.equal(odd.body.code, 'BAD_REQUEST')
  })

  it('hides everything else behind 500 INTERNAL', () => {
    for (const err of [new Error('secret /etc/passwd'), new TypeError('x is undefined'), 'a string', null, Object.assign(new Error('boom'), { statusCode: 502 })]) {
      assert.deepEqual(toErrorReply(err), { status: 500, body: { code: 'INTERNAL', message: INTERNAL_MESSAGE }, internal: true, log: 'error' })
    }
  })
})

describe('fieldPath', () => {
  const table: Array<[string, string, string]> = [
    ['body', '', 'body'],
    ['body', '/since', 'body.since'],
    ['body', '/updates/3/diff', 'body.updates[3].diff'],
    ['querystring', '/limit', 'query.limit'],
    ['headers', '/idempotency-key', 'headers.idempotency-key'],
    ['params', '/shardId', 'params.shardId'],
  ]
  for (const [context, path, expected] of table) it(`${context} ${path || '(root)'} → ${expected}`, () => assert.equal(fieldPath(context, path), expected))
})
