/**
 * Types of the compactd HTTP API, generated from openapi/openapi.json by openapi-typescript
 * (`npm run openapi`). Do not edit. Use with openapi-fetch:
 *   import createClient from 'openapi-fetch'
 *   const client = createClient<paths>({ baseUrl: 'http://127.0.0.1:6880' })
 */
export interface paths {
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Liveness
         * @description Answers as long as the process serves HTTP; does no I/O.
         */
        get: operations["getHealth"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/metrics": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Prometheus metrics
         * @description Every compactd family and Node process metrics, in the Prometheus text format; docs/metrics.md in the repository describes each.
         */
        get: operations["getMetrics"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/openapi.json": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * OpenAPI document
         * @description This document; the same bytes as the committed openapi/openapi.json.
         */
        get: operations["getOpenApiDocument"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Readiness
         * @description Probes the blob and consensus stores (a read of a key that never exists, each with a short timeout; a file store must also have 1 MiB free on its file system, or writes are about to be refused) and the scheduler.
         */
        get: operations["getReadiness"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/compact": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Compact inputs and return the output, without heuristics or apply */
        post: operations["compactBatches"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/compactions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The cluster's compactions, newest first, a page at a time
         * @description Every instance lists the same compactions: queued, running (on any instance) and finished ones younger than compaction_history_retention.
         */
        get: operations["listCompactions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/compactions/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One compaction */
        get: operations["getCompaction"];
        put?: never;
        post?: never;
        /** Cancel a compaction (queued: removed; running: aborted, outputs deleted) */
        delete: operations["cancelCompaction"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/compactions/{id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Server-sent events of one compaction's progress
         * @description `progress` events carrying the Compaction (the current one first), then one `done` carrying the final one. When the answering instance stops first, a last `error` event carries `{code, message}`: follow the compaction on another instance. A queued compaction that cannot start because the job store has no space left ends the stream the same way, with INSUFFICIENT_STORAGE. After 15 s without an event comes a `: keep-alive` comment line (ignored by SSE readers), so proxies do not close a quiet stream.
         */
        get: operations["streamCompactionEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/configs": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Every dynamic config with its current value */
        get: operations["listConfigs"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /** Set dynamic configs atomically; returns the ones that changed */
        patch: operations["updateConfigs"];
        trace?: never;
    };
    "/v1/configs/history": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The audit history of config changes, newest first */
        get: operations["listConfigHistory"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/configs/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One dynamic config */
        get: operations["getConfig"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/instances": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The live instances of the cluster
         * @description Every instance sharing this consensus store that sent a heartbeat recently, by id.
         */
        get: operations["listInstances"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Shards, a page at a time: oldest first, or by name
         * @description Without name filters: live shards oldest first (ids made before ids were time-ordered sort by id). namePrefix: named shards whose name starts with it, in name order. name: the shard with exactly that name.
         */
        get: operations["listShards"];
        put?: never;
        /** Create a shard */
        post: operations["createShard"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards/{shardId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** One shard with its schemas, trace and stats */
        get: operations["getShard"];
        put?: never;
        post?: never;
        /**
         * Delete a shard
         * @description Turns the shard into a tombstone: from then on reads, writes, schemas, since, GC and compactions of it answer 410 SHARD_DELETED, its name is free for a new shard, and GC deletes its blobs. Deleting it again is 410.
         */
        delete: operations["deleteShard"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards/{shardId}/append": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Compare-and-append a batch written earlier with append false
         * @description Every part is checked against blob storage first. On 409 the batch stays unappended (its parts are collected by GC after the grace period).
         */
        post: operations["appendBatch"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards/{shardId}/batches": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Write a batch, and compare-and-append it unless append is false
         * @description Rows are validated against the latest schema and [lower, upper), sorted (unless they come sorted) and consolidated, cut into parts of about persist_blob_target_size (small parts inline in state), as the body arrives. JSON body, or an Arrow IPC stream with lower, upper, append and expectedUpper as JSON query parameters. Sorted rows make one run; unsorted rows make one run per persist_blob_target_size of them. In a JSON body, put lower and upper before updates: rows that come before them wait in memory.
         */
        post: operations["writeBatch"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards/{shardId}/compactions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Submit a compaction request */
        post: operations["submitCompaction"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards/{shardId}/gc": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Run a GC pass over the shard now
         * @description Deletes blobs no live state references once the grace period has passed, and truncates state versions no reader of this instance needs.
         */
        post: operations["collectGarbage"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards/{shardId}/parts/{writerKey}/{partId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * One part as stored (unconsolidated)
         * @description JSON, or with "accept: application/vnd.apache.arrow.stream" the rows as an Arrow IPC stream.
         */
        get: operations["getPart"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards/{shardId}/schemas": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Register the next schema
         * @description Allowed evolutions: add nullable fields, make fields nullable. Registering the latest schema again returns its id.
         */
        post: operations["registerSchema"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards/{shardId}/since": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Downgrade the since (monotone)
         * @description Answers the shard as GET /v1/shards/{shardId} does, which lists every hollow batch and part (megabytes for a long trace); with view=summary, its summary as a listing shows it. A client that moves the since often and needs only the new frontiers asks for the summary.
         */
        post: operations["downgradeSince"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards/{shardId}/snapshot": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Read the shard at asOf: consolidated, sorted, streamed
         * @description Every update at or before asOf with its time advanced to asOf. JSON, or with "accept: application/vnd.apache.arrow.stream" an Arrow IPC stream with columns k, v, t, d.
         */
        get: operations["readSnapshot"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/shards/{shardId}/spine": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * One shard with its spine batches counted, not listed
         * @description The shard as GET /v1/shards/{shardId} shows it but for its schemas and hollow batches: each spine batch carries its counts (stats) instead of its batches and their parts. Its size grows with the spine (a few spine batches per level), not with the trace: a view of the spine of a shard whose compaction fell behind reads kilobytes, where the whole shard is megabytes.
         */
        get: operations["getShardSpine"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /** @description A frontier: mutually incomparable timestamps, e.g. [5], [], [[0,11],[10,0]]. */
        Antichain: components["schemas"]["Timestamp"][];
        AppendBatch: {
            batch: components["schemas"]["HollowBatch"];
            /** @description The shard's upper the append expects; default the batch's lower. */
            expectedUpper?: components["schemas"]["Antichain"];
        };
        AppendResult: {
            /** @constant */
            appended: true;
            seqno: number;
            upper: components["schemas"]["Antichain"];
        };
        CompactOnly: {
            desc: components["schemas"]["Description"];
            inputs: components["schemas"]["HollowBatch"][];
            shardId: string;
            writerSchemaId?: number;
        };
        Compaction: {
            /** @description 1 for the first run; counts up when a lost run is started again. */
            attempt: number;
            createdAt: string;
            desc: components["schemas"]["Description"];
            error?: {
                code: string;
                message: string;
            };
            finishedAt?: string;
            id: string;
            inputs: {
                batches: number;
                encodedBytes: number;
                parts: number;
                runs: number;
                updates: number;
            };
            /** @description The instance running it; null while queued. */
            instance: string | null;
            /**
             * @description merges: complete the merges in progress; major: merge whole spine batches into one at the shard's since; range: one merge of given or tiled inputs.
             * @enum {string}
             */
            kind: "merges" | "major" | "range";
            merges: {
                /** @description Consecutive chunks of one merge that fared alike, as one entry: desc spans them, inputs sums theirs. Absent: one. */
                chunks?: number;
                desc: components["schemas"]["Description"];
                inputs: {
                    batches: number;
                    encodedBytes: number;
                    parts: number;
                    runs: number;
                    updates: number;
                };
                reason?: components["schemas"]["CompactionReason"];
                /** @enum {string} */
                result: "applied_exact" | "applied_subset" | "not_applied_no_match" | "not_applied_invalid_since" | "not_applied_too_many_updates";
            }[];
            output?: components["schemas"]["HollowBatch"];
            progress: {
                bytesRead: number;
                bytesWritten: number;
                /** @description Chunks whose output is in the trace. */
                chunksApplied: number;
                chunksDone: number;
                chunksTotal: number;
                /** @description Seconds left at the rate so far; null until something was read. */
                etaSeconds: number | null;
                /** @description Share of the input updates read, 0..1; never falls; 1 once finished. */
                fraction: number;
                partsWritten: number;
                updatesRead: number;
                updatesWritten: number;
            };
            /** @description Why it was skipped or did not apply (all or in part). */
            reason?: components["schemas"]["CompactionReason"];
            /**
             * @description The apply outcome, for a compaction of one merge.
             * @enum {string}
             */
            result?: "applied_exact" | "applied_subset" | "not_applied_no_match" | "not_applied_invalid_since" | "not_applied_too_many_updates";
            /** @enum {string} */
            schemaSelection?: "recent_schema" | "disabled" | "no_schema";
            shardId: string;
            /** @enum {string} */
            source: "request" | "maintenance";
            startedAt?: string;
            /**
             * @description not_applied: it ran to its end but nothing it was asked to change changed (see reason).
             * @enum {string}
             */
            status: "queued" | "running" | "succeeded" | "not_applied" | "failed" | "cancelled" | "skipped";
            timeoutMs?: number;
            writerSchemaId: number;
        };
        /** @description What a compaction would do (dryRun): its runs in the order its chunks read them, and its chunks (batch-granular with incremental compaction, as chunk_runs makes them without). */
        CompactionPlan: {
            plan: {
                chunks: {
                    desc: components["schemas"]["Description"];
                    /**
                     * @description How its output (desc: its output's description) reaches the trace: combined (with every other chunk's, as one output: incremental compaction off), batches (alone, in place of the whole input batches it merges), runs (alone, in place of the runs it merges of one input batch too large for one chunk).
                     * @enum {string}
                     */
                    kind: "combined" | "batches" | "runs";
                    memoryBytes: number;
                    /** @description Indices into runs */
                    runs: number[];
                }[];
                heuristic: {
                    inputs: number;
                    parts: number;
                    updates: number;
                    wouldCompact: boolean;
                };
                /** @enum {string} */
                kind: "merges" | "major" | "range";
                memoryViolations: number;
                /** @description Each merge's plan; the fields above repeat the first's. */
                merges: {
                    chunks: {
                        desc: components["schemas"]["Description"];
                        /**
                         * @description How its output (desc: its output's description) reaches the trace: combined (with every other chunk's, as one output: incremental compaction off), batches (alone, in place of the whole input batches it merges), runs (alone, in place of the runs it merges of one input batch too large for one chunk).
                         * @enum {string}
                         */
                        kind: "combined" | "batches" | "runs";
                        memoryBytes: number;
                        /** @description Indices into runs */
                        runs: number[];
                    }[];
                    desc: components["schemas"]["Description"];
                    heuristic: {
                        inputs: number;
                        parts: number;
                        updates: number;
                        wouldCompact: boolean;
                    };
                    memoryViolations: number;
                    runs: {
                        encodedBytes: number;
                        exploded: boolean;
                        input: number;
                        maxPartBytes: number;
                        order: ("structured" | "codec" | "unordered") | null;
                        parts: number;
                        schemaId: number | null;
                    }[];
                    schemaId: number;
                    /** @enum {string} */
                    schemaSelection: "recent_schema" | "disabled" | "no_schema";
                    timeoutMs: number;
                }[];
                runs: {
                    encodedBytes: number;
                    exploded: boolean;
                    input: number;
                    maxPartBytes: number;
                    order: ("structured" | "codec" | "unordered") | null;
                    parts: number;
                    schemaId: number | null;
                }[];
                schemaId: number;
                /** @enum {string} */
                schemaSelection: "recent_schema" | "disabled" | "no_schema";
                timeoutMs: number;
            };
        };
        CompactionReason: {
            /** @enum {string} */
            code: "BELOW_HEURISTICS" | "NOTHING_TO_COMPACT" | "SPINE_MOVED" | "INVALID_SINCE" | "TOO_MANY_UPDATES" | "NOT_A_COMPACTION" | "SHARD_DELETED" | "SUPERSEDED" | "PARTIALLY_APPLIED" | "APPLIED_EARLIER";
            message: string;
        };
        Config: {
            /** @description bool: a JSON boolean; count and bytes: an integer; duration: a canonical string like "90s"; enum: one of its options. */
            default: boolean | number | string;
            description: string;
            name: string;
            /** @enum {string} */
            type: "bool" | "count" | "bytes" | "duration" | "enum";
            /** @description bool: a JSON boolean; count and bytes: an integer; duration: a canonical string like "90s"; enum: one of its options. */
            value: boolean | number | string;
        };
        ConfigChange: {
            /** @description ISO 8601 time of the update */
            at: string;
            name: string;
            /** @description bool: a JSON boolean; count and bytes: an integer; duration: a canonical string like "90s"; enum: one of its options. */
            new: boolean | number | string;
            /** @description bool: a JSON boolean; count and bytes: an integer; duration: a canonical string like "90s"; enum: one of its options. */
            old: boolean | number | string;
        };
        CreateShard: {
            keySchema: components["schemas"]["Type"];
            /** @description Unique among shards not deleted (empty: no name, any number of shards); at most 100 bytes of UTF-8, no control characters. Default empty. */
            name?: string;
            /**
             * @description u64: totally ordered; product: pairs [a, b] with the product order.
             * @enum {string}
             */
            timestamp: "u64" | "product";
            valSchema: components["schemas"]["Type"];
        };
        DeletedShard: {
            /** @description When it was deleted (ISO 8601). */
            deletedAt: string;
            shardId: string;
        };
        Description: {
            lower: components["schemas"]["Antichain"];
            since: components["schemas"]["Antichain"];
            upper: components["schemas"]["Antichain"];
        };
        DowngradeSince: {
            since: components["schemas"]["Antichain"];
        };
        /** @description An error: a code, a message, and extra fields some codes carry. */
        Error: {
            /**
             * @description Machine-readable error code
             * @enum {string}
             */
            code: "BAD_REQUEST" | "UNAUTHORIZED" | "NOT_FOUND" | "METHOD_NOT_ALLOWED" | "CONFIG_NOT_FOUND" | "INVALID_CONFIG" | "SHARD_NOT_FOUND" | "SHARD_DELETED" | "SHARD_NAME_TAKEN" | "SCHEMA_INCOMPATIBLE" | "SINCE_REGRESSION" | "INVALID_BATCH" | "UPPER_MISMATCH" | "AS_OF_NOT_AVAILABLE" | "PART_NOT_FOUND" | "DATA_LOSS" | "INVALID_COMPACTION" | "COMPACTION_NOT_FOUND" | "ALREADY_FINISHED" | "QUEUE_FULL" | "PAYLOAD_TOO_LARGE" | "UNSUPPORTED_MEDIA_TYPE" | "HEADERS_TOO_LARGE" | "REQUEST_TIMEOUT" | "COMPACTION_DISABLED" | "TIMED_OUT" | "DEADLINE_EXCEEDED" | "CANCELLED" | "STORAGE_ERROR" | "INSUFFICIENT_STORAGE" | "SERVICE_UNAVAILABLE" | "INTERNAL";
            /** @description Human sentence naming the field or rule */
            message: string;
        } & {
            [key: string]: unknown;
        };
        GcResult: {
            deletedBytes: number;
            deletedParts: number;
            /** @description Every state version below this seqno is gone. */
            truncatedBelowSeqno: number;
        };
        /** @description The process is alive. */
        Health: {
            /** @constant */
            status: "ok";
        };
        HollowBatch: {
            desc: components["schemas"]["Description"];
            len: number;
            parts: components["schemas"]["Part"][];
            runMeta?: {
                order?: ("structured" | "codec" | "unordered") | null;
                schemaId?: number | null;
            }[];
            runSplits?: number[];
        };
        Instance: {
            /**
             * Format: date-time
             * @description Its last heartbeat; an instance missing three is no longer listed.
             */
            heartbeatAt: string;
            /** @description COMPACTD_INSTANCE_ID, or the host name and a random suffix. */
            id: string;
            /** @description Compactions it was running at its last heartbeat. */
            running: number;
            /** @description The instance that answered. */
            self: boolean;
            /** Format: date-time */
            startedAt: string;
            /** @description The shard state version formats it reads: 1 whole, 2 delta. Absent for a build from before state deltas, which reads whole versions only; while such an instance is live, every instance writes whole versions. */
            stateFormats?: number[];
            version: string;
        };
        Part: {
            diffsSum?: (number | string) | null;
            encodedSizeBytes: number;
            /** @description <writerKey>/<partId> */
            key: string;
            keyLower?: string;
            schemaId?: number | null;
            stats?: {
                /** @description bytes of the largest record batch, for a part written in several (compaction reads it a batch at a time) */
                batchBytes?: number;
                updates: number;
            };
        } | {
            inline: {
                encodedSizeBytes: number;
                /** @description base64 Arrow IPC file */
                updates: string;
            };
        };
        PartContents: {
            desc: components["schemas"]["Description"];
            key: string;
            /** @enum {string} */
            order: "structured" | "codec" | "unordered";
            schemaId: number;
            updates: components["schemas"]["Update"][];
        };
        ReaderLease: {
            /** @description When it lapses unless renewed (ISO 8601). An expired lease protects nothing and is dropped by the next GC. */
            expiresAt: string;
            /** @description The lease's id: one per instance process, shared by all its reads of the shard. */
            id: string;
            /** @description The id of the instance holding it (COMPACTD_INSTANCE_ID). */
            instance: string;
            /** @description The oldest state version its reads may still use: GC keeps the parts of every version from here to the head. */
            seqno: number;
        };
        /** @description Each dependency, probed with a cheap real operation. */
        Readiness: {
            checks: {
                /** @description "ok", or a one-line sentence saying what failed */
                blob: string;
                /** @description "ok", or a one-line sentence saying what failed */
                consensus: string;
                /** @description The scheduler's state, e.g. "running" */
                scheduler: string;
            };
            /** @enum {string} */
            status: "ready" | "not_ready";
        };
        /** @description The next schema: the latest with nullable fields added or fields made nullable. */
        RegisterSchema: {
            keySchema: components["schemas"]["Type"];
            valSchema: components["schemas"]["Type"];
        };
        SchemaId: {
            id: number;
        };
        Shard: {
            /** @description Reader leases in the shard's state: snapshot reads in flight (or recent) on each instance. */
            leases: components["schemas"]["ReaderLease"][];
            name: string;
            schemas: {
                id: number;
                keySchema: components["schemas"]["Type"];
                valSchema: components["schemas"]["Type"];
            }[];
            seqno: number;
            shardId: string;
            since: components["schemas"]["Antichain"];
            stats: components["schemas"]["ShardStats"];
            /** @enum {string} */
            timestamp: "u64" | "product";
            trace: {
                batches: {
                    batches: components["schemas"]["HollowBatch"][];
                    /** @description One hollow batch of one run: no merge work left in it. */
                    compact: boolean;
                    desc: components["schemas"]["Description"];
                    id: string;
                    len: number;
                    level: number;
                }[];
                /** @description Fueling merges in progress, one per full level, lowest level first. */
                merges: {
                    id: string;
                    level: number;
                    remainingWork: number;
                    since: components["schemas"]["Antichain"];
                }[];
            };
            upper: components["schemas"]["Antichain"];
        };
        ShardPage: {
            /** @description Present when there may be more: pass it as cursor for the next page. */
            nextCursor?: string;
            shards: components["schemas"]["ShardSummary"][];
        };
        ShardSpine: {
            /** @description Reader leases in the shard's state: snapshot reads in flight (or recent) on each instance. */
            leases: components["schemas"]["ReaderLease"][];
            name: string;
            seqno: number;
            shardId: string;
            since: components["schemas"]["Antichain"];
            stats: components["schemas"]["ShardStats"];
            /** @enum {string} */
            timestamp: "u64" | "product";
            trace: {
                batches: {
                    /** @description One hollow batch of one run: no merge work left in it. */
                    compact: boolean;
                    desc: components["schemas"]["Description"];
                    id: string;
                    len: number;
                    level: number;
                    stats: components["schemas"]["SpineBatchStats"];
                }[];
                /** @description Fueling merges in progress, one per full level, lowest level first. */
                merges: {
                    id: string;
                    level: number;
                    remainingWork: number;
                    since: components["schemas"]["Antichain"];
                }[];
            };
            upper: components["schemas"]["Antichain"];
        };
        ShardStats: {
            /** @description Spine batches that are not compact: merge work the spine holds. */
            backlogBatches: number;
            /** @description Encoded bytes of those batches. */
            backlogBytes: number;
            batches: number;
            encodedBytes: number;
            parts: number;
            runs: number;
            spineBatches: number;
            /** @description Σ len: an upper bound until batches are compacted. */
            updates: number;
        };
        ShardSummary: {
            name: string;
            seqno: number;
            shardId: string;
            since: components["schemas"]["Antichain"];
            stats: components["schemas"]["ShardStats"];
            /** @enum {string} */
            timestamp: "u64" | "product";
            upper: components["schemas"]["Antichain"];
        };
        Snapshot: {
            asOf: components["schemas"]["Timestamp"];
            updates: components["schemas"]["Update"][];
        };
        /** @description Counts of the spine batch: its hollow batches, their parts and runs, Σ len, encoded bytes. */
        SpineBatchStats: {
            batches: number;
            encodedBytes: number;
            parts: number;
            runs: number;
            updates: number;
        };
        SubmitCompaction: {
            /** @description A duration counted from submission: "30s", "1500ms", "2m", or integer milliseconds. */
            deadline?: string | number;
            /** @description The range to compact: hollow batches inside one spine batch, or (with major) whole spine batches. Omitted: with major the whole trace, else every merge the spine has in progress. desc.since omitted: the join of the covered spine batches' sinces (major: the shard's since). */
            desc?: {
                lower: components["schemas"]["Antichain"];
                since?: components["schemas"]["Antichain"];
                upper: components["schemas"]["Antichain"];
            };
            /** @description Answer with the plan; queue nothing. */
            dryRun?: boolean;
            /** @description Explicit input batches (persist's CompactReq); omitted: the trace's batches that exactly tile desc. */
            inputs?: components["schemas"]["HollowBatch"][];
            /** @description Merge the whole trace (or desc, made of whole spine batches) into one batch at the shard's since. */
            major?: boolean;
            /** @description Answer when the compaction ends (200, 503, 504 or 500 with the Compaction). */
            wait?: boolean;
            /** @description The requester's schema; default the shard's latest. */
            writerSchemaId?: number;
        };
        /** @description u64: a number up to 2^53-1 or a decimal string; product: [a, b]. */
        Timestamp: number | string | [
            number,
            number
        ];
        Type: {
            /** @enum {string} */
            type: "utf8" | "binary" | "int64" | "uint64" | "float64" | "bool" | "unit";
        } | {
            fields: {
                name: string;
                nullable: boolean;
                type: components["schemas"]["Type"];
            }[];
            /** @constant */
            type: "struct";
        };
        Update: {
            /** @description A signed 64-bit integer: a number when safe, else a decimal string. */
            diff: number | string;
            key: unknown;
            time: components["schemas"]["Timestamp"];
            val: unknown;
        };
        WriteBatch: {
            /** @description Default true: compare-and-append the batch. */
            append?: boolean;
            /** @description The shard's upper the append expects; default lower. */
            expectedUpper?: components["schemas"]["Antichain"];
            lower: components["schemas"]["Antichain"];
            updates: components["schemas"]["Update"][];
            upper: components["schemas"]["Antichain"];
        };
        WriteBatchResult: {
            appended: boolean;
            batch: components["schemas"]["HollowBatch"];
            seqno?: number;
            upper?: components["schemas"]["Antichain"];
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    getHealth: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The process is alive */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getMetrics: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Prometheus text exposition format 0.0.4 */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/plain": string;
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getOpenApiDocument: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The OpenAPI 3.1 document */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        [key: string]: unknown;
                    };
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getReadiness: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Every check passed */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Some check failed; the failing ones say why */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Readiness"];
                };
            };
        };
    };
    compactBatches: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CompactOnly"];
            };
        };
        responses: {
            /** @description The output batch; its parts belong to the caller */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        output: components["schemas"]["HollowBatch"];
                    };
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Body larger than the configured limit (PAYLOAD_TOO_LARGE) */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Content type not accepted here; the message and `accepted` name those that are (UNSUPPORTED_MEDIA_TYPE) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Invalid request (INVALID_COMPACTION) */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Compaction disabled by the kill switch (COMPACTION_DISABLED), storage failed, or the compactor is stopping */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Timed out (TIMED_OUT); parts written so far were deleted */
            504: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    listCompactions: {
        parameters: {
            query?: {
                shardId?: string;
                status?: "queued" | "running" | "succeeded" | "not_applied" | "failed" | "cancelled" | "skipped";
                /** @description Only operator requests (`request`) or writer maintenance (`maintenance`). */
                source?: "request" | "maintenance";
                /** @description At most this many (default 100). */
                limit?: number;
                /** @description The page after the one whose `nextCursor` this is. */
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of compactions */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        compactions: components["schemas"]["Compaction"][];
                        /** @description Pass as cursor for the next page; null on the last page. */
                        nextCursor: string | null;
                    };
                };
            };
            /** @description A bad filter or cursor (BAD_REQUEST, naming the field) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getCompaction: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The compaction */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Compaction"];
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Unknown or forgotten (COMPACTION_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    cancelCompaction: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The compaction, cancelled */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Compaction"];
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Unknown or forgotten (COMPACTION_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Already finished, or already applying its result (ALREADY_FINISHED) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    streamCompactionEvents: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description An event stream */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": string;
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Unknown or forgotten (COMPACTION_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    listConfigs: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Every config */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        configs: components["schemas"]["Config"][];
                    };
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    updateConfigs: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** @description Config name → new value; applied all or nothing. Durations as "90s", "1500ms", "2m" or integer milliseconds. */
        requestBody: {
            content: {
                "application/json": {
                    /** @description (count) Compactions running at once on each instance. Lowering it never kills running work. */
                    compaction_concurrency_limit?: number;
                    /** @description (duration) How long finished compactions are kept for listing and idempotency keys. */
                    compaction_history_retention?: string | number;
                    /** @description (duration) How often one instance looks for shards whose spine holds merge work but that receive no appends, and submits their maintenance; 0s turns the sweep off. */
                    compaction_idle_sweep_interval?: string | number;
                    /** @description (duration) How long a running compaction's owner may go without progress before another instance takes the job over (attempt + 1). Owners renew while their compaction makes progress. */
                    compaction_lease_timeout?: string | number;
                    /** @description (bool) Whether compactd compacts on its own: writer maintenance after appends and the idle sweep. False leaves the merge work in the spine (an operator's request, or maintenance once it is true again, picks it up); operators' requests run either way, and queued and running maintenance finishes. */
                    compaction_maintenance_enabled?: boolean;
                    /** @description (bool) Kill switch: whether queued compaction requests are processed at all. */
                    compaction_process_requests?: boolean;
                    /** @description (count) Capacity of the cluster's compaction queue; a request beyond it is dropped with 429. Lowering it never drops queued work. */
                    compaction_queue_size?: number;
                    /** @description (count) Most updates the consolidator emits before yielding a chunk. */
                    compaction_yield_after_n_updates?: number;
                    /** @description (count) Part uploads a batch builder keeps in flight at once. */
                    persist_batch_builder_max_outstanding_parts?: number;
                    /**
                     * @description (enum) Sort order of written parts: structured (by decoded columns) or codec (by encoded bytes).
                     * @enum {string}
                     */
                    persist_batch_preferred_order?: "structured" | "codec";
                    /** @description (bytes) Target size of a written part; compaction cuts parts at this size. */
                    persist_blob_target_size?: number;
                    /** @description (bool) Whether compaction obeys compaction_process_requests; when false the kill switch is ignored. */
                    persist_compaction_check_process_flag?: boolean;
                    /** @description (count) Compact when a request has at least this many input batches (OR with the other heuristics). */
                    persist_compaction_heuristic_min_inputs?: number;
                    /** @description (count) Compact when the inputs have at least this many parts (OR with the other heuristics). */
                    persist_compaction_heuristic_min_parts?: number;
                    /** @description (count) Compact when the inputs have at least this many updates (OR with the other heuristics). */
                    persist_compaction_heuristic_min_updates?: number;
                    /** @description (bytes) Memory bound of one compaction; must be at least 4 × persist_blob_target_size. */
                    persist_compaction_memory_bound_bytes?: number;
                    /** @description (duration) Floor of the per-request timeout, which is otherwise 1 s per whole MiB of input. */
                    persist_compaction_minimum_timeout?: string | number;
                    /** @description (bool) Whether compaction writes with the newest schema among the inputs' runs rather than the requester's writer schema. */
                    persist_compaction_use_most_recent_schema?: boolean;
                    /** @description (bool) Apply each finished chunk of a multi-chunk compaction to the trace at once, so a crash, timeout or cancel keeps the chunks already applied and a rescued job compacts only what is left. */
                    persist_enable_incremental_compaction?: boolean;
                    /** @description (count) Concurrent blob deletes for GC and for the outputs of not-applied compactions. */
                    persist_gc_blob_delete_concurrency_limit?: number;
                    /** @description (bytes) Largest batch written inline in state rather than to blob (compaction always writes to blob). */
                    persist_inline_writes_single_max_bytes?: number;
                    /** @description (bytes) Total inline bytes allowed in a shard state before writes go to blob. */
                    persist_inline_writes_total_max_bytes?: number;
                    /** @description (duration) How long a snapshot read's lease in shard state lasts unless renewed (every quarter of it, 1s to 60s). While live it keeps the parts of the versions it holds from every instance's GC; a dead instance's lease holds GC back until it expires. 0s: no leases in state (reads then rely on the GC grace). */
                    persist_reader_lease_duration?: string | number;
                    /** @description (bool) Whether shard state versions may be written as deltas against the version before (while every live instance reads them); false writes every version whole, and GC writes a shard whose latest version is a delta again whole, so that a build that reads only whole versions can serve it (rolling back). */
                    persist_state_deltas_enabled?: boolean;
                } & {
                    [key: string]: unknown;
                };
            };
        };
        responses: {
            /** @description The configs this change set */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        configs: components["schemas"]["Config"][];
                    };
                };
            };
            /** @description INVALID_CONFIG: an unknown name or a bad value; nothing applied */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Body larger than the configured limit (PAYLOAD_TOO_LARGE) */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Content type not accepted here; the message and `accepted` name those that are (UNSUPPORTED_MEDIA_TYPE) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The change could not be stored */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    listConfigHistory: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Changes, newest first */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        changes: components["schemas"]["ConfigChange"][];
                    };
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getConfig: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The config */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Config"];
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description CONFIG_NOT_FOUND: no config has that name */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    listInstances: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The instances */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        instances: components["schemas"]["Instance"][];
                    };
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    listShards: {
        parameters: {
            query?: {
                /** @description At most this many shards (default 100). A page may hold fewer (deleted shards are skipped) and still have a nextCursor. */
                limit?: number;
                /** @description The nextCursor of the page before, as received (opaque). */
                cursor?: string;
                /** @description Exactly this name: the one shard that has it, or none. */
                name?: string;
                /** @description Names starting with this, in name order (unnamed shards are left out). */
                namePrefix?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of shards */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ShardPage"];
                };
            };
            /** @description Bad limit, cursor, name or namePrefix (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    createShard: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CreateShard"];
            };
        };
        responses: {
            /** @description The new shard */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Shard"];
                };
            };
            /** @description Invalid body, name or type (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Another shard has the name (SHARD_NAME_TAKEN, with its shardId) */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Body larger than the configured limit (PAYLOAD_TOO_LARGE) */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Content type not accepted here; the message and `accepted` name those that are (UNSUPPORTED_MEDIA_TYPE) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getShard: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                shardId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The shard */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Shard"];
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED, with deletedAt) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    deleteShard: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                shardId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The shard was deleted */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DeletedShard"];
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED, with deletedAt) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    appendBatch: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                shardId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["AppendBatch"];
            };
        };
        responses: {
            /** @description The batch is in the shard */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AppendResult"];
                };
            };
            /** @description A malformed batch, a part key of another shard, or a part that does not exist or does not match the batch (INVALID_BATCH) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description expectedUpper is not the shard upper (UPPER_MISMATCH, with "currentUpper") */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Body larger than the configured limit (PAYLOAD_TOO_LARGE) */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Content type not accepted here; the message and `accepted` name those that are (UNSUPPORTED_MEDIA_TYPE) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    writeBatch: {
        parameters: {
            query?: {
                /** @description Arrow bodies only: the batch lower, as JSON. */
                lower?: string;
                /** @description Arrow bodies only: the batch upper, as JSON. */
                upper?: string;
                /** @description Arrow bodies only; default true. */
                append?: "true" | "false";
                /** @description Arrow bodies only: the shard's upper the append expects (default lower), as JSON. */
                expectedUpper?: string;
            };
            header?: never;
            path: {
                shardId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WriteBatch"] | string;
                "application/vnd.apache.arrow.stream": components["schemas"]["WriteBatch"] | string;
            };
        };
        responses: {
            /** @description The batch, and whether it was appended */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WriteBatchResult"];
                };
            };
            /** @description A row outside [lower, upper) or not of the schema, a bad frontier or a bad Arrow stream (INVALID_BATCH, naming the first bad row), or a body that is not JSON or not shaped like a batch (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No byte of the body came for 60 s (REQUEST_TIMEOUT): the write was abandoned */
            408: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description expectedUpper is not the shard upper (UPPER_MISMATCH, with "currentUpper"); the parts written are deleted */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The body is larger than the body limit (PAYLOAD_TOO_LARGE), declared or as it arrives */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Content type not accepted here; the message and `accepted` name those that are (UNSUPPORTED_MEDIA_TYPE) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    submitCompaction: {
        parameters: {
            query?: never;
            header?: {
                /** @description A repeated key for the same shard returns the existing compaction. */
                "idempotency-key"?: string;
            };
            path: {
                shardId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SubmitCompaction"];
            };
        };
        responses: {
            /** @description Skipped (below every heuristic), the dry-run plan, or (wait) the compaction succeeded */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Compaction"] | components["schemas"]["CompactionPlan"];
                };
            };
            /** @description Queued */
            202: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Compaction"];
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Body larger than the configured limit (PAYLOAD_TOO_LARGE) */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Content type not accepted here; the message and `accepted` name those that are (UNSUPPORTED_MEDIA_TYPE) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Invalid request: non-consecutive inputs, since, foreign keys, unknown schema (INVALID_COMPACTION) */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Queue full (QUEUE_FULL), with Retry-After and queueDepth */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description (wait) the compaction failed otherwise; or an internal error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Compaction"] | components["schemas"]["Error"];
                };
            };
            /** @description (wait) compaction disabled; or storage failed, or the compactor is stopping */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Compaction"] | components["schemas"]["Error"];
                };
            };
            /** @description (wait) the compaction timed out or missed its deadline */
            504: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Compaction"];
                };
            };
            /** @description (wait) the compaction failed for lack of storage space; or the storage has no space left to queue it (INSUFFICIENT_STORAGE) */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Compaction"] | components["schemas"]["Error"];
                };
            };
        };
    };
    collectGarbage: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                shardId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description What the pass did */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["GcResult"];
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED, with deletedAt) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getPart: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                shardId: string;
                writerKey: string;
                partId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The part */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PartContents"];
                    "application/vnd.apache.arrow.stream": string;
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) or part (PART_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    registerSchema: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                shardId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RegisterSchema"];
            };
        };
        responses: {
            /** @description The schema id */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SchemaId"];
                };
            };
            /** @description Invalid type (BAD_REQUEST) or an evolution the rules forbid (SCHEMA_INCOMPATIBLE) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED, with deletedAt) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Body larger than the configured limit (PAYLOAD_TOO_LARGE) */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Content type not accepted here; the message and `accepted` name those that are (UNSUPPORTED_MEDIA_TYPE) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    downgradeSince: {
        parameters: {
            query?: {
                /** @description What the answer holds: the whole shard (default, as GET /v1/shards/{shardId}) or its summary (frontiers, seqno and stats, a few hundred bytes whatever the trace). */
                view?: "shard" | "summary";
            };
            header?: never;
            path: {
                shardId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["DowngradeSince"];
            };
        };
        responses: {
            /** @description The shard (view=shard, the default) or its summary (view=summary) */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Shard"] | components["schemas"]["ShardSummary"];
                };
            };
            /** @description Not a frontier of the shard (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The since would move backwards (SINCE_REGRESSION, with "since") */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED, with deletedAt) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Body larger than the configured limit (PAYLOAD_TOO_LARGE) */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Content type not accepted here; the message and `accepted` name those that are (UNSUPPORTED_MEDIA_TYPE) */
            415: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    readSnapshot: {
        parameters: {
            query: {
                /** @description A timestamp: 5 or a decimal string for u64, [a,b] for product. */
                asOf: string;
            };
            header?: never;
            path: {
                shardId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The snapshot, streamed */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Snapshot"];
                    "application/vnd.apache.arrow.stream": string;
                };
            };
            /** @description asOf is not a timestamp of the shard (BAD_REQUEST) or not in [since, upper) (AS_OF_NOT_AVAILABLE, with "since" and "upper") */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
    getShardSpine: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                shardId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The shard and its spine */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ShardSpine"];
                };
            };
            /** @description Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST) */
            400: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Missing or wrong bearer token (UNAUTHORIZED) */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description No such shard (SHARD_NOT_FOUND) */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The shard was deleted (SHARD_DELETED, with deletedAt) */
            410: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description Internal error; the body carries the request id to find it in the log (INTERNAL) */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator) */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
            /** @description The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed */
            507: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Error"];
                };
            };
        };
    };
}
