/**
 * The fleet at a glance: counts and totals over every VM's facts (see
 * health.vmFacts). Pure.
 *
 * Definitions (the summary strip's figures):
 * - replicating: VMs whose current job runs and is not stalled;
 * - stalled: VMs whose running job stopped reporting (never also "replicating");
 * - failed: VMs whose current job failed, or failed and not running a job;
 * - readyForFailover: VMs in status ready_for_failover;
 * - throughputBps: summed speed of the replicating (not stalled) jobs: a
 *   stalled job's last speed is not a live number;
 * - remainingBytes: bytes still to copy over every running job (stalled
 *   ones too: that data is still to move), counting jobs whose total is known;
 * - lastEtaS: the largest ETA among replicating jobs, i.e. when the last of
 *   them should finish; null when none has one.
 */

/** @param {Iterable<object>} facts */
export function summariseFleet(facts) {
  const summary = {
    vms: 0,
    replicating: 0,
    stalled: 0,
    failed: 0,
    readyForFailover: 0,
    throughputBps: 0,
    remainingBytes: 0,
    lastEtaS: null,
  };
  for (const vm of facts) {
    summary.vms += 1;
    if (vm.status === 'ready_for_failover') summary.readyForFailover += 1;
    if (vm.attention === 'failed') summary.failed += 1;
    if (vm.running && vm.remainingBytes !== null) summary.remainingBytes += vm.remainingBytes;
    if (vm.attention === 'stalled') {
      summary.stalled += 1;
    } else if (vm.attention === 'active') {
      summary.replicating += 1;
      if (vm.speedBps) summary.throughputBps += vm.speedBps;
      if (vm.etaS !== null && (summary.lastEtaS === null || vm.etaS > summary.lastEtaS)) summary.lastEtaS = vm.etaS;
    }
  }
  return summary;
}
