import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { exposedFamilies, familyOf, metricNames } from '../support/promql.js'

describe('metricNames', () => {
  it('finds the selected metrics and nothing else', () => {
    const expr = `sum by (job, shard) (increase(persist_shard_compaction_applied_total{job=~"$job", shard!="x"}[1h])) > 0
      unless on (job) max without (instance) (persist_compaction_paused offset 5m) == bool 1
      or histogram_quantile(0.99, sum by (le) (rate(persist_blob_operation_seconds_bucket[$__rate_interval])))
      and label_replace(up, "store", "blob", "", "") / 1e3 + rate(foo:bar_total[5m:1m])`
    assert.deepEqual(metricNames(expr), ['foo:bar_total', 'persist_blob_operation_seconds_bucket', 'persist_compaction_paused', 'persist_shard_compaction_applied_total', 'up'])
  })

  it("reads Grafana's label_values(metric, label)", () => {
    assert.deepEqual(metricNames('label_values(persist_shard_backlog_bytes{job="$job"}, shard)'), ['persist_shard_backlog_bytes'])
    assert.deepEqual(metricNames('label_values(up, job)'), ['up'])
  })
})

describe('familyOf', () => {
  const families = exposedFamilies('# TYPE a_seconds histogram\n# TYPE b_total counter\n# TYPE c_count gauge\n')
  it('maps histogram samples to their family, and nothing else', () => {
    assert.equal(familyOf('a_seconds_bucket', families), 'a_seconds')
    assert.equal(familyOf('a_seconds_count', families), 'a_seconds')
    assert.equal(familyOf('b_total', families), 'b_total')
    assert.equal(familyOf('c_count', families), 'c_count')
    assert.equal(familyOf('b_total_count', families), null)
    assert.equal(familyOf('missing', families), null)
  })
})
