/** The console's entry: styles, then the root component into #root. Bundled by scripts/build-ui.ts. */
import { render } from 'preact'
import './console.css'
import { ConsoleRoot } from './console-root.js'

const root = document.getElementById('root')
if (root !== null) {
  root.replaceChildren()
  render(<ConsoleRoot />, root)
}
