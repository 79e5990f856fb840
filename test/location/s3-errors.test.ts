/**
 * S3 errors no retry mends are permanent (determinate, never retried, never "retry later"), against
 * the real S3-protocol server: a missing bucket, an access key the store does not know, and no
 * credentials at all (the SDK's credential chain failing, which happens before any request, so a
 * write that fails so is determinate, not "may have happened").
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { LocationError } from '../../src/location/errors.js'
import { S3Blob } from '../../src/location/s3-blob.js'
import { withBlobRetry } from '../../src/location/with-retry.js'
import { S3_TEST_BUCKET, startS3, type S3Server } from '../support/s3.js'

describe('S3Blob permanent errors', () => {
  let s3: S3Server
  before(async () => {
    s3 = await startS3()
  })
  after(() => s3?.stop())

  const blobFor = (bucket: string, client: ConstructorParameters<typeof S3Blob>[0]['client'] = {}): S3Blob =>
    new S3Blob({ bucket, endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, client })

  /** Every operation rejects with a permanent LocationError whose message matches `message`. */
  async function assertPermanent(blob: S3Blob, message: RegExp): Promise<void> {
    const ops: Array<[string, () => Promise<unknown>]> = [
      ['get', () => blob.get('k')],
      ['set', () => blob.set('k', new Uint8Array([1]))],
      ['list', async () => {
        for await (const _ of blob.list('')) void _
      }],
    ]
    for (const [name, op] of ops) {
      await assert.rejects(op, (err: unknown) => {
        assert.ok(err instanceof LocationError, `${name}: ${String(err)}`)
        assert.equal(err.kind, 'determinate', name)
        assert.equal(err.permanent, true, name)
        assert.match(err.message, message, name)
        return true
      })
    }
  }

  it('a missing bucket', async (t) => {
    const blob = blobFor('no-such-bucket')
    t.after(() => blob.close())
    await assertPermanent(blob, /the bucket does not exist \(NoSuchBucket\); create it or fix the blob URL$/)
  })

  it('an access key the store does not know', async (t) => {
    const blob = blobFor(S3_TEST_BUCKET, { credentials: { accessKeyId: 'UNKNOWN', secretAccessKey: 'x' } })
    t.after(() => blob.close())
    await assertPermanent(blob, /the store refused the request \(InvalidAccessKeyId: /)
  })

  it('no credentials', async (t) => {
    const noCredentials = async (): Promise<never> => {
      throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' })
    }
    const blob = blobFor(S3_TEST_BUCKET, { credentials: noCredentials })
    t.after(() => blob.close())
    await assertPermanent(blob, /no credentials \(Could not load credentials from any providers\); set AWS_ACCESS_KEY_ID/)
  })

  it('are not retried; a store that works is unaffected', async (t) => {
    const retries: string[] = []
    const missing = withBlobRetry(blobFor('no-such-bucket'), { onRetry: (e) => retries.push(e.op) })
    t.after(() => missing.close())
    await assert.rejects(missing.set('k', new Uint8Array([1])), (err: unknown) => err instanceof LocationError && err.permanent)
    assert.deepEqual(retries, [])
    const working = blobFor(S3_TEST_BUCKET)
    t.after(() => working.close())
    await working.set('permanent-test/k', new Uint8Array([7]))
    assert.deepEqual(await working.get('permanent-test/k'), new Uint8Array([7]))
  })
})
