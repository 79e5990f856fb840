/**
 * Serving the console (routes/ui.ts): `/` redirects to `/ui`, the page and its hashed assets come
 * from the build with cache and security headers, nothing else under /ui/assets is reachable, no
 * token is needed for the page while /v1 still needs one, and none of it is in the OpenAPI document.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp } from '../helper.js'

const TOKEN = 'ui-route-test-token-0123456789'

describe('the console route', () => {
  it('redirects / and /ui/ to /ui, which needs no token', async (t) => {
    const { app } = await buildTestApp({ t, settings: { authTokens: [TOKEN] } })
    const root = await app.inject({ url: '/' })
    assert.equal(root.statusCode, 302)
    assert.equal(root.headers.location, '/ui')
    assert.equal((await app.inject({ url: '/ui/' })).headers.location, '/ui')
    const page = await app.inject({ url: '/ui' })
    assert.equal(page.statusCode, 200)
    assert.match(String(page.headers['content-type']), /^text\/html/)
    assert.match(page.body, /<div id="root">/)
    assert.equal((await app.inject({ url: '/v1/configs' })).statusCode, 401, 'the API still needs the token')
  })

  it('serves the bundle the page names, with hashes, caching and a strict CSP', async (t) => {
    const { app } = await buildTestApp({ t })
    const page = await app.inject({ url: '/ui' })
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/)
    assert.equal(page.headers['cache-control'], 'no-cache')
    const assets = [...page.body.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1] as string)
    assert.equal(assets.length, 2, page.body)
    for (const url of assets) {
      const res = await app.inject({ url })
      assert.equal(res.statusCode, 200, url)
      assert.match(url, /console-[A-Z0-9]+\.(js|css)$/)
      assert.match(String(res.headers['content-type']), url.endsWith('.js') ? /^text\/javascript/ : /^text\/css/)
      assert.match(String(res.headers['cache-control']), /immutable/)
      assert.ok(res.body.length > 1000)
      const again = await app.inject({ url, headers: { 'if-none-match': String(res.headers.etag) } })
      assert.equal(again.statusCode, 304)
    }
    const js = await app.inject({ url: assets.find((a) => a.endsWith('.js')) ?? '' })
    assert.doesNotMatch(js.body, /https?:\/\/(?!127\.0\.0\.1|localhost|www\.w3\.org)[a-z0-9.-]+\.[a-z]{2,}\//i, 'the bundle loads nothing from the internet')
  })

  it('answers 404 for anything but a built asset, and 400 for a malformed name', async (t) => {
    const { app } = await buildTestApp({ t })
    assert.equal((await app.inject({ url: '/ui/assets/console-NOPE.js' })).statusCode, 404)
    assert.equal((await app.inject({ url: '/ui/assets/manifest.json' })).statusCode, 404)
    assert.equal((await app.inject({ url: '/ui/assets/..%2Fmanifest.json' })).statusCode, 400)
    assert.equal((await app.inject({ url: '/ui/other' })).statusCode, 404)
  })

  it('stays out of the OpenAPI document', async (t) => {
    const { app } = await buildTestApp({ t })
    const doc = (await app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, unknown> }
    assert.deepEqual(Object.keys(doc.paths).filter((p) => p === '/' || p.startsWith('/ui')), [])
  })
})
