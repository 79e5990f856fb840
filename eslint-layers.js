// @ts-check
/**
 * The import layers of compactd, top to bottom. A file may import its own layer's modules and any
 * layer below; never a layer above, and never a peer in the same rank (peers are independent).
 * eslint.config.js turns this table into `no-restricted-imports` rules, so an upward import fails
 * `npm run lint`; test/lint/layers.test.ts checks that it does.
 *
 * Each layer: a name (as it appears in import paths) and the files it owns.
 */
export const LAYERS = [
  [{ name: 'main', files: ['src/main.ts'] }],
  [{ name: 'app', files: ['src/app.ts'] }],
  [{ name: 'routes', files: ['routes/**/*.ts'] }],
  [{ name: 'http', files: ['src/http/**/*.ts'] }],
  [{ name: 'services', files: ['src/services.ts'] }],
  [{ name: 'settings', files: ['src/settings.ts'] }],
  [{ name: 'compact', files: ['src/compact/**/*.ts'] }],
  [{ name: 'shard', files: ['src/shard/**/*.ts'] }],
  [{ name: 'engine', files: ['src/engine/**/*.ts'] }],
  [
    { name: 'dyncfg', files: ['src/dyncfg/**/*.ts'] },
    { name: 'metrics', files: ['src/metrics/**/*.ts'] },
  ],
  [
    { name: 'trace', files: ['src/trace/**/*.ts'] },
    { name: 'columnar', files: ['src/columnar/**/*.ts'] },
    { name: 'location', files: ['src/location/**/*.ts'] },
  ],
  [
    { name: 'core', files: ['src/core/**/*.ts'] },
    { name: 'errors', files: ['src/errors.ts'] },
  ],
]

/**
 * The operator clients, outside the server's layers: they speak HTTP only. `client` (the public API
 * client) imports nothing of the server; `cli` and the console (`ui`) import only `client`; no
 * server layer imports any of them.
 */
export const CLIENTS = [
  { name: 'client', files: ['src/client/**/*.ts'], may: [] },
  { name: 'cli', files: ['src/cli/**/*.ts'], may: ['client'] },
  { name: 'ui', files: ['ui/**/*.ts', 'ui/**/*.tsx'], may: ['client'] },
]

const ORDER = LAYERS.flatMap((rank) => rank.map((l) => l.name)).join(' → ')

/** An import path that names layer `name`: `../compact/x.js`, `./services.js`, `../src/shard/x.js`. */
const importOf = (name) => `^(?:\\.{1,2}/)+(?:src/)?${name}(?:/|\\.js$)`

/** One ESLint config object per layer and per client, forbidding the imports the tables above rule out. */
export function layerConfigs() {
  return LAYERS.flatMap((rank, r) =>
    rank.map((layer) => {
      const above = LAYERS.slice(0, r).flat()
      const peers = rank.filter((l) => l !== layer)
      const forbidden = [
        ...above.map((l) => ({ l, why: 'a layer above it' })),
        ...peers.map((l) => ({ l, why: 'a peer layer' })),
        ...CLIENTS.map((l) => ({ l, why: 'an operator client' })),
      ]
      return restrict(layer, forbidden)
    }),
  ).concat(
    CLIENTS.map((client) =>
      restrict(client, [
        ...LAYERS.flat().map((l) => ({ l, why: 'the server: clients speak HTTP only' })),
        ...CLIENTS.filter((c) => c !== client && !client.may.includes(c.name)).map((l) => ({ l, why: 'another client' })),
      ]),
    ),
  )
}

/** The ESLint config object forbidding `layer`'s files to import the `forbidden` layers. */
function restrict(layer, forbidden) {
  return {
    files: layer.files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: forbidden.map(({ l, why }) => ({
            regex: importOf(l.name),
            message: `${layer.name} must not import ${l.name} (${why}); imports flow one way: ${ORDER}. Move the shared piece down a layer.`,
          })),
        },
      ],
    },
  }
}
