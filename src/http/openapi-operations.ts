/**
 * Every operation of the API by method and OpenAPI path: its `operationId` (what generated clients
 * name their methods) and, for the main requests, example bodies. One table, so routes stay
 * schema-only and a new route adds one line here; test/openapi.test.ts fails for a route without
 * an entry and for an entry without a route.
 *
 * NB: operationIds are part of the contract: renaming one renames a method in every generated
 * client. Examples are checked against the schemas by `redocly lint` and sent to a real server by
 * the tests, so they stay valid requests.
 */

export interface RequestExample {
  readonly summary: string
  readonly value: unknown
}

export interface OperationDoc {
  readonly operationId: string
  /** Example JSON request bodies by name. */
  readonly examples?: Readonly<Record<string, RequestExample>>
}

/** Keyed by `<method> <path>`, method in lower case, path as the document spells it (`{shardId}`). */
export const OPERATIONS: Readonly<Record<string, OperationDoc>> = {
  'get /healthz': { operationId: 'getHealth' },
  'get /readyz': { operationId: 'getReadiness' },
  'get /metrics': { operationId: 'getMetrics' },
  'get /openapi.json': { operationId: 'getOpenApiDocument' },

  'get /v1/configs': { operationId: 'listConfigs' },
  'patch /v1/configs': {
    operationId: 'updateConfigs',
    examples: {
      pause: { summary: 'Pause compaction (the kill switch)', value: { compaction_process_requests: false } },
      tune: {
        summary: 'Change several configs at once, all or nothing',
        value: { persist_compaction_minimum_timeout: '2m', compaction_concurrency_limit: 4, compaction_queue_size: 50 },
      },
    },
  },
  'get /v1/configs/history': { operationId: 'listConfigHistory' },
  'get /v1/configs/{name}': { operationId: 'getConfig' },

  'get /v1/shards': { operationId: 'listShards' },
  'post /v1/shards': {
    operationId: 'createShard',
    examples: {
      u64: {
        summary: 'A shard with u64 times, utf8 keys and int64 values',
        value: { name: 'clicks', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } },
      },
      product: {
        summary: 'A shard with product times [a, b] and struct values',
        value: {
          name: 'orders',
          timestamp: 'product',
          keySchema: { type: 'int64' },
          valSchema: { type: 'struct', fields: [{ name: 'amount', type: { type: 'float64' }, nullable: false }, { name: 'note', type: { type: 'utf8' }, nullable: true }] },
        },
      },
    },
  },
  'get /v1/shards/{shardId}': { operationId: 'getShard' },
  'get /v1/shards/{shardId}/spine': { operationId: 'getShardSpine' },
  'delete /v1/shards/{shardId}': { operationId: 'deleteShard' },
  'post /v1/shards/{shardId}/schemas': { operationId: 'registerSchema' },
  'post /v1/shards/{shardId}/since': { operationId: 'downgradeSince' },
  'post /v1/shards/{shardId}/gc': { operationId: 'collectGarbage' },

  'post /v1/shards/{shardId}/batches': {
    operationId: 'writeBatch',
    examples: {
      append: {
        summary: 'Append updates in [0, 5): two versions of one row',
        value: {
          lower: [0],
          upper: [5],
          updates: [
            { key: 'a', val: 1, time: 1, diff: 1 },
            { key: 'a', val: 1, time: 3, diff: 2 },
          ],
        },
      },
      write: {
        summary: 'Write a batch without appending it (append it later with /append)',
        value: { lower: [5], upper: [10], updates: [{ key: 'b', val: 2, time: 7, diff: 1 }], append: false },
      },
    },
  },
  'post /v1/shards/{shardId}/append': { operationId: 'appendBatch' },
  'get /v1/shards/{shardId}/snapshot': { operationId: 'readSnapshot' },
  'get /v1/shards/{shardId}/parts/{writerKey}/{partId}': { operationId: 'getPart' },

  'post /v1/shards/{shardId}/compactions': {
    operationId: 'submitCompaction',
    examples: {
      batch: { summary: 'Compact the spine batch [0, 5) and wait for the result', value: { desc: { lower: [0], upper: [5] }, wait: true } },
      plan: { summary: 'Only plan the compaction of the whole trace', value: { dryRun: true } },
      deadline: { summary: 'Compact the whole trace, giving up if not started within 30 s', value: { deadline: '30s' } },
    },
  },
  'post /v1/compact': { operationId: 'compactBatches' },
  'get /v1/compactions': { operationId: 'listCompactions' },
  'get /v1/compactions/{id}': { operationId: 'getCompaction' },
  'delete /v1/compactions/{id}': { operationId: 'cancelCompaction' },
  'get /v1/compactions/{id}/events': { operationId: 'streamCompactionEvents' },
  'get /v1/instances': { operationId: 'listInstances' },
}

/** The table key of an operation. */
export const operationKey = (method: string, path: string): string => `${method.toLowerCase()} ${path}`
