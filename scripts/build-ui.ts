/**
 * `npm run build:ui` (run by `npm start` and `npm test` first): bundles the console (ui/src) with
 * esbuild into dist/ui/: `console-<hash>.js`, `console-<hash>.css`, `index.html` naming them, and
 * `manifest.json` listing the files routes/ui.ts serves. Everything the page needs is in those
 * files: no CDN, no web fonts. The folder is generated (gitignored), rebuilt whole each time.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const OUT = join(ROOT, 'dist', 'ui')

await rm(OUT, { recursive: true, force: true })
await mkdir(OUT, { recursive: true })

const result = await build({
  entryPoints: { console: join(ROOT, 'ui', 'src', 'main.tsx') },
  outdir: OUT,
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
  absWorkingDir: ROOT,
})

const files = Object.keys(result.metafile.outputs).map((f) => basename(f))
const js = files.find((f) => f.endsWith('.js'))
const css = files.find((f) => f.endsWith('.css'))
if (js === undefined || css === undefined) throw new Error(`build-ui: expected a .js and a .css output, got ${files.join(', ')}`)

const template = await readFile(join(ROOT, 'ui', 'index.html'), 'utf8')
const index = template.replaceAll('%JS%', `/ui/assets/${js}`).replaceAll('%CSS%', `/ui/assets/${css}`)
await writeFile(join(OUT, 'index.html'), index)
await writeFile(join(OUT, 'manifest.json'), `${JSON.stringify({ index: 'index.html', assets: files }, null, 2)}\n`)

const size = (f: string): number => result.metafile.outputs[join('dist', 'ui', f)]?.bytes ?? 0
process.stdout.write(`build-ui: ${js} ${(size(js) / 1024).toFixed(0)} KiB, ${css} ${(size(css) / 1024).toFixed(0)} KiB → dist/ui\n`)
