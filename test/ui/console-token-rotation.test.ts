/**
 * The console over HTTPS while the server's tokens rotate, as with a token file: signed in with
 * the old token, it keeps working while both are accepted; once the old one is removed, the next
 * poll's 401 brings the sign-in form back with the reason. An operator who removed it too early
 * puts it back and enters the same token again: the console checks it again and opens (it used to
 * do nothing, the token being the one it already had).
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import { BearerTokens } from '../../src/http/auth.js'
import { buildTestApp } from '../helper.js'
import { launchBrowser } from '../support/browser.js'
import { tlsPairOf } from '../support/tls.js'

const WAIT = { timeout: 30_000 }
const OLD = 'old-console-token-0123456789'
const NEW = 'new-console-token-0123456789'

describe('the console while the token rotates', { timeout: 180_000 }, () => {
  it('asks again when its token stops working, and takes the same token once it works again', async (t) => {
    const { pair } = await tlsPairOf(t, 'console')
    const tokens = new BearerTokens([OLD])
    const { app } = await buildTestApp({ t, settings: { authTokens: [OLD], workers: 1 }, services: { gcIntervalMs: null }, tls: pair, bearerTokens: tokens })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const url = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`

    const browser = await launchBrowser()
    t.after(() => browser.close())
    // NB: the test's certificate is self-signed; the browser is told to take it.
    const context = await browser.browser.newContext({ ignoreHTTPSErrors: true })
    const page = await context.newPage()
    const pageErrors: string[] = []
    page.on('pageerror', (e) => pageErrors.push(e.message))

    await page.goto(`${url}/ui`)
    await page.getByLabel('Bearer token').fill(OLD)
    await page.getByRole('button', { name: 'Open the console' }).click()
    await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT)

    // Both accepted: the console goes on.
    tokens.replace([OLD, NEW])
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Configs' }).click()
    await page.getByRole('heading', { name: 'Configs' }).first().waitFor(WAIT)
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click()
    await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT)

    // The old one removed (too early): the overview's next poll is refused, and the form says so.
    tokens.replace([NEW])
    await page.getByText('The server refused the token; enter it again.').waitFor(WAIT)
    assert.equal(await page.getByRole('heading', { name: 'Overview' }).count(), 0, 'the form, not a view of errors')

    // Put back, and entered again: checked again, and in.
    tokens.replace([OLD, NEW])
    await page.getByLabel('Bearer token').fill(OLD)
    await page.getByRole('button', { name: 'Open the console' }).click()
    await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT)

    // The old one gone for good: the new one opens it.
    tokens.replace([NEW])
    await page.getByText('The server refused the token; enter it again.').waitFor(WAIT)
    await page.getByLabel('Bearer token').fill(NEW)
    await page.getByRole('button', { name: 'Open the console' }).click()
    await page.getByRole('heading', { name: 'Overview' }).waitFor(WAIT)
    assert.deepEqual(pageErrors, [])
  })
})
