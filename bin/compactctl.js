#!/usr/bin/env node
// compactctl: the launcher `npx compactctl` runs. It loads the TypeScript CLI through tsx (a
// dependency), as `npm start` runs the server, so no build step is needed. See docs/cli.md.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/compactctl.ts')
