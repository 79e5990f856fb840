/**
 * Cluster membership, as operators see it: three instances on one PostgreSQL and one S3 bucket
 * each list all three (`self` only on itself); a `kill -9`ed one drops out once its heartbeat is
 * old, and comes back when restarted under the same id.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { eventually, startCluster, type Cluster, type Instance } from '../support/cluster.js'

interface InstanceJson {
  id: string
  self: boolean
  version: string
  startedAt: string
  heartbeatAt: string
  running: number
}

describe('cluster membership', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await startCluster()
  })
  after(() => cluster?.close())

  const listed = async (inst: Instance): Promise<InstanceJson[]> => ((await cluster.call(inst, 'GET', '/v1/instances', 200)) as { instances: InstanceJson[] }).instances

  it('every instance lists all three, marking only itself as self', async () => {
    for (const inst of cluster.instances) {
      const seen = await eventually(`${inst.id} lists a, b and c`, async () => {
        const all = await listed(inst)
        return all.length === 3 ? all : undefined
      })
      assert.deepEqual(
        seen.map((i) => [i.id, i.self]),
        cluster.instances.map((i) => [i.id, i === inst]),
      )
      for (const i of seen) assert.ok(Date.parse(i.heartbeatAt) >= Date.parse(i.startedAt), JSON.stringify(i))
    }
  })

  it('a kill -9ed instance drops out of every list once its heartbeat is old; restarted, it is back', async () => {
    const [a, b, c] = cluster.instances as [Instance, Instance, Instance]
    await cluster.kill9(b)
    for (const inst of [a, c]) {
      await eventually(`${inst.id} stops listing b`, async () => {
        const ids = (await listed(inst)).map((i) => i.id)
        return ids.join() === 'a,c' ? ids : undefined
      })
    }
    await cluster.restart(b)
    for (const inst of [a, b, c]) {
      await eventually(`${inst.id} lists b again`, async () => {
        const all = await listed(inst)
        return all.map((i) => `${i.id}:${i.self}`).join() === `a:${inst === a},b:${inst === b},c:${inst === c}` ? all : undefined
      })
    }
  })
})
