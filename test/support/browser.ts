/**
 * Debian's chromium, driven by playwright-core, for tests that use the console as an operator
 * would. Headless, sandbox off (tests run as root in CI), no background traffic, and a fresh
 * profile per launch (playwright makes a temporary one and removes it at close; it refuses a
 * `--user-data-dir` flag for that reason). `checkA11y` runs axe-core in the page.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { chromium, type Browser, type Page } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export interface TestBrowser {
  readonly browser: Browser
  close(): Promise<void>
}

export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  })
  let closing: Promise<void> | undefined
  return {
    browser,
    close: () => (closing ??= browser.close()),
  }
}

const require = createRequire(import.meta.url)
/** NB: evaluated through the DevTools protocol, which the page's CSP (no inline scripts) does not block. */
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')

export interface A11yViolation {
  readonly id: string
  readonly impact: string | null
  readonly help: string
  readonly targets: readonly string[]
}

/** axe-core's WCAG 2.x A/AA rules on the page as it is now; the violations of `impacts`. */
export async function checkA11y(page: Page, impacts: readonly string[] = ['serious', 'critical']): Promise<A11yViolation[]> {
  await page.evaluate(AXE_SOURCE)
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[] }> } }).axe
    const result = await axe.run((globalThis as unknown as { document: unknown }).document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => JSON.stringify(n.target)) }))
  })
  return violations.filter((v) => v.impact !== null && impacts.includes(v.impact))
}
